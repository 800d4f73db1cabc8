import { sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { pauseSignal, resumeSignal, sourceStatusQuery, type SourceStatus } from '../../src/workflows/messages';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `appendDelayMs`: each registry append takes this much longer, so that a cycle's ranges outlast a signal's way to the workflow. */
async function withPipeline(test: (t: TestPipeline) => Promise<void>, appendDelayMs = 0): Promise<void> {
  const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], capture: { maxVersionsPerRange: 1 } });
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  if (appendDelayMs > 0) {
    const append = lakehouse.appendRangeToRegistry.bind(lakehouse);
    lakehouse.appendRangeToRegistry = async (...args) => {
      await sleep(appendDelayMs);
      return append(...args);
    };
  }
  const t = await startWorkerOn(config, lakehouse);
  try {
    await test(t);
  } finally {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  }
}

const registryRows = async (t: TestPipeline) => Number((await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry`))[0]!.n);

describe('pause', () => {
  // 150 ms a range: quick ranges run as local activities, several in one workflow task; the pause
  // must still land between ranges, within about a second, not after the whole cycle.
  it('takes effect between the ranges of a running cycle, and resume captures the rest', () =>
    withPipeline(async (t) => {
      const source = t.config.sources[0]!;
      await writeRandomTraffic(t.lakehouse, source, { commits: 40, maxOpsPerCommit: 3, idSpace: 500, seed: 61 });
      const { latestVersion } = await t.lakehouse.engine.describe(source.table);
      await startSourceWorkflows(t.client, t.config);
      const handle = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
      // The first cycle has 41 one-version ranges ahead of it: pause as soon as one is done.
      let status: SourceStatus;
      do status = await handle.query(sourceStatusQuery);
      while ((status.offsetVersion ?? -1) < 1);
      await handle.signal(pauseSignal, { reason: 'maintenance window' });
      await sleep(1500); // a range or two may finish; then nothing moves
      const pausedAt = (await handle.query(sourceStatusQuery)).offsetVersion!;
      await sleep(2000);
      status = await handle.query(sourceStatusQuery);
      expect(status.paused?.reason).toBe('maintenance window');
      expect(status.offsetVersion).toBe(pausedAt);
      expect(pausedAt).toBeLessThan(latestVersion - 5);

      await handle.signal(resumeSignal, {});
      for (let i = 0; i < 100 && (await handle.query(sourceStatusQuery)).offsetVersion !== latestVersion; i++) await sleep(200);
      expect((await handle.query(sourceStatusQuery)).offsetVersion).toBe(latestVersion);
    }, 150));

  it('holds across continue-as-new: the new run captures nothing and applies no pending replay until resume', () =>
    withPipeline(async (t) => {
      const source = t.config.sources[0]!;
      await ensureDemoSourceTable(t.lakehouse, source);
      await writeRandomTraffic(t.lakehouse, source, { commits: 3, maxOpsPerCommit: 5, idSpace: 100, seed: 62 });
      const workflowId = sourceWorkflowId(t.config, 'orders');
      // The input a paused source carries into its next run when it continues as new.
      const carried = {
        cyclesCompleted: 7,
        totals: { ranges: 0, changesRead: 0, registryRowsInserted: 0 },
        lastCycle: null,
        offsetVersion: null,
        latestVersion: null,
        blocked: null,
        pollIntervalSeconds: 3600,
        continuedAsNewTimes: 1,
        pollRequested: false,
        paused: { reason: 'paused before continue-as-new', since: new Date().toISOString() },
        pendingReplay: { fromVersion: 1 },
      };
      const handle = await t.client.workflow.start('sourceIngest', { workflowId, taskQueue: t.config.temporal.taskQueue, args: [{ source: 'orders', carried }] });
      await sleep(3000);
      let status = await handle.query(sourceStatusQuery);
      expect(status).toEqual(expect.objectContaining({ cyclesCompleted: 7, pendingReplay: { fromVersion: 1, redispatchFromVersion: null, requestsMerged: 1 }, offsetVersion: null }));
      expect(status.paused?.reason).toBe('paused before continue-as-new');
      expect(await registryRows(t)).toBe(0);
      expect(await t.lakehouse.readOffset('orders')).toBeNull();

      await handle.signal(resumeSignal, {});
      const { latestVersion } = await t.lakehouse.engine.describe(source.table);
      for (let i = 0; i < 100 && (await handle.query(sourceStatusQuery)).offsetVersion !== latestVersion; i++) await sleep(200);
      status = await handle.query(sourceStatusQuery);
      expect(status).toEqual(expect.objectContaining({ paused: null, pendingReplay: null, offsetVersion: latestVersion }));
      expect(await registryRows(t)).toBeGreaterThan(0);
    }));
});
