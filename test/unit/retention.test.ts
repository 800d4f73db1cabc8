import { purgeCutoffs } from '../../src/activities/retention';
import { parseConfig } from '../../src/config/load';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { PURGED_TABLES, purgeCutoffOf, type BatchKey, type PurgeCutoffs, type PurgedTable } from '../../src/lakehouse/port';

/*
 * Retention on the local lakehouse: what a purge deletes and, above all, what it must keep.
 * "Old" is decided by the cutoffs: a cutoff in the future makes every row old, so each test
 * controls age without waiting.
 */
const config = parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
const orders = config.sources[0]!;
const EVERYTHING_OLD: PurgeCutoffs = { registryBefore: future(), batchesBefore: future(), fanInRunsBefore: future() };

function future(): string {
  return new Date(Date.now() + 3_600_000).toISOString();
}

let lakehouse: LocalLakehouse;

beforeEach(async () => {
  lakehouse = await LocalLakehouse.open(':memory:', config.tables, { consumerWindowHours: 24 });
  await lakehouse.ensurePipelineTables();
  await ensureDemoSourceTable(lakehouse, orders);
});

afterEach(() => lakehouse.close());

/** What the purge workflow does, table by table in its order: rows deleted (or counted, in a dry run) per table. */
async function purgeAll(cutoffs: PurgeCutoffs, options: { dryRun: boolean }): Promise<Record<PurgedTable, number>> {
  const counts = {} as Record<PurgedTable, number>;
  for (const table of PURGED_TABLES) {
    const before = purgeCutoffOf(table, cutoffs);
    counts[table] = options.dryRun ? await lakehouse.countExpired(table, before) : await lakehouse.deleteExpired(table, before);
  }
  return counts;
}

/** One upstream commit, captured into the registry and the changed-ids view. */
async function commitAndCapture(spec: { insert?: string[]; update?: string[] }): Promise<void> {
  const { version } = await lakehouse.writeUpstreamCommit(orders.table, spec);
  const { tableId } = await lakehouse.describeSource(orders);
  await lakehouse.appendRangeToRegistry(orders, { fromVersion: version, toVersion: version }, tableId);
  await lakehouse.refreshChangedIds();
}

/** Opens a fan-in run and snapshots it; returns its batch keys. */
async function openRun(runKey: string, batchSize = 2): Promise<BatchKey[]> {
  await lakehouse.openFanInRun(runKey);
  const { batchCount } = await lakehouse.snapshotBatches(runKey, batchSize, 1);
  return Array.from({ length: batchCount }, (_, i) => ({ runKey, batchNumber: i + 1 }));
}

async function finish(batch: BatchKey, status: 'succeeded' | 'parked' | 'failed'): Promise<void> {
  await lakehouse.recordBatchLaunch(batch, 1, { runId: 'r1', runPageUrl: 'local-runner://runs/r1' });
  await lakehouse.recordBatchOutcome(batch, 1, { status, stateMessage: status });
}

/** Opens, runs every batch to success and commits a fan-in run; returns the ids it dispatched. */
async function dispatch(runKey: string): Promise<string[]> {
  const batches = await openRun(runKey);
  for (const batch of batches) await finish(batch, 'succeeded');
  expect(await lakehouse.commitFanInRun(runKey)).toEqual({ committed: true });
  return ids(`SELECT uts_id FROM cdf.dispatch_batches WHERE run_key = '${runKey}'`);
}

async function ids(sql: string): Promise<string[]> {
  return (await lakehouse.db.all<{ uts_id: string }>(`${sql} ORDER BY uts_id`)).map((r) => r.uts_id);
}

