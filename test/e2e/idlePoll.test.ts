import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { Lakehouse } from '../../src/lakehouse/port';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { eventually } from '../support/eventually';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/**
 * A source with nothing new does the least work per poll: the timer, one describe activity that
 * reads one thing of the lakehouse (the latest commit), the next timer; no local activity holds a
 * workflow task open. The first new version brings the full describe and a capture again.
 */
describe('an idle source', () => {
  let t: TestPipeline<Lakehouse>;
  let real: LocalLakehouse;
  const calls = new Map<string, number>();
  const called = (name: string) => calls.get(name) ?? 0;

  beforeAll(async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], capture: { pollIntervalSeconds: 1 } });
    real = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    const counted = new Proxy(real, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.set(String(property), called(String(property)) + 1);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    t = await startWorkerOn<Lakehouse>(config, counted);
    await writeRandomTraffic(real, config.sources[0]!, { commits: 3, maxOpsPerCommit: 10, idSpace: 100, seed: 5 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, 'orders');
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  const handle = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));

  it('reads only the latest commit on each poll, and nothing else of the lakehouse', async () => {
    const cyclesBefore = (await handle().query(sourceStatusQuery)).cyclesCompleted;
    calls.clear();
    await eventually(async () => ((await handle().query(sourceStatusQuery)).cyclesCompleted >= cyclesBefore + 3 ? true : undefined), 20_000);
    expect(called('latestCommit')).toBeGreaterThanOrEqual(3);
    expect([called('describeSource'), called('readOffset'), called('appendRangeToRegistry'), called('mergeOffset')]).toEqual([0, 0, 0, 0]);
  });

  it('adds one activity and two short workflow tasks per poll to the history, and no local activity', async () => {
    const events = (await handle().fetchHistory()).events ?? [];
    const fired = events.map((event, index) => (event.timerFiredEventAttributes ? index : -1)).filter((index) => index >= 0);
    expect(fired.length).toBeGreaterThanOrEqual(3);
    // Between the last two polls: the timer fired, a workflow task, the describe activity, a workflow task, the next timer.
    const poll = events.slice(fired.at(-2)! + 1, fired.at(-1)! + 1);
    expect(poll.filter((event) => event.activityTaskScheduledEventAttributes).map((event) => event.activityTaskScheduledEventAttributes!.activityType!.name)).toEqual(['describeSource']);
    expect(poll.filter((event) => event.workflowTaskCompletedEventAttributes)).toHaveLength(2);
    expect(poll.filter((event) => event.markerRecordedEventAttributes)).toHaveLength(0);
    expect(poll.length).toBeLessThanOrEqual(11);
  });

  it('captures the next commit with a full describe', async () => {
    const before = (await handle().query(sourceStatusQuery)).totals.registryRowsInserted;
    const written = await writeRandomTraffic(real, t.config.sources[0]!, { commits: 1, maxOpsPerCommit: 5, idSpace: 100, seed: 6 });
    const status = await eventually(async () => {
      const now = await handle().query(sourceStatusQuery);
      return now.offsetVersion === written[0]!.version ? now : undefined;
    }, 20_000);
    expect(called('describeSource')).toBeGreaterThanOrEqual(1);
    expect(status.totals.registryRowsInserted - before).toBe(new Set(written.map((w) => w.utsId)).size);
  });
});
