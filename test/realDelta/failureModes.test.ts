import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, SourceConfig } from '../../src/config/schema';
import { PermanentError } from '../../src/errors';
import { classifyLakehouseError, INCREMENTAL_READ_BROKEN } from '../../src/lakehouse/errors';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { managedTablePath, realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * Each way a source's change feed breaks, produced on real Delta and read through the adapter as
 * the captureRange activity reads it (appendRangeToRegistry checks the range's history, then
 * appends from the feed: the range's one read of it). Each must
 * end in a permanent error with the operator's remedy, never in a transient one retried forever.
 * The engine's own messages are written to test/fixtures/real-delta-errors.json with
 * CDF_RECORD_DELTA_ERRORS=1, and test/unit/realDeltaErrors.test.ts classifies them without Spark.
 */
const FIXTURES = join(__dirname, '..', 'fixtures', 'real-delta-errors.json');
const recorded: Record<string, { message: string; expectedType: string }> = {};

describe('a broken change feed on real Delta', () => {
  const schema = uniqueSchema('failures');
  let config: Config;
  let spark: Spark;
  let lakehouse: DatabricksLakehouse;
  let tables = 0;

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'placeholder', table: `${schema}_up.placeholder` }]);
    spark = new Spark(config);
    lakehouse = realDeltaLakehouse(config);
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await lakehouse.ensurePipelineTables();
  });

  afterAll(async () => {
    await lakehouse?.close();
    await spark?.close();
    if (process.env.CDF_RECORD_DELTA_ERRORS) writeFileSync(FIXTURES, `${JSON.stringify(recorded, null, 2)}\n`);
  });

  /** A fresh upstream table with CDF on (unless told otherwise), and the source that reads it. */
  async function upstreamTable(options: { cdf?: boolean; partitioned?: boolean; properties?: string } = {}): Promise<SourceConfig> {
    const table = `${schema}_up.t${++tables}`;
    const properties = [`'delta.enableChangeDataFeed' = '${options.cdf ?? true}'`, ...(options.properties ? [options.properties] : [])].join(', ');
    await spark.sql(`CREATE TABLE ${table} (uts_id STRING, amount INT${options.partitioned ? ', p INT' : ''}) USING DELTA${options.partitioned ? ' PARTITIONED BY (p)' : ''} TBLPROPERTIES (${properties})`);
    return { name: `t${tables}`, table, keyColumn: 'uts_id', extraColumns: [], startingVersion: 0 };
  }

  /** What captureRange gets for the range: the registry counts of its append, or the classified error. */
  async function capture(source: SourceConfig, fromVersion: number, toVersion: number) {
    try {
      const { tableId } = await lakehouse.describeSource(source);
      return { counts: (await lakehouse.appendRangeToRegistry(source, { fromVersion, toVersion }, tableId)).counts };
    } catch (error) {
      return { error: classifyLakehouseError(error, { readsChangeFeed: true }) };
    }
  }

  /** The engine's own error for reading the range straight from the feed (no history check in front). */
  async function engineError(source: SourceConfig, fromVersion: number, toVersion: number, name: string, expectedType: string): Promise<PermanentError> {
    const error = await spark.sql(`SELECT count(*) FROM table_changes('${source.table}', ${fromVersion}, ${toVersion})`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    recorded[name] = { message: firstLines((error as Error).message), expectedType };
    const classified = classifyLakehouseError(error, { readsChangeFeed: true });
    expect(classified).toBeInstanceOf(PermanentError);
    expect(classified.type).toBe(expectedType);
    return classified as PermanentError;
  }

  function expectBlocked(result: Awaited<ReturnType<typeof capture>>, type: string | RegExp, remedy: RegExp): void {
    expect(result.error).toBeInstanceOf(PermanentError);
    expect(result.error!.type).toMatch(type);
    expect((result.error as PermanentError).remedy).toMatch(remedy);
  }

  it('blocks on a range whose files were vacuumed, naming the retention to raise', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1), ('b', 2)`); // v1
    await spark.sql(`UPDATE ${source.table} SET amount = 3 WHERE uts_id = 'a'`); // v2
    await spark.sql(`DELETE FROM ${source.table} WHERE uts_id = 'b'`); // v3
    await spark.sql(`VACUUM ${source.table} RETAIN 0 HOURS`);
    expectBlocked(await capture(source, 1, 3), 'FAILED_READ_FILE.FILE_NOT_EXIST', /vacuumed[\s\S]*deletedFileRetentionDuration/);
    await engineError(source, 1, 3, 'vacuumedRange', 'FAILED_READ_FILE.FILE_NOT_EXIST');
  });

  it('blocks on a range that starts before CDF was turned on', async () => {
    const source = await upstreamTable({ cdf: false });
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    await spark.sql(`ALTER TABLE ${source.table} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v2
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2)`); // v3
    expectBlocked(await capture(source, 1, 3), 'DELTA_MISSING_CHANGE_DATA', /enableChangeDataFeed/);
    await engineError(source, 1, 3, 'cdfOffForRange', 'DELTA_MISSING_CHANGE_DATA');
  });

  it('blocks on a range in which CDF was switched off, from the history before reading the feed', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    await spark.sql(`ALTER TABLE ${source.table} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'false')`); // v2
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2)`); // v3
    await spark.sql(`ALTER TABLE ${source.table} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v4
    const result = await capture(source, 1, 4);
    expectBlocked(result, INCREMENTAL_READ_BROKEN, /Resync/);
    expect(result.error!.message).toMatch(/version 2 .* SET TBLPROPERTIES/);
    await engineError(source, 1, 4, 'cdfSwitchedOffInsideRange', 'DELTA_MISSING_CHANGE_DATA');
  });

  it('sees CREATE OR REPLACE with the same schema as a new table id and blocks on its range', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    const before = await lakehouse.describeSource(source);
    await spark.sql(`CREATE OR REPLACE TABLE ${source.table} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v2
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2)`); // v3
    const after = await lakehouse.describeSource(source);
    expect(after.tableId).not.toBe(before.tableId);
    expect(after.latestVersion).toBe(3);
    expectBlocked(await capture(source, 1, 3), INCREMENTAL_READ_BROKEN, /Resync/);
  });

  it('blocks on CREATE OR REPLACE with a new schema, and the engine calls it an incompatible schema change', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    await spark.sql(`CREATE OR REPLACE TABLE ${source.table} (uts_id STRING, total BIGINT, note STRING) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v2
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2, 'x')`); // v3
    expectBlocked(await capture(source, 1, 3), INCREMENTAL_READ_BROKEN, /Resync/);
    await engineError(source, 1, 3, 'replacedWithNewSchema', 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_DATA_SCHEMA');
  });

  it('after DROP and CREATE, finds a new table id at version 0 and blocks on a range past its latest version', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2)`); // v2
    const before = await lakehouse.describeSource(source);
    await spark.sql(`DROP TABLE ${source.table}`);
    await spark.sql(`CREATE TABLE ${source.table} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`); // v0
    const after = await lakehouse.describeSource(source);
    expect(after.tableId).not.toBe(before.tableId);
    expect(after.latestVersion).toBe(0);
    expectBlocked(await capture(source, 3, 3), 'DELTA_CDC_START_VERSION_AFTER_LATEST', /dropped and re-created/);
    await engineError(source, 3, 3, 'startPastLatestAfterRecreate', 'DELTA_CDC_START_VERSION_AFTER_LATEST');
  });

  it('blocks on a range with a column renamed under column mapping', async () => {
    const source = await upstreamTable({ properties: "'delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5'" });
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    await spark.sql(`ALTER TABLE ${source.table} RENAME COLUMN amount TO total`); // v2
    await spark.sql(`INSERT INTO ${source.table} VALUES ('b', 2)`); // v3
    expectBlocked(await capture(source, 1, 3), 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_DATA_SCHEMA', /schema change/);
    await engineError(source, 1, 3, 'columnRenamedUnderColumnMapping', 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_DATA_SCHEMA');
  });

  it('blocks on a range whose log files before a checkpoint were removed', async () => {
    const source = await upstreamTable({ properties: "'delta.checkpointInterval' = '2'" });
    for (let i = 1; i <= 4; i++) await spark.sql(`INSERT INTO ${source.table} VALUES ('r${i}', ${i})`); // v1..v4, checkpoints at 2 and 4
    const log = join(managedTablePath(source.table), '_delta_log');
    for (const file of readdirSync(log).filter((f) => /^0+[0-2]\.json$/.test(f))) rmSync(join(log, file));
    expectBlocked(await capture(source, 1, 4), 'DELTA_EMPTY_DIRECTORY', /logRetentionDuration/);
    await engineError(source, 1, 4, 'truncatedLog', 'DELTA_EMPTY_DIRECTORY');
  });

  it('blocks on a range that starts past the latest version', async () => {
    const source = await upstreamTable();
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1)`); // v1
    expectBlocked(await capture(source, 5, 6), 'DELTA_CDC_START_VERSION_AFTER_LATEST', /latest version/);
  });

  it('blocks on a missing table, telling to restore it or remove the source', async () => {
    const source: SourceConfig = { name: 'missing', table: `${schema}_up.does_not_exist`, keyColumn: 'uts_id', extraColumns: [], startingVersion: 0 };
    const error = await lakehouse.describeSource(source).then(() => undefined, (e: unknown) => classifyLakehouseError(e));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error!.type).toBe('TABLE_OR_VIEW_NOT_FOUND');
    expect((error as PermanentError).remedy).toMatch(/Restore it or remove the source/);
    recorded.missingTable = { message: firstLines(String((error!.cause as Error).message)), expectedType: 'TABLE_OR_VIEW_NOT_FOUND' };
  });

  it('captures selective and full overwrites without blocking: every id they removed or wrote is registered', async () => {
    const source = await upstreamTable({ partitioned: true });
    await spark.sql(`INSERT INTO ${source.table} VALUES ('a', 1, 1), ('b', 2, 2), ('c', 3, 3)`); // v1
    await spark.sql(`INSERT INTO ${source.table} REPLACE WHERE p = 1 SELECT 'a2', 10, 1`); // v2: replaceWhere
    await spark.sql(`SET spark.sql.sources.partitionOverwriteMode = dynamic`);
    await spark.sql(`INSERT OVERWRITE ${source.table} SELECT 'b2', 20, 2`); // v3: dynamic partition overwrite
    await spark.sql(`SET spark.sql.sources.partitionOverwriteMode = static`);
    expect((await spark.sql(`SELECT uts_id FROM ${source.table} ORDER BY uts_id`)).map((r) => r.uts_id)).toEqual(['a2', 'b2', 'c']);
    await spark.sql(`INSERT OVERWRITE ${source.table} SELECT 'z', 0, 9`); // v4: full overwrite
    const result = await capture(source, 2, 4);
    expect(result.error).toBeUndefined();
    expect(result.counts).toEqual({ insert: 3, update_preimage: 0, update_postimage: 0, delete: 5 });
    // Capturing the range again inserts nothing.
    const { tableId } = await lakehouse.describeSource(source);
    expect((await lakehouse.appendRangeToRegistry(source, { fromVersion: 2, toVersion: 4 }, tableId)).rowsInserted).toBe(0);
    const rows = await spark.sql(`SELECT uts_id, commit_version, change_type FROM ${config.tables.registry} WHERE source = '${source.name}' ORDER BY commit_version, uts_id`);
    expect(rows).toEqual([
      { uts_id: 'a', commit_version: 2, change_type: 'delete' },
      { uts_id: 'a2', commit_version: 2, change_type: 'insert' },
      { uts_id: 'b', commit_version: 3, change_type: 'delete' },
      { uts_id: 'b2', commit_version: 3, change_type: 'insert' },
      { uts_id: 'a2', commit_version: 4, change_type: 'delete' },
      { uts_id: 'b2', commit_version: 4, change_type: 'delete' },
      { uts_id: 'c', commit_version: 4, change_type: 'delete' },
      { uts_id: 'z', commit_version: 4, change_type: 'insert' },
    ]);
  });
});

/** The engine's message without the Java stack trace. */
function firstLines(message: string): string {
  return message.split('\n').filter((line) => !/^\s+at |^\s+\.\.\. \d+ more|^\s*Suppressed:|^\s*Caused by:/.test(line)).slice(0, 4).join('\n');
}
