import { WorkflowFailedError } from '@temporalio/client';
import { captureUntilCaughtUp, runFanIn, startSourceWorkflows } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { fakeWorkspace } from '../support/fakeWorkspace';
import { startWorkerOn, terminateWorkflows, type TestPipeline } from '../support/pipeline';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema, writeSparkTraffic } from './support';

/*
 * Batch attempts live in the batch-state table, so a resumed fan-in numbers its relaunches from
 * what that table says. Here the table is a Delta table on Spark, written through the real driver,
 * and the downstream job runs through the real Jobs client against a local Jobs API 2.2 server.
 */
describe('a fan-in resumed on real Delta after the job itself failed', () => {
  const schema = uniqueSchema('dispatch');
  let config: Config;
  let spark: Spark;
  let workspace: Awaited<ReturnType<typeof fakeWorkspace>>;
  let t: TestPipeline<DatabricksLakehouse>;

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table: `${schema}_up.orders` }], {
      capture: { pollIntervalSeconds: 3600 },
      fanIn: { batchSize: 6, concurrency: 2, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1 },
    });
    spark = new Spark(config);
    const lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await writeSparkTraffic(spark, config, `${schema}_up.orders`, 77);
    workspace = await fakeWorkspace();
    t = await startWorkerOn(config, lakehouse, { launcher: workspace.launcher });
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'orders');
  });

  afterAll(async () => {
    if (t) {
      await terminateWorkflows(t.client, config);
      await t.stop();
    }
    await workspace?.launcher.close();
    await workspace?.api.close();
    await spark?.close();
  });

  it('fails with the job error, then resumes the open run with new attempts and takes no old failed run for its own', async () => {
    workspace.api.outcome = { code: 'INVALID_RUN_CONFIGURATION', type: 'CLIENT_ERROR', message: 'Job parameter cdf_batch_table is not defined by job 4242' };
    const failure = await runFanIn(t.client, config).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const failedTokens = new Set(workspace.api.launchedRuns().map((r) => r.idempotencyToken));
    expect(failedTokens.size).toBeGreaterThan(0);
    const states = await spark.sql(`SELECT batch_number, status, attempts FROM ${config.tables.batchStates}`);
    expect(states.filter((s) => s.status === 'failed' || s.status === 'launched').length).toBeGreaterThan(0);

    workspace.api.outcome = { code: 'SUCCESS', type: 'SUCCESS', message: '' }; // the job was fixed
    const resumed = await runFanIn(t.client, config);
    expect(resumed).toEqual(expect.objectContaining({ resumed: true, committed: true, outcome: 'dispatched', batchesSucceeded: resumed.batches }));
    const succeeded = workspace.api.launchedRuns().filter((r) => r.code === 'SUCCESS');
    expect(succeeded.every((r) => !failedTokens.has(r.idempotencyToken))).toBe(true);
    expect(succeeded.filter((r) => r.jobParameters.cdf_attempt === '2')).toHaveLength(failedTokens.size);
    expect(succeeded).toHaveLength(resumed.batches);

    const changed = (await spark.sql(`SELECT DISTINCT uts_id FROM ${config.tables.registry}`)).length;
    const batched = await spark.sql(`SELECT uts_id, count(*) AS n FROM ${config.tables.batches} WHERE run_key = '${resumed.runKey}' GROUP BY uts_id`);
    expect(batched).toHaveLength(changed);
    expect(batched.every((r) => Number(r.n) === 1)).toBe(true);
  });
});
