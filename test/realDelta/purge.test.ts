import type { Config } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { PURGED_TABLES, purgeCutoffOf, type BatchKey, type PurgeCutoffs, type PurgedTable } from '../../src/lakehouse/port';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * The retention purge's SQL on Spark + Delta through the real driver (the `table` strategy, whose
 * changed-ids table the purge maintains itself): MERGE … WHEN MATCHED THEN DELETE per table,
 * OPTIMIZE afterwards, and the consumer view. A cutoff in the future makes every row old.
 */
describe('the retention purge on real Delta', () => {
  const schema = uniqueSchema('purge');
  const everythingOld: PurgeCutoffs = (() => {
    const future = new Date(Date.now() + 3_600_000).toISOString();
    return { registryBefore: future, batchesBefore: future, fanInRunsBefore: future };
  })();
  let config: Config;
  let spark: Spark;
  let lakehouse: DatabricksLakehouse;
  let upstream: string;
  let dryRun: Record<PurgedTable, number>;
  let purged: Record<PurgedTable, number>;
  const compacted: string[] = [];
  const sizes = () =>
    Promise.all(
      [config.tables.registry, config.tables.changedIds, config.tables.batches, config.tables.batchStates, config.tables.fanInRuns].map(async (table) => Number((await spark.sql(`SELECT count(*) AS n FROM ${table}`))[0]!.n)),
    );
  let sizesBeforeDryRun: number[];
  let sizesAfterDryRun: number[];

  const source = () => config.sources[0]!;

  /** The purge workflow's steps on every table, in its order: counts (dry run) or deletes, then compaction. */
  async function purgeAll(options: { dryRun: boolean }): Promise<Record<PurgedTable, number>> {
    const counts = {} as Record<PurgedTable, number>;
    for (const table of PURGED_TABLES) {
      const before = purgeCutoffOf(table, everythingOld);
      counts[table] = options.dryRun ? await lakehouse.countExpired(table, before) : await lakehouse.deleteExpired(table, before);
    }
    if (!options.dryRun) for (const table of PURGED_TABLES) compacted.push((await lakehouse.compactTable(table))!);
    return counts;
  }

  /** Captures every version up to the latest, as a capture cycle does. */
  async function capture(fromVersion: number): Promise<number> {
    const { tableId, latestVersion } = await lakehouse.describeSource(source());
    await lakehouse.appendRangeToRegistry(source(), { fromVersion, toVersion: latestVersion }, tableId);
    await lakehouse.refreshChangedIds();
    return latestVersion + 1;
  }

  async function dispatch(runKey: string, finishWith: (batch: BatchKey) => 'succeeded' | 'parked' = () => 'succeeded'): Promise<string[]> {
    await lakehouse.openFanInRun(runKey);
    const { batchCount } = await lakehouse.snapshotBatches(runKey, 2, 1);
    for (let batchNumber = 1; batchNumber <= batchCount; batchNumber++) {
      const batch = { runKey, batchNumber };
      await lakehouse.recordBatchLaunch(batch, 1, { runId: `${runKey}-${batchNumber}`, runPageUrl: 'https://example.invalid/run' });
      await lakehouse.recordBatchOutcome(batch, 1, { status: finishWith(batch), stateMessage: 'done' });
    }
    expect(await lakehouse.commitFanInRun(runKey)).toEqual({ committed: true });
    return (await spark.sql(`SELECT uts_id FROM ${config.tables.batches} WHERE run_key = '${runKey}' ORDER BY uts_id`)).map((r) => String(r.uts_id));
  }

  beforeAll(async () => {
    upstream = `${schema}_up.orders`;
    config = realDeltaConfig(schema, [{ name: 'orders', table: upstream }]);
    spark = new Spark(config);
    lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await spark.sql(`CREATE TABLE ${upstream} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);

    await spark.sql(`INSERT INTO ${upstream} VALUES ('a', 1), ('b', 1), ('c', 1)`);
    let next = await capture(1);
    await dispatch('run-1');
    await spark.sql(`INSERT INTO ${upstream} VALUES ('d', 1), ('e', 1), ('f', 1)`);
    next = await capture(next);
    // run-2: d and e succeed in batch 1; f's batch parks (it stays, ids and state).
    await dispatch('run-2', (batch) => (batch.batchNumber === 1 ? 'succeeded' : 'parked'));
    await spark.sql(`INSERT INTO ${upstream} VALUES ('g', 1)`);
    await capture(next); // captured, not dispatched

    sizesBeforeDryRun = await sizes();
    dryRun = await purgeAll({ dryRun: true });
    sizesAfterDryRun = await sizes();
    purged = await purgeAll({ dryRun: false });
  }, 300_000);

  afterAll(async () => {
    await lakehouse?.close();
    await spark?.close();
  });

  it('counts in a dry run what the purge then deletes, and deletes nothing itself', () => {
    expect(sizesAfterDryRun).toEqual(sizesBeforeDryRun);
    expect(dryRun).toEqual(purged);
  });

  it('deletes the dispatched registry and changed-ids rows and keeps the one not dispatched', async () => {
    expect(purged).toEqual(expect.objectContaining({ registry: 6, changedIds: 6 }));
    expect((await spark.sql(`SELECT uts_id FROM ${config.tables.registry}`)).map((r) => r.uts_id)).toEqual(['g']);
    expect((await spark.sql(`SELECT uts_id FROM ${config.tables.changedIds}`)).map((r) => r.uts_id)).toEqual(['g']);
  });

  it('deletes succeeded batches with their ids and keeps the parked one', async () => {
    expect(purged).toEqual(expect.objectContaining({ batchStates: 3, batches: 5 }));
    const states = await spark.sql(`SELECT run_key, batch_number, status FROM ${config.tables.batchStates}`);
    expect(states).toEqual([{ run_key: 'run-2', batch_number: 2, status: 'parked' }]);
    expect((await spark.sql(`SELECT uts_id FROM ${config.tables.batches}`)).map((r) => r.uts_id)).toEqual(['f']);
  });

  it('keeps the latest committed window and compacts every purged table', async () => {
    expect(purged.fanInRuns).toBe(1);
    expect((await spark.sql(`SELECT run_key FROM ${config.tables.fanInRuns}`)).map((r) => r.run_key)).toEqual(['run-2']);
    expect(compacted.sort()).toEqual([config.tables.batchStates, config.tables.batches, config.tables.changedIds, config.tables.fanInRuns, config.tables.registry].sort());
    const [history] = await spark.sql(`DESCRIBE HISTORY ${config.tables.registry} LIMIT 1`);
    expect(history!.operation).toBe('OPTIMIZE');
  });

  it('dispatches what changes next, an id whose rows were purged included', async () => {
    const { latestVersion } = await lakehouse.describeSource(source());
    await spark.sql(`UPDATE ${upstream} SET amount = 2 WHERE uts_id = 'a'`);
    await capture(latestVersion + 1);
    expect(await dispatch('run-3')).toEqual(['a', 'g']);
  });

  it('shows the ids changed in the last day in the consumer view', async () => {
    const rows = await spark.sql(`SELECT uts_id, sources FROM ${config.tables.consumerView} ORDER BY uts_id`);
    expect(rows.map((r) => r.uts_id)).toEqual(['a', 'g']);
  });
});
