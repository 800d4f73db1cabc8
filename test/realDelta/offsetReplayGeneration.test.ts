import type { Config, SourceConfig } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * The offset's replay generation on real Delta, through the real driver: a capture begun before a
 * rewind cannot move the offset, and an offsets table created before the column gets it.
 */
describe("the offset's replay generation on real Delta", () => {
  const schema = uniqueSchema('generation');
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
    for (let i = 1; i <= 4; i++) await spark.sql(`INSERT INTO ${upstream} VALUES ('u${i}', ${i})`);
    // The offsets table as the previous release created it, with one row: no replay_generation column.
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_cdf`);
    await spark.sql(`CREATE TABLE ${config.tables.offsets} (source STRING NOT NULL, source_table STRING NOT NULL, table_id STRING NOT NULL,
      last_version BIGINT NOT NULL, last_commit_timestamp TIMESTAMP, updated_at TIMESTAMP NOT NULL) USING DELTA`);
    const { tableId } = await lakehouse.describeSource(source);
    await spark.sql(`INSERT INTO ${config.tables.offsets} VALUES ('orders', '${upstream}', '${tableId}', 2, NULL, current_timestamp())`);
  });

  afterAll(async () => {
    await lakehouse?.close();
    await spark?.close();
  });

  it('adds the column to an offsets table created before it, and reads its rows as generation 0', async () => {
    await lakehouse.ensurePipelineTables();
    expect(await lakehouse.readOffset('orders')).toMatchObject({ lastVersion: 2, replayGeneration: 0 });
    await lakehouse.ensurePipelineTables();
    expect(await lakehouse.readOffset('orders')).toMatchObject({ lastVersion: 2, replayGeneration: 0 });
  });

  it('keeps a capture that began before a rewind from moving the offset forward again', async () => {
    const { tableId } = await lakehouse.describeSource(source);
    const offset = (version: number, replayGeneration: number) => ({ source: 'orders', table: upstream, tableId, version, commitTimestamp: null, replayGeneration });
    expect(await lakehouse.mergeOffset(offset(3, 0))).toEqual({ lastVersion: 3, advanced: true });
    expect(await lakehouse.rewindOffset({ source: 'orders', table: upstream, tableId, version: 0 })).toEqual({ replayGeneration: 1, redispatchMarked: false });
    expect(await lakehouse.mergeOffset(offset(4, 0))).toEqual({ lastVersion: 0, advanced: false });
    expect(await lakehouse.mergeOffset(offset(1, 1))).toEqual({ lastVersion: 1, advanced: true });
    expect(await lakehouse.readOffset('orders')).toMatchObject({ lastVersion: 1, replayGeneration: 1 });
  });
});
