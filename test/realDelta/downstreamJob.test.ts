import { captureUntilCaughtUp, runFanIn, startSourceWorkflows } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import { bundleVariables } from '../../src/databricks/bundleVariables';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { loadBundle, pythonTaskInvocation } from '../support/bundle';
import { fakeWorkspace } from '../support/fakeWorkspace';
import { startWorkerOn, terminateWorkflows, type TestPipeline } from '../support/pipeline';
import { ensureRealDelta } from '../support/realDelta/install';
import { runPythonTask, type PythonTaskRun } from '../support/realDelta/pythonTask';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema, writeSparkTraffic } from './support';

/*
 * The bundle's downstream job (databricks/src/process_changed_uts.py) as the pipeline launches it:
 * the fan-in calls run-now on a Jobs API 2.2 server through the product's Jobs client, and each run
 * executes the bundle's spark_python_task for real, as its own spark-submit process on Spark +
 * Delta, with the task parameters rendered from the bundle's files and the job parameters the
 * launcher sent. The job reads the batch table the pipeline wrote on the Thrift server.
 */
describe('the bundle\'s PySpark job on batches the pipeline wrote, on real Delta', () => {
  const schema = uniqueSchema('job');
  const installation = ensureRealDelta();
  const bundle = loadBundle();
  let config: Config;
  let spark: Spark;
  let workspace: Awaited<ReturnType<typeof fakeWorkspace>>;
  let t: TestPipeline<DatabricksLakehouse>;
  let tables: Record<string, string>;
  let summary: FanInSummary;
  let removedId: string;
  const runs: PythonTaskRun[] = [];

  /** Runs the job's task for one run's job parameters, as the workspace would. */
  const runTask = async (jobParameters: Record<string, string>): Promise<PythonTaskRun> => {
    const { pythonFile, args } = pythonTaskInvocation(bundle, 'process_changed_uts', 'process_batch', jobParameters, bundleVariables(config));
    const run = await runPythonTask(installation, { tables, pythonFile, args });
    runs.push(run);
    return run;
  };

  const target = () => spark.sql(`SELECT uts_id, display_name, score, master_updated_at, run_key, batch_number, processed_at FROM ${config.tables.target} ORDER BY uts_id`);

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table: `${schema}_up.orders` }], {
      capture: { pollIntervalSeconds: 3600 },
      // One job at a time: each run is its own Spark process writing the target, and open-source
      // Delta on a local file system has no commit coordination between processes (Databricks has).
      fanIn: { batchSize: 10, concurrency: 1, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1, jobTimeoutMinutes: 10 },
    });
    spark = new Spark(config);
    const lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await writeSparkTraffic(spark, config, `${schema}_up.orders`, 4242);
    // An entity deleted from the master since it was last processed: the job must remove it from the target.
    removedId = String((await spark.sql(`SELECT min(uts_id) AS uts_id FROM ${config.tables.master}`))[0]!.uts_id);
    await spark.sql(`DELETE FROM ${config.tables.master} WHERE uts_id = '${removedId}'`);
    await spark.sql(`INSERT INTO ${config.tables.target} VALUES ('${removedId}', 'stale', 0.0, current_timestamp(), 'earlier-run', 1, current_timestamp())`);
    tables = {};
    for (const table of [config.tables.batches, config.tables.master, config.tables.target]) {
      const [detail] = await spark.sql(`DESCRIBE DETAIL ${table}`);
      tables[table] = String(detail!.location);
    }
    workspace = await fakeWorkspace();
    workspace.api.execute = async (jobParameters) => {
      const run = await runTask(jobParameters);
      if (run.code === 0) return { code: 'SUCCESS', type: 'SUCCESS', message: '' };
      return { code: 'RUN_EXECUTION_ERROR', type: 'CLIENT_ERROR', message: run.output.split('\n').filter((l) => /Error\b/.test(l)).pop() ?? `exit ${run.code}` };
    };
    t = await startWorkerOn(config, lakehouse, { launcher: workspace.launcher });
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'orders');
    summary = await runFanIn(t.client, config);
  }, 600_000);

  afterAll(async () => {
    if (t) {
      await terminateWorkflows(t.client, config);
      await t.stop();
    }
    await workspace?.launcher.close();
    await workspace?.api.close();
    await spark?.close();
  });

  it('runs once per batch, launched by the fan-in with the four cdf_* parameters, and every run succeeds', () => {
    expect(summary).toEqual(expect.objectContaining({ committed: true, outcome: 'dispatched', batchesSucceeded: summary.batches }));
    expect(summary.batches).toBeGreaterThan(1);
    const launched = workspace.api.launchedRuns();
    expect(launched).toHaveLength(summary.batches);
    expect(launched.every((r) => r.code === 'SUCCESS')).toBe(true);
    expect(Object.keys(launched[0]!.jobParameters).sort()).toEqual(['cdf_attempt', 'cdf_batch_number', 'cdf_batch_table', 'cdf_run_key']);
    expect(runs.map((r) => r.code)).toEqual(launched.map(() => 0));
    // Its summary line: exactly the batch's ids, read from the batch table.
    const counted = runs.map((r) => JSON.parse(r.output.split('\n').find((line) => line.startsWith('{"runKey"'))!) as { ids: number }).reduce((sum, s) => sum + s.ids, 0);
    expect(counted).toBe(summary.changedIds);
  });

  it('leaves the target equal to the master rows of every changed id, and without the ids the master lacks', async () => {
    const mismatched = await spark.sql(`
      SELECT c.uts_id FROM (SELECT DISTINCT uts_id FROM ${config.tables.registry}) AS c
      LEFT JOIN ${config.tables.master} AS m ON m.uts_id = c.uts_id
      LEFT JOIN ${config.tables.target} AS t ON t.uts_id = c.uts_id
      WHERE NOT (m.uts_id IS NULL AND t.uts_id IS NULL)
        AND (m.uts_id IS NULL OR t.uts_id IS NULL OR t.display_name <> m.display_name OR t.score <> m.score OR t.master_updated_at <> m.updated_at)`);
    expect(mismatched).toEqual([]);
    const [counts] = await spark.sql(`SELECT (SELECT count(*) FROM ${config.tables.target}) AS target, (SELECT count(DISTINCT uts_id) FROM ${config.tables.registry}) AS changed`);
    expect(Number(counts!.target)).toBeGreaterThan(0);
    expect(Number(counts!.target)).toBeLessThanOrEqual(Number(counts!.changed));
  });

  it('deletes from the target an entity whose master row is gone', async () => {
    expect(await spark.sql(`SELECT uts_id FROM ${config.tables.target} WHERE uts_id = '${removedId}'`)).toEqual([]);
    expect(await spark.sql(`SELECT uts_id FROM ${config.tables.registry} WHERE uts_id = '${removedId}' LIMIT 1`)).toHaveLength(1);
  });

  it('changes nothing when a batch runs again', async () => {
    const before = await target();
    const run = await runTask({ cdf_run_key: summary.runKey, cdf_batch_number: '1', cdf_batch_table: config.tables.batches, cdf_attempt: '2' });
    expect(run.code).toBe(0);
    expect(await target()).toEqual(before);
  });

  it('fails, naming the batch and the table, when the batch table has no ids for it', async () => {
    const run = await runTask({ cdf_run_key: summary.runKey, cdf_batch_number: '999', cdf_batch_table: config.tables.batches, cdf_attempt: '1' });
    expect(run.code).not.toBe(0);
    expect(run.output.split('\n').filter((line) => line.includes('EmptyBatchError')).pop()).toContain(`EmptyBatchError: batch 999 of run ${summary.runKey} has no ids in ${config.tables.batches}`);
  });
});
