import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { sourceStatusQuery, type SourceStatus } from '../../src/workflows/messages';
import { eventually } from '../support/eventually';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/**
 * A source added to the config during a rolling deploy: its workflow starts while a worker with
 * the old config still polls. The old worker's attempts fail as retryable (the source shows
 * `retrying`, not `blocked`), and once a worker with the new config polls, the source captures.
 */
describe('a source added during a rolling deploy', () => {
  const newConfig = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'refunds', table: 'upstream.refunds' }] });
  // The same task queue and data files, one source fewer: the worker still running the previous release.
  const oldConfig = { ...newConfig, sources: newConfig.sources.filter((s) => s.name !== 'refunds') };
  let oldWorker: TestPipeline | undefined;
  let newWorker: TestPipeline | undefined;

  afterAll(async () => {
    await oldWorker?.stop();
    if (newWorker) await terminateWorkflows(newWorker.client, newConfig);
    await newWorker?.stop();
  });

  it('is retried while only an old worker polls, and captured once a new worker takes over', async () => {
    const old = await startWorkerOn(oldConfig, await LocalLakehouse.open(oldConfig.lakehouse.local.path, oldConfig.tables));
    oldWorker = old;
    const written = await writeRandomTraffic(old.lakehouse, newConfig.sources[1]!, { commits: 2, maxOpsPerCommit: 5, idSpace: 50, seed: 31 });
    await startSourceWorkflows(old.client, newConfig);
    const retrying = await eventually(async () => {
      const status: SourceStatus = await old.client.workflow.getHandle(sourceWorkflowId(newConfig, 'refunds')).query(sourceStatusQuery);
      return status.retrying ? status : undefined;
    }, 30_000);
    expect(retrying.retrying).toMatchObject({ type: 'UnknownSource', recognised: false });
    expect(retrying.retrying!.message).toMatch(/"refunds" is not in this worker's config/);
    expect(retrying.blocked).toBeNull();

    // The deploy goes on: the old worker stops, a worker with the new config polls the same queue.
    await old.stop();
    newWorker = await startWorkerOn(newConfig, await LocalLakehouse.open(newConfig.lakehouse.local.path, newConfig.tables));
    const report = await captureUntilCaughtUp(newWorker.client, newConfig, 'refunds');
    expect(report.offsetVersion).toBe(Math.max(...written.map((w) => w.version)));
    const status = await newWorker.client.workflow.getHandle(sourceWorkflowId(newConfig, 'refunds')).query(sourceStatusQuery);
    expect([status.blocked, status.retrying]).toEqual([null, null]);
  });
});
