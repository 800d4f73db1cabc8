import type { Config, SourceConfig } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { databricksStatements } from '../../src/lakehouse/databricks/statements';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * The Databricks adapter's own statements, unchanged, on open-source Delta through the real driver:
 * capture into the registry, the `table` strategy of the changed-ids view, and one fan-in run's
 * bookkeeping. Upstream tables are written with Spark SQL, as an ETL job would.
 */
describe('the Databricks adapter on real Delta', () => {
  const schema = uniqueSchema('adapter');
  const upstream = `${schema}_up.orders`;
  let config: Config;
  let source: SourceConfig;
  let spark: Spark;
  let lakehouse: DatabricksLakehouse;

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table: upstream }]);
    source = config.sources[0]!;
    spark = new Spark(config);
    lakehouse = realDeltaLakehouse(config);
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await spark.sql(`CREATE TABLE ${upstream} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
    await spark.sql(`INSERT INTO ${upstream} VALUES ('a', 1), ('b', 2), ('c', 3)`); // v1
    await spark.sql(`UPDATE ${upstream} SET amount = 20 WHERE uts_id = 'b'`); // v2
    await spark.sql(`DELETE FROM ${upstream} WHERE uts_id = 'c'`); // v3
  });

  afterAll(async () => {
    await lakehouse?.close();
    await spark?.close();
  });

  const changedIds = () => spark.sql(`SELECT uts_id, last_commit_version FROM ${config.tables.changedIds} ORDER BY uts_id`);

  it('creates its pipeline tables and the consumer view, and creating them again changes nothing', async () => {
    await lakehouse.ensurePipelineTables();
    const objects = (await spark.sql(`SHOW TABLES IN ${schema}_cdf`)).map((t) => String(t.tableName)).sort();
    expect(objects).toEqual(['change_registry', 'changed_ids', 'changed_uts', 'dispatch_batch_states', 'dispatch_batches', 'fan_in_runs', 'source_offsets']);
    const tables = objects.filter((name) => name !== 'changed_uts').map((name) => `${schema}_cdf.${name}`);
    const versions = async () => Promise.all(tables.map((name) => spark.latestVersion(name)));
    const before = await versions();
    await lakehouse.ensurePipelineTables();
    expect(await versions()).toEqual(before);
  });

  it('describes a source by its latest version and its table id', async () => {
    const [detail] = await spark.sql(`DESCRIBE DETAIL ${upstream}`);
    const description = await lakehouse.describeSource(source);
    expect(description).toMatchObject({ latestVersion: 3, tableId: detail!.id, deletedFileRetentionHours: 168 });
  });

  it('counts a range of the change feed by change type', async () => {
    await expect(lakehouse.summarizeChanges(source, { fromVersion: 1, toVersion: 3 })).resolves.toEqual({ insert: 3, update_preimage: 1, update_postimage: 1, delete: 1, nullKeys: 0 });
  });

  it('appends one registry row per id and version, and a second append of the same range inserts nothing', async () => {
    const { tableId } = await lakehouse.describeSource(source);
    const history = await spark.sql(`DESCRIBE HISTORY ${upstream}`);
    const version3At = new Date(history.find((h) => Number(h.version) === 3)!.timestamp as string).toISOString();
    const counts = { insert: 3, update_preimage: 0, update_postimage: 1, delete: 1 };
    expect(await lakehouse.appendRangeToRegistry(source, { fromVersion: 1, toVersion: 3 }, tableId)).toEqual({ rowsInserted: 5, counts, toVersionCommitTimestamp: version3At });
    // A re-run inserts nothing and reports the same registry rows.
    expect(await lakehouse.appendRangeToRegistry(source, { fromVersion: 1, toVersion: 3 }, tableId)).toEqual({ rowsInserted: 0, counts, toVersionCommitTimestamp: version3At });
    const rows = await spark.sql(`SELECT uts_id, commit_version, change_type FROM ${config.tables.registry} ORDER BY commit_version, uts_id`);
    expect(rows).toEqual([
      { uts_id: 'a', commit_version: 1, change_type: 'insert' },
      { uts_id: 'b', commit_version: 1, change_type: 'insert' },
      { uts_id: 'c', commit_version: 1, change_type: 'insert' },
      { uts_id: 'b', commit_version: 2, change_type: 'update_postimage' },
      { uts_id: 'c', commit_version: 3, change_type: 'delete' },
    ]);
  });

  it('moves the offset forward only', async () => {
    const { tableId } = await lakehouse.describeSource(source);
    await expect(lakehouse.mergeOffset({ source: 'orders', table: upstream, tableId, version: 3, commitTimestamp: '2026-01-02T03:04:05.678Z', replayGeneration: 0 })).resolves.toEqual({ lastVersion: 3, advanced: true });
    await expect(lakehouse.mergeOffset({ source: 'orders', table: upstream, tableId, version: 2, commitTimestamp: null, replayGeneration: 0 })).resolves.toEqual({ lastVersion: 3, advanced: false });
    await expect(lakehouse.readOffset('orders')).resolves.toMatchObject({ source: 'orders', tableId, lastVersion: 3, lastCommitTimestamp: '2026-01-02T03:04:05.678Z' });
  });

  it('refreshes the changed-ids table from the registry rows written since its last refresh', async () => {
    await lakehouse.refreshChangedIds();
    expect(await changedIds()).toEqual([
      { uts_id: 'a', last_commit_version: 1 },
      { uts_id: 'b', last_commit_version: 2 },
      { uts_id: 'c', last_commit_version: 3 },
    ]);
    expect(await lakehouse.refreshChangedIds()).toEqual({ rows: 0 });

    await spark.sql(`UPDATE ${upstream} SET amount = 10 WHERE uts_id = 'a'`); // v4
    const { tableId } = await lakehouse.describeSource(source);
    await lakehouse.appendRangeToRegistry(source, { fromVersion: 4, toVersion: 4 }, tableId);
    expect(await lakehouse.refreshChangedIds()).toEqual({ rows: 1 });
    expect((await changedIds())[0]).toEqual({ uts_id: 'a', last_commit_version: 4 });
  });

  it('runs a fan-in: opens a window, snapshots batches, records attempts and commits once every batch succeeded', async () => {
    const run = await lakehouse.openFanInRun('fi-real-delta-1');
    expect(run).toEqual({ runKey: 'fi-real-delta-1', resumed: false, sources: 1 });
    const snapshot = await lakehouse.snapshotBatches(run.runKey, 2, 3);
    expect(snapshot).toMatchObject({ changedIds: 3, batchCount: 2, sources: 1 });
    expect(snapshot.windows).toEqual([{ source: 'orders', tableId: expect.any(String), afterVersion: -1, throughVersion: 4, changedIds: 3 }]);
    expect(await lakehouse.snapshotBatches(run.runKey, 2, 3)).toMatchObject({ changedIds: 3, batchCount: 2 });
    expect(await lakehouse.pendingBatches(run.runKey, 0, 10)).toEqual([1, 2]);
    expect(await lakehouse.commitFanInRun(run.runKey)).toEqual({ committed: false });

    for (const batchNumber of [1, 2]) {
      await lakehouse.recordBatchLaunch({ runKey: run.runKey, batchNumber }, 1, { runId: `r${batchNumber}`, runPageUrl: `https://example/${batchNumber}` });
      await lakehouse.recordBatchOutcome({ runKey: run.runKey, batchNumber }, 1, { status: 'succeeded', stateMessage: '' });
    }
    expect(await lakehouse.batchStatusCounts(run.runKey)).toEqual({ succeeded: 2 });
    await expect(lakehouse.readBatchState({ runKey: run.runKey, batchNumber: 2 })).resolves.toMatchObject({ status: 'succeeded', attempts: 1, runId: 'r2', ids: 1 });
    expect(await lakehouse.commitFanInRun(run.runKey)).toEqual({ committed: true });
    await expect(lakehouse.openFanInRun('fi-real-delta-2')).resolves.toEqual({ runKey: 'fi-real-delta-2', resumed: false, sources: 0 });
  });

  it('refreshes from the registry as of the version it records: rows appended meanwhile wait for the next refresh', async () => {
    const { tableId } = await lakehouse.describeSource(source);
    const before = await spark.latestVersion(config.tables.registry);
    await spark.sql(`INSERT INTO ${upstream} VALUES ('d', 4)`); // v5
    await lakehouse.appendRangeToRegistry(source, { fromVersion: 5, toVersion: 5 }, tableId); // registry: before + 1
    await spark.sql(`INSERT INTO ${upstream} VALUES ('e', 5)`); // v6
    await lakehouse.appendRangeToRegistry(source, { fromVersion: 6, toVersion: 6 }, tableId); // registry: before + 2
    // A refresh that read the registry's version just before the second append, and ran its MERGE after it:
    await spark.sql(databricksStatements(config.tables, 'table').mergeChangedIds(before, before + 1).sql);
    expect((await changedIds()).map((r) => r.uts_id)).toEqual(['a', 'b', 'c', 'd']);
    // The watermark was not stored (as after a crash), so the next refresh covers both appends.
    await lakehouse.refreshChangedIds();
    expect(await changedIds()).toEqual([
      { uts_id: 'a', last_commit_version: 4 },
      { uts_id: 'b', last_commit_version: 2 },
      { uts_id: 'c', last_commit_version: 3 },
      { uts_id: 'd', last_commit_version: 5 },
      { uts_id: 'e', last_commit_version: 6 },
    ]);
  });

  it('rebuilds the changed-ids table when the registry was dropped and re-created', async () => {
    await spark.sql(`DROP TABLE ${config.tables.registry}`);
    await lakehouse.ensurePipelineTables();
    const { tableId } = await lakehouse.describeSource(source);
    await lakehouse.appendRangeToRegistry(source, { fromVersion: 6, toVersion: 6 }, tableId);
    await lakehouse.refreshChangedIds();
    expect(await changedIds()).toEqual([{ uts_id: 'e', last_commit_version: 6 }]);
  });
});

