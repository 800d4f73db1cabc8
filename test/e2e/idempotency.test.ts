import { MockActivityEnvironment } from '@temporalio/testing';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { createActivities } from '../../src/activities';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { fetchHistory, resetPointAfterActivity, resetPointAtFirstSchedule, resetWorkflow } from '../support/history';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/** Re-running what already ran — as an activity retry or a workflow reset — changes nothing. */
describe('re-running captured ranges and a finished fan-in', () => {
  let t: TestPipeline;
  let fanInId: string;
  let summary: FanInSummary;

  const counts = async () => {
    const [row] = await t.lakehouse.db.all<{ registry: bigint; batches: bigint; target: bigint }>(
      `SELECT (SELECT count(*) FROM cdf.change_registry) AS registry, (SELECT count(*) FROM cdf.dispatch_batches) AS batches,
              (SELECT count(*) FROM demo.entity_target) AS target`,
    );
    return { registry: Number(row!.registry), batches: Number(row!.batches), target: Number(row!.target), runs: await t.jobs.runCount() };
  };

  beforeAll(async () => {
    t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }], fanIn: { batchSize: 30 } }));
    for (const [index, source] of t.config.sources.entries()) {
      await writeRandomTraffic(t.lakehouse, source, { commits: 5, maxOpsPerCommit: 25, idSpace: 300, seed: 7 + index });
    }
    await startSourceWorkflows(t.client, t.config);
    for (const source of t.config.sources) await captureUntilCaughtUp(t.client, t.config, source.name);
    fanInId = fanInWorkflowId(t.config);
    summary = await runFanIn(t.client, t.config);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('adds no registry rows and keeps offsets when every captured range is retried as an activity', async () => {
    const before = await counts();
    const activities = createActivities({ config: t.config, lakehouse: t.lakehouse, jobs: t.jobs });
    const env = new MockActivityEnvironment();
    for (const source of t.config.sources) {
      const { latestVersion } = await t.lakehouse.engine.describe(source.table);
      for (let version = 0; version <= latestVersion; version++) {
        const { tableId, replayGeneration } = (await t.lakehouse.readOffset(source.name))!;
        const range = { source: source.name, fromVersion: version, toVersion: version, tableId, replayGeneration };
        expect(await env.run(activities.captureRange, range)).toMatchObject({ rowsInserted: 0, lastVersion: latestVersion, advanced: false });
      }
    }
    expect(await counts()).toEqual(before);
  });

  it('adds no registry rows when a source workflow is reset to before its first range, with its offset lost', async () => {
    const before = await counts();
    // The reset runs the cycle's describe again (a local activity, in the task reset to): with the
    // offset as stored, it would find nothing to do. Losing the offset makes every range run again.
    const source = t.config.sources.find((s) => s.name === 'orders')!;
    await t.lakehouse.rewindOffset({ source: 'orders', table: source.table, tableId: (await t.lakehouse.readOffset('orders'))!.tableId, version: -1 });
    const workflowId = sourceWorkflowId(t.config, 'orders');
    const { runId } = await t.client.workflow.getHandle(workflowId).describe();
    const history = await fetchHistory(t.client, workflowId, runId);
    const newRunId = await resetWorkflow(t.client, workflowId, runId, resetPointAtFirstSchedule(history.events ?? [], 'captureRange'));
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const status = await t.client.workflow.getHandle(workflowId, newRunId).query(sourceStatusQuery);
    const { latestVersion } = await t.lakehouse.engine.describe('upstream.orders');
    expect(status.totals.ranges).toBeGreaterThan(0); // the ranges really ran again ...
    expect(status.totals.registryRowsInserted).toBe(0); // ... and inserted nothing
    expect(status.offsetVersion).toBe(latestVersion);
    expect(await counts()).toEqual(before);
  });

  it('launches no job, asks for none and writes no batch row when the fan-in is reset to before its launches', async () => {
    const before = await counts();
    const { runId } = await t.client.workflow.getHandle(fanInId).describe();
    const history = await fetchHistory(t.client, fanInId, runId);
    const newRunId = await resetWorkflow(t.client, fanInId, runId, resetPointAfterActivity(history.events ?? [], 'openFanInRun'));
    const replayed = (await t.client.workflow.getHandle(fanInId, newRunId).result()) as FanInSummary;
    expect(replayed).toEqual(expect.objectContaining({ runKey: summary.runKey, batches: summary.batches, batchesSucceeded: summary.batches }));
    expect(replayed.launches).toBe(0);
    expect(await counts()).toEqual(before);
    const requests = await t.jobs.launchRequests();
    expect([...requests.values()].every((n) => n === 1)).toBe(true); // the batch states say they are done: nothing is asked again
  });
});
