import { WorkflowUpdateStage } from '@temporalio/client';
import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { Lakehouse } from '../../src/lakehouse/port';
import { pauseSignal, pollNowSignal, replayFromVersionSignal, replayFromVersionUpdate, resumeSignal, sourceStatusQuery } from '../../src/workflows/messages';
import { eventually } from '../support/eventually';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/**
 * Replay requests that arrive close together, while a slow cycle runs: none is dropped. They are
 * merged into one rewind (the smallest version, redispatch if any asked for it), and every caller
 * is told what was applied.
 */
describe('replay requests arriving while a cycle runs', () => {
  let t: TestPipeline<Lakehouse>;
  let real: LocalLakehouse;
  let written: WrittenChange[];
  let slowAppends = false;
  let appendEntered: () => void = () => undefined;
  const handle = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));

  /** Commits once more and starts a cycle whose append is slowed: it returns once that append runs, so requests sent now arrive mid-cycle. */
  async function startSlowCycle(seed: number, maxOpsPerCommit = 4): Promise<void> {
    written.push(...(await writeRandomTraffic(real, t.config.sources[0]!, { commits: 1, maxOpsPerCommit, idSpace: 60, seed })));
    slowAppends = true;
    const entered = new Promise<void>((resolve) => (appendEntered = resolve));
    await handle().signal(pollNowSignal, {});
    await entered;
  }

  beforeAll(async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], capture: { maxVersionsPerRange: 1 } });
    real = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    // The range's append takes 3 s while slowAppends is on: the cycle is still running when the requests arrive.
    const slowed = new Proxy(real, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (property !== 'appendRangeToRegistry' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          if (slowAppends) {
            appendEntered();
            await new Promise((resolve) => setTimeout(resolve, 3_000));
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    t = await startWorkerOn<Lakehouse>(config, slowed);
    written = await writeRandomTraffic(real, config.sources[0]!, { commits: 8, maxOpsPerCommit: 8, idSpace: 60, seed: 21 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    await runFanIn(t.client, t.config);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('merges a redispatch from version 1 and a replay from version 6 into one, tells both callers, and dispatches again every id changed from version 1 on', async () => {
    await startSlowCycle(22, 8);

    const first = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 1, redispatch: true, reason: 'downstream lost its output' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    const second = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 6, reason: 'a late fix' }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    expect((await handle().query(sourceStatusQuery)).pendingReplay).toMatchObject({ fromVersion: 1, redispatchFromVersion: 1, requestsMerged: 2 });
    slowAppends = false;

    const [a, b] = await Promise.all([first.result(), second.result()]);
    expect(a).toMatchObject({ fromVersion: 1, requestedFromVersion: 1, redispatch: true, redispatchFromVersion: 1, redispatchMarked: true, requestsMerged: 2, queued: false });
    expect(b).toMatchObject({ fromVersion: 1, requestedFromVersion: 6, redispatch: true, redispatchFromVersion: 1, redispatchMarked: true, requestsMerged: 2, queued: false });

    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const summary = await runFanIn(t.client, t.config);
    // Oracle from the commits themselves: every id changed at version 1 or later.
    expect(summary.changedIds).toBe(new Set(written.filter((w) => w.version >= 1).map((w) => w.utsId)).size);
  });

  it('captures again from the smaller version but dispatches again only from the version that asked for it', async () => {
    await runFanIn(t.client, t.config);
    await startSlowCycle(24);

    const plain = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 5 }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    const again = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 7, redispatch: true }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    slowAppends = false;
    expect(await plain.result()).toMatchObject({ fromVersion: 5, requestedFromVersion: 5, redispatchFromVersion: 7, redispatchMarked: true, requestsMerged: 2 });
    expect(await again.result()).toMatchObject({ fromVersion: 5, requestedFromVersion: 7, redispatchFromVersion: 7, redispatchMarked: true, requestsMerged: 2 });

    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const summary = await runFanIn(t.client, t.config);
    // Every id changed at version 7 or later goes out again; one changed only at 5 or 6 does not.
    expect(summary.changedIds).toBe(new Set(written.filter((w) => w.version >= 7).map((w) => w.utsId)).size);
  });

  it('answers an accepted replay as queued when the source is paused before the rewind runs, instead of waiting for resume', async () => {
    await startSlowCycle(25);

    const update = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 3 }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    await handle().signal(pauseSignal, { reason: 'maintenance' });
    slowAppends = false;
    expect(await update.result()).toMatchObject({ fromVersion: 3, queued: true });
    expect((await handle().query(sourceStatusQuery)).pendingReplay).toMatchObject({ fromVersion: 3 });

    await handle().signal(resumeSignal, {});
    await eventually(async () => ((await handle().query(sourceStatusQuery)).pendingReplay === null ? true : undefined), 20_000);
    const after = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(after.offsetVersion).toBe(Math.max(...written.map((w) => w.version)));
  });

  it('merges a replay signal into the update that waits, so the signal is not lost either', async () => {
    await startSlowCycle(23);

    const update = await handle().startUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 7 }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    await handle().signal(replayFromVersionSignal, { fromVersion: 4 });
    await eventually(async () => ((await handle().query(sourceStatusQuery)).pendingReplay?.requestsMerged === 2 ? true : undefined), 10_000);
    slowAppends = false;
    expect(await update.result()).toMatchObject({ fromVersion: 4, requestedFromVersion: 7, redispatch: false, requestsMerged: 2 });
    const after = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(after.offsetVersion).toBe(Math.max(...written.map((w) => w.version)));
  });
});