describe('the Databricks adapter on real Delta, when the changed-ids name holds something else', () => {
  const schema = uniqueSchema('mismatch');
  let config: Config;
  let spark: Spark;
  let lakehouse: DatabricksLakehouse;

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table: `${schema}_up.orders` }]);
    spark = new Spark(config);
    lakehouse = realDeltaLakehouse(config);
    await spark.sql(`CREATE SCHEMA ${schema}_cdf`);
    // What a switch from the materializedView strategy leaves, as far as open-source Spark can show it.
    await spark.sql(`CREATE VIEW ${config.tables.changedIds} AS SELECT 'a' AS uts_id`);
  });

  afterAll(async () => {
    await lakehouse?.close();
    await spark?.close();
  });

  it('refuses to start with the table strategy, naming the object and the DROP that fixes it, and creates nothing', async () => {
    const error = await lakehouse.ensurePipelineTables().then(() => undefined, (e: Error) => e);
    expect(error?.name).toBe('DatabricksConfigError');
    expect(error?.message).toMatch(new RegExp(`databricks\\.changedIds is "table".* but ${config.tables.changedIds} is a view\\. .*DROP VIEW ${config.tables.changedIds}`));
    expect((await spark.sql(`SHOW TABLES IN ${schema}_cdf`)).map((t) => t.tableName)).toEqual(['changed_ids']);
  });

  it('starts once the object is dropped, building the table the strategy keeps', async () => {
    await spark.sql(`DROP VIEW ${config.tables.changedIds}`);
    await lakehouse.ensurePipelineTables();
    const [type] = (await spark.sql(`DESCRIBE TABLE EXTENDED ${config.tables.changedIds}`)).filter((row) => row.col_name === 'Type');
    expect(type?.data_type).toBe('MANAGED');
  });
});
