import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { replayFromVersionUpdate, sourceStatusQuery } from '../../src/workflows/messages';
import { CdfState } from '../../src/workflows/searchAttributes';
import { startWorkerOn, terminateWorkflows, type TestPipeline } from '../support/pipeline';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * A source workflow reading a range that was vacuumed on real Delta: it blocks (not retries) with
 * the engine's error class and the remedy, the UI's list can find it, and the replay the remedy
 * asks for brings it back.
 */
describe('a source on real Delta whose range was vacuumed', () => {
  const schema = uniqueSchema('blocked');
  const table = `${schema}_up.orders`;
  let config: Config;
  let spark: Spark;
  let t: TestPipeline<DatabricksLakehouse>;
  const handle = () => t.client.workflow.getHandle(sourceWorkflowId(config, 'orders'));

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table }], {
      capture: { pollIntervalSeconds: 3600 },
    });
    spark = new Spark(config);
    const lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await spark.sql(`CREATE TABLE ${table} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
    await spark.sql(`INSERT INTO ${table} VALUES ('a', 1), ('b', 2)`); // v1
    await spark.sql(`UPDATE ${table} SET amount = 3 WHERE uts_id = 'a'`); // v2
    await spark.sql(`DELETE FROM ${table} WHERE uts_id = 'b'`); // v3
    await spark.sql(`VACUUM ${table} RETAIN 0 HOURS`);
    t = await startWorkerOn(config, lakehouse);
  });

  afterAll(async () => {
    if (t) {
      await terminateWorkflows(t.client, config);
      await t.stop();
    }
    await spark?.close();
  });

  it('blocks with the engine error class and the remedy, and shows as blocked in the workflow list', async () => {
    await startSourceWorkflows(t.client, config);
    const report = await captureUntilCaughtUp(t.client, config, 'orders');
    expect(report.blocked).toMatchObject({ type: 'FAILED_READ_FILE.FILE_NOT_EXIST', remedy: expect.stringMatching(/vacuumed[\s\S]*deletedFileRetentionDuration/) });
    const status = await handle().query(sourceStatusQuery);
    expect(status.offsetVersion).toBeNull();
    expect(status.retrying).toBeNull();
    expect((await handle().describe()).typedSearchAttributes.get(CdfState)).toBe('blocked');
  });

  it('captures again from the version the operator replays from', async () => {
    await spark.sql(`INSERT INTO ${table} VALUES ('c', 4)`); // after VACUUM START and VACUUM END, which Delta 4 records as commits
    const inserted = await spark.latestVersion(table);
    await handle().executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: inserted, reason: 'resynced from a snapshot' }] });
    const report = await captureUntilCaughtUp(t.client, config, 'orders');
    expect(report).toMatchObject({ blocked: null, offsetVersion: inserted });
    const registered = await spark.sql(`SELECT uts_id, commit_version FROM ${config.tables.registry} ORDER BY commit_version, uts_id`);
    expect(registered).toEqual([{ uts_id: 'c', commit_version: inserted }]);
  });
});
