import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities } from '../../src/activities';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { fetchHistory, resetPointAfterActivity, resetPointAtFirstSchedule, resetWorkflow } from '../support/history';
import { startWorkerOn, terminateWorkflows, type TestPipeline } from '../support/pipeline';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema, writeSparkTraffic } from './support';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * The whole pipeline with `lakehouse.target: databricks` on real Delta: Delta tables written by
 * Spark, captured by the real worker on the real Temporal dev server through the real driver, the
 * changed-ids `table` strategy, and the local runner's demo job MERGEing each batch into the
 * target through the same adapter. The oracle is what Spark itself reads back.
 */
describe('the pipeline end to end on real Delta', () => {
  const schema = uniqueSchema('pipeline');
  const sources = ['orders', 'customers'].map((name) => ({ name, table: `${schema}_up.${name}` }));
  let config: Config;
  let spark: Spark;
  let t: TestPipeline<DatabricksLakehouse>;
  let summary: FanInSummary;

  beforeAll(async () => {
    config = realDeltaConfig(schema, sources, {
      jobs: { target: 'local', local: { path: join(mkdtempSync(join(tmpdir(), 'cdf-real-delta-')), 'jobs.duckdb'), maxConcurrentRuns: 2 } },
      capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 3600 },
      fanIn: { batchSize: 7, concurrency: 2, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1 },
    });
    spark = new Spark(config);
    const lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    for (const [index, source] of sources.entries()) await writeSparkTraffic(spark, config, source.table, 1000 + index);
    t = await startWorkerOn(config, lakehouse);
    await startSourceWorkflows(t.client, config);
    for (const source of sources) await captureUntilCaughtUp(t.client, config, source.name);
    summary = await runFanIn(t.client, config);
  });

  afterAll(async () => {
    if (t) {
      await terminateWorkflows(t.client, config);
      await t.stop();
    }
    await spark?.close();
  });

  it('registers exactly the (source, uts_id, commit_version) set that Spark reads from the feeds', async () => {
    const expected = new Set<string>();
    for (const source of sources) {
      const latest = await spark.latestVersion(source.table);
      for (const row of await spark.sql(`SELECT DISTINCT uts_id, _commit_version AS v FROM table_changes('${source.table}', 1, ${latest}) WHERE uts_id IS NOT NULL`)) {
        expected.add(`${source.name}|${row.uts_id}|${row.v}`);
      }
    }
    const registered = (await spark.sql(`SELECT source, uts_id, commit_version FROM ${config.tables.registry}`)).map((r) => `${r.source}|${r.uts_id}|${r.commit_version}`);
    expect(registered.length).toBe(expected.size);
    expect(new Set(registered)).toEqual(expected);
  });

  it('moves every offset to its table\'s latest version', async () => {
    for (const source of sources) {
      expect((await t.lakehouse.readOffset(source.name))?.lastVersion).toBe(await spark.latestVersion(source.table));
    }
  });

  it('puts every changed id in exactly one batch and commits the run', async () => {
    const changed = (await spark.sql(`SELECT DISTINCT uts_id FROM ${config.tables.registry}`)).map((r) => r.uts_id as string).sort();
    const batched = await spark.sql(`SELECT uts_id, count(*) AS n FROM ${config.tables.batches} WHERE run_key = '${summary.runKey}' GROUP BY uts_id`);
    expect(batched.map((r) => r.uts_id).sort()).toEqual(changed);
    expect(batched.every((r) => Number(r.n) === 1)).toBe(true);
    expect(summary).toMatchObject({ changedIds: changed.length, batches: Math.ceil(changed.length / 7), batchesSucceeded: Math.ceil(changed.length / 7), committed: true, outcome: 'dispatched' });
  });

  /** What a re-run must not change: rows in the pipeline's tables and the target, and downstream runs. */
  const counts = async () => {
    const [row] = await spark.sql(`SELECT (SELECT count(*) FROM ${config.tables.registry}) AS registry, (SELECT count(*) FROM ${config.tables.batches}) AS batches,
      (SELECT count(*) FROM ${config.tables.target}) AS target, (SELECT count(*) FROM ${config.tables.changedIds}) AS changed`);
    return { registry: Number(row!.registry), batches: Number(row!.batches), target: Number(row!.target), changed: Number(row!.changed), runs: await t.jobs.runCount() };
  };

  it('adds no registry rows and keeps offsets when every captured range is retried as an activity', async () => {
    const before = await counts();
    const activities = createActivities({ config, lakehouse: t.lakehouse, jobs: t.jobs });
    const env = new MockActivityEnvironment();
    for (const source of sources) {
      const latestVersion = await spark.latestVersion(source.table);
      const { tableId, replayGeneration } = (await t.lakehouse.readOffset(source.name))!;
      for (let version = 1; version <= latestVersion; version++) {
        expect(await env.run(activities.captureRange, { source: source.name, fromVersion: version, toVersion: version, tableId, replayGeneration })).toMatchObject({ rowsInserted: 0, lastVersion: latestVersion, advanced: false });
      }
    }
    expect(await counts()).toEqual(before);
  });

  it('adds no registry rows when a source workflow is reset to before its first range, with its offset lost', async () => {
    const before = await counts();
    // The reset runs the cycle's describe again (a local activity, in the task reset to): with the
    // offset as stored, it would find nothing to do. Losing the offset makes every range run again.
    const source = config.sources.find((s) => s.name === 'orders')!;
    await t.lakehouse.rewindOffset({ source: 'orders', table: source.table, tableId: (await t.lakehouse.readOffset('orders'))!.tableId, version: -1 });
    const workflowId = sourceWorkflowId(config, 'orders');
    const { runId } = await t.client.workflow.getHandle(workflowId).describe();
    const history = await fetchHistory(t.client, workflowId, runId);
    const newRunId = await resetWorkflow(t.client, workflowId, runId, resetPointAtFirstSchedule(history.events ?? [], 'captureRange'));
    await captureUntilCaughtUp(t.client, config, 'orders');
    const status = await t.client.workflow.getHandle(workflowId, newRunId).query(sourceStatusQuery);
    expect(status.totals.ranges).toBeGreaterThan(0); // the ranges really ran again ...
    expect(status.totals.registryRowsInserted).toBe(0); // ... and inserted nothing
    expect(status.offsetVersion).toBe(await spark.latestVersion(sources[0]!.table));
    expect(await counts()).toEqual(before);
  });

  it('launches no job, asks for none and writes no batch row when the fan-in is reset to before its launches', async () => {
    const before = await counts();
    const requestsBefore = await t.jobs.launchRequests();
    const fanInId = fanInWorkflowId(config);
    const { runId } = await t.client.workflow.getHandle(fanInId).describe();
    const history = await fetchHistory(t.client, fanInId, runId);
    const newRunId = await resetWorkflow(t.client, fanInId, runId, resetPointAfterActivity(history.events ?? [], 'openFanInRun'));
    const replayed = (await t.client.workflow.getHandle(fanInId, newRunId).result()) as FanInSummary;
    expect(replayed).toEqual(expect.objectContaining({ runKey: summary.runKey, batches: summary.batches, batchesSucceeded: summary.batches, launches: 0 }));
    expect(await counts()).toEqual(before);
    // Not one more launch request for any token: the batch states say every batch is done.
    expect(await t.jobs.launchRequests()).toEqual(requestsBefore);
  });

  it('leaves the target equal to the master for every dispatched id', async () => {
    const cols = 'uts_id, display_name, score';
    const master = await spark.sql(`SELECT ${cols} FROM ${config.tables.master} ORDER BY uts_id`);
    const target = await spark.sql(`SELECT ${cols} FROM ${config.tables.target} ORDER BY uts_id`);
    expect(target).toEqual(master);
    expect(target.length).toBeGreaterThan(0);
  });
});