async function count(table: string): Promise<number> {
  return Number((await lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
}

describe('the retention purge on the local lakehouse', () => {
  it('deletes dispatched registry rows older than the cutoff and keeps every change not dispatched yet', async () => {
    await commitAndCapture({ insert: ['a', 'b'] });
    await dispatch('run-1');
    await commitAndCapture({ insert: ['c'], update: ['a'] });

    const purged = await purgeAll(EVERYTHING_OLD, { dryRun: false });

    expect(purged.registry).toBe(2);
    expect(await ids('SELECT uts_id FROM cdf.change_registry')).toEqual(['a', 'c']);
    expect(await ids('SELECT uts_id FROM cdf.changed_ids')).toEqual(['a', 'c']);
  });

  it('keeps dispatched rows younger than the cutoff', async () => {
    await commitAndCapture({ insert: ['a', 'b'] });
    await dispatch('run-1');
    const past = new Date(Date.now() - 3_600_000).toISOString();

    const purged = await purgeAll({ registryBefore: past, batchesBefore: past, fanInRunsBefore: past }, { dryRun: false });

    expect(purged).toEqual({ registry: 0, changedIds: 0, batches: 0, batchStates: 0, fanInRuns: 0 });
    expect(await count('cdf.change_registry')).toBe(2);
  });

  it('deletes succeeded batches and keeps abandoned ones (the audit of ids given up), parked and requeued ones, and every batch of an open run', async () => {
    await commitAndCapture({ insert: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] });
    const [succeeded, parked, abandoned, requeued] = await openRun('run-1');
    await finish(succeeded!, 'succeeded');
    await finish(parked!, 'parked');
    await finish(abandoned!, 'parked');
    await lakehouse.abandonBatch(abandoned!, 'bad data upstream', { status: 'parked', attempts: 1, runId: 'r1' });
    await finish(requeued!, 'parked');
    await lakehouse.requeueBatch(requeued!, 1, { status: 'parked', attempts: 1, runId: 'r1' });
    expect(await lakehouse.commitFanInRun('run-1')).toEqual({ committed: true });
    await commitAndCapture({ insert: ['x', 'y', 'z'] });
    const [openSucceeded, openPending] = await openRun('run-2');
    await finish(openSucceeded!, 'succeeded');

    const purged = await purgeAll(EVERYTHING_OLD, { dryRun: false });

    expect({ batchStates: purged.batchStates, batches: purged.batches }).toEqual({ batchStates: 1, batches: 2 });
    const left = await lakehouse.db.all<{ run_key: string; batch_number: number; status: string; ids: bigint }>(
      `SELECT s.run_key, s.batch_number, s.status, (SELECT count(*) FROM cdf.dispatch_batches b WHERE b.run_key = s.run_key AND b.batch_number = s.batch_number) AS ids
       FROM cdf.dispatch_batch_states s ORDER BY s.run_key, s.batch_number`,
    );
    expect(left.map((r) => [r.run_key, r.batch_number, r.status, Number(r.ids)])).toEqual([
      ['run-1', parked!.batchNumber, 'parked', 2],
      ['run-1', abandoned!.batchNumber, 'abandoned', 2],
      ['run-1', requeued!.batchNumber, 'retry', 2],
      ['run-2', openSucceeded!.batchNumber, 'succeeded', 2],
      ['run-2', openPending!.batchNumber, 'pending', 1],
    ]);
  });

  it('keeps each source\'s latest committed window, so the next fan-in dispatches only what changed since, a purged id included', async () => {
    await commitAndCapture({ insert: ['a', 'b'] });
    await dispatch('run-1');
    await commitAndCapture({ insert: ['c'] });
    await dispatch('run-2');

    const purged = await purgeAll(EVERYTHING_OLD, { dryRun: false });
    expect(purged.fanInRuns).toBe(1);
    expect(await ids(`SELECT run_key AS uts_id FROM cdf.fan_in_runs`)).toEqual(['run-2']);
    expect(await count('cdf.change_registry')).toBe(0);

    await commitAndCapture({ update: ['a'], insert: ['d'] });
    expect(await dispatch('run-3')).toEqual(['a', 'd']);
  });

  it('counts in a dry run exactly what a purge then deletes, and deletes nothing itself', async () => {
    await commitAndCapture({ insert: ['a', 'b', 'c'] });
    await dispatch('run-1');
    await commitAndCapture({ insert: ['d'] });
    await dispatch('run-2');
    const before = await Promise.all(['cdf.change_registry', 'cdf.changed_ids', 'cdf.dispatch_batches', 'cdf.dispatch_batch_states', 'cdf.fan_in_runs'].map(count));

    const dryRun = await purgeAll(EVERYTHING_OLD, { dryRun: true });
    const after = await Promise.all(['cdf.change_registry', 'cdf.changed_ids', 'cdf.dispatch_batches', 'cdf.dispatch_batch_states', 'cdf.fan_in_runs'].map(count));
    const purge = await purgeAll(EVERYTHING_OLD, { dryRun: false });

    expect(after).toEqual(before);
    expect(dryRun).toEqual(purge);
    expect(dryRun).toEqual({ registry: 4, changedIds: 4, batches: 4, batchStates: 3, fanInRuns: 1 });
  });

  it('computes each cutoff from its own setting and the purge\'s time', () => {
    expect(purgeCutoffs({ registryDays: 30, batchDays: 0.5, fanInRunDays: 90, optimizeAfterPurge: true }, '2026-12-31T00:00:00.000Z')).toEqual({
      registryBefore: '2026-12-01T00:00:00.000Z',
      batchesBefore: '2026-12-30T12:00:00.000Z',
      fanInRunsBefore: '2026-10-02T00:00:00.000Z',
    });
  });
});

describe('the consumer view', () => {
  it('lists each id changed within its window once, with its sources and number of changes', async () => {
    await commitAndCapture({ insert: ['a', 'b'] });
    await commitAndCapture({ update: ['a'] });
    await lakehouse.db.run(`UPDATE cdf.change_registry SET commit_timestamp = commit_timestamp - INTERVAL 2 DAY WHERE uts_id = 'b'`);

    const rows = await lakehouse.db.all<{ uts_id: string; changes: bigint; sources: string[] }>(`SELECT uts_id, changes, sources FROM cdf.changed_uts ORDER BY uts_id`);

    expect(rows.map((r) => [r.uts_id, Number(r.changes), r.sources])).toEqual([['a', 2, ['orders']]]);
  });
});
