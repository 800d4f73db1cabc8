import { parseConfig } from '../../src/config/load';
import type { SourceConfig } from '../../src/config/schema';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { TransientError } from '../../src/errors';
import { classifyLakehouseError } from '../../src/lakehouse/errors';
import { LocalLakehouse, type LocalFaults } from '../../src/lakehouse/local/localLakehouse';
import type { BatchKey } from '../../src/lakehouse/port';

const { tables } = parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });

/** A source config with the schema's defaults (keyColumn 'uts_id', extraColumns []) filled in. */
function sourceConfig(overrides: Partial<SourceConfig> = {}): SourceConfig {
  return parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders', ...overrides }] }).sources[0]!;
}

const orders = sourceConfig();

const opened: LocalLakehouse[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((lakehouse) => lakehouse.close()));
});

/** A fresh in-memory lakehouse with the pipeline tables and an empty source table for `source`. */
async function openPipeline(source: SourceConfig = orders, faults?: Partial<LocalFaults>): Promise<LocalLakehouse> {
  const lakehouse = await LocalLakehouse.open(':memory:', tables, { faults });
  opened.push(lakehouse);
  await lakehouse.ensurePipelineTables();
  await ensureDemoSourceTable(lakehouse, source);
  return lakehouse;
}

/** Upstream commits with explicit keys; each also refreshes the demo master rows. Returns its version. */
async function commit(lakehouse: LocalLakehouse, spec: { insert?: string[]; update?: string[]; delete?: string[] }): Promise<number> {
  return (await lakehouse.writeUpstreamCommit(orders.table, spec)).version;
}

/** Registers versions from..to in the registry and rebuilds the changed-ids view, as a capture cycle does. */
async function capture(lakehouse: LocalLakehouse, fromVersion: number, toVersion: number, source: SourceConfig = orders): Promise<number> {
  const { tableId } = await lakehouse.describeSource(source);
  const { rowsInserted } = await lakehouse.appendRangeToRegistry(source, { fromVersion, toVersion }, tableId);
  await lakehouse.refreshChangedIds();
  return rowsInserted;
}

/** Opens a fan-in run, snapshots it, runs every batch to success, commits it, and returns the ids it dispatched. */
async function dispatchAll(lakehouse: LocalLakehouse, runKey: string): Promise<string[]> {
  const run = await lakehouse.openFanInRun(runKey);
  const { batchCount } = await lakehouse.snapshotBatches(run.runKey, 100, 3);
  for (let batchNumber = 1; batchNumber <= batchCount; batchNumber++) await finishAttempt(lakehouse, { runKey: run.runKey, batchNumber }, 1, 'succeeded');
  expect(await lakehouse.commitFanInRun(run.runKey)).toEqual({ committed: batchCount > 0 });
  return batchIds(lakehouse, run.runKey);
}

/** Records one attempt's launch and outcome, as runBatchAttempt does. */
async function finishAttempt(lakehouse: LocalLakehouse, batch: BatchKey, attempt: number, status: 'succeeded' | 'failed' | 'parked'): Promise<void> {
  await lakehouse.recordBatchLaunch(batch, attempt, { runId: `r${attempt}`, runPageUrl: `local-runner://runs/r${attempt}` });
  await lakehouse.recordBatchOutcome(batch, attempt, { status, stateMessage: status });
}

async function registryRows(lakehouse: LocalLakehouse) {
  return lakehouse.db.all<{ uts_id: string; change_type: string; commit_version: bigint; extra: string | null }>(
    `SELECT uts_id, change_type, commit_version, extra FROM cdf.change_registry ORDER BY uts_id, commit_version`,
  );
}

async function batchIds(lakehouse: LocalLakehouse, runKey: string): Promise<string[]> {
  const rows = await lakehouse.db.all<{ uts_id: string }>(`SELECT uts_id FROM cdf.dispatch_batches WHERE run_key = ? ORDER BY uts_id`, [runKey]);
  return rows.map((row) => row.uts_id);
}

async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => {
      throw new Error('expected the call to fail, but it succeeded');
    },
    (error: unknown) => error,
  );
}

describe('LocalLakehouse registry append', () => {
  it('adds no registry rows when a captured range is appended again', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3'] });
    await commit(lakehouse, { update: ['u1'], delete: ['u2'] });
    expect(await capture(lakehouse, 1, 2)).toBe(5);
    expect(await capture(lakehouse, 1, 2)).toBe(0);
    expect(await registryRows(lakehouse)).toHaveLength(5);
  });

  it('adds only the missing rows when a range that holds some of its rows is appended again', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3'] });
    await commit(lakehouse, { update: ['u1'], delete: ['u2'] });
    expect(await capture(lakehouse, 1, 2)).toBe(5);
    await lakehouse.db.run(`DELETE FROM cdf.change_registry WHERE uts_id = 'u3'`);
    expect(await capture(lakehouse, 1, 2)).toBe(1);
    expect(await registryRows(lakehouse)).toHaveLength(5);
  });

  it('counts the range\'s registry rows by change type, the same on a re-run', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3'] });
    await commit(lakehouse, { update: ['u1'], delete: ['u2'] });
    const { tableId } = await lakehouse.describeSource(orders);
    const counts = { insert: 3, update_preimage: 0, update_postimage: 1, delete: 1 };
    expect((await lakehouse.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 2 }, tableId)).counts).toEqual(counts);
    expect((await lakehouse.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 2 }, tableId)).counts).toEqual(counts);
    expect((await lakehouse.appendRangeToRegistry(orders, { fromVersion: 2, toVersion: 2 }, tableId)).counts).toEqual({ ...counts, insert: 0 });
  });

  it("registers an update's pre- and post-image as one row per id and version", async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2'] });
    const version = await commit(lakehouse, { update: ['u1', 'u2'] });
    expect(await capture(lakehouse, version, version)).toBe(2);
    expect(await registryRows(lakehouse)).toEqual([
      { uts_id: 'u1', change_type: 'update_postimage', commit_version: 2n, extra: null },
      { uts_id: 'u2', change_type: 'update_postimage', commit_version: 2n, extra: null },
    ]);
  });

  it('stores the configured extra columns as JSON in the extra column', async () => {
    const withStatus = sourceConfig({ extraColumns: ['status'] });
    const lakehouse = await openPipeline(withStatus);
    await commit(lakehouse, { insert: ['u1'] });
    await capture(lakehouse, 1, 1, withStatus);
    const [upstream] = await lakehouse.db.all<{ status: string }>(`SELECT status FROM upstream.orders WHERE uts_id = 'u1'`);
    const [registered] = await registryRows(lakehouse);
    expect(JSON.parse(registered!.extra!)).toEqual({ status: upstream!.status });
  });

  it('fails an append with a transient error when write conflicts are injected', async () => {
    const lakehouse = await openPipeline(orders, { transientConflictRate: 1 });
    await commit(lakehouse, { insert: ['u1'] });
    const error = await rejectionOf(lakehouse.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 1 }, 'table-id'));
    const classified = classifyLakehouseError(error);
    expect(classified).toBeInstanceOf(TransientError);
    expect(classified.type).toBe('DELTA_CONCURRENT_APPEND');
  });
});

describe('LocalLakehouse offsets', () => {
  it('never moves an offset backwards', async () => {
    const lakehouse = await openPipeline();
    for (let i = 1; i <= 5; i++) await commit(lakehouse, { insert: [`u${i}`] });
    const { tableId } = await lakehouse.describeSource(orders);
    const offset = (version: number) => ({ source: orders.name, table: orders.table, tableId, version, commitTimestamp: null, replayGeneration: 0 });

    expect(await lakehouse.mergeOffset(offset(5))).toEqual({ lastVersion: 5, advanced: true });
    expect(await lakehouse.mergeOffset(offset(3))).toEqual({ lastVersion: 5, advanced: false });
    expect((await lakehouse.readOffset(orders.name))?.lastVersion).toBe(5);
  });

  it('records the table id and the commit timestamp the append read for the offset version', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1'] });
    const described = await lakehouse.describeSource(orders);
    const appended = await lakehouse.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 1 }, described.tableId);
    expect(appended.toVersionCommitTimestamp).toBe(described.latestCommitTimestamp);
    await lakehouse.mergeOffset({ source: orders.name, table: orders.table, tableId: described.tableId, version: 1, commitTimestamp: appended.toVersionCommitTimestamp, replayGeneration: 0 });
    expect(await lakehouse.readOffset(orders.name)).toEqual({
      source: 'orders',
      tableId: described.tableId,
      lastVersion: 1,
      lastCommitTimestamp: described.latestCommitTimestamp,
      replayGeneration: 0,
    });
  });
});

describe('LocalLakehouse fan-in', () => {
  it('returns the same open run on a second open, marked resumed, until it is committed', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1'] });
    await capture(lakehouse, 1, 1);

    expect(await lakehouse.openFanInRun('run-1')).toEqual({ runKey: 'run-1', resumed: false, sources: 1 });
    expect(await lakehouse.openFanInRun('run-2')).toEqual({ runKey: 'run-1', resumed: true, sources: 1 });
    await lakehouse.commitFanInRun('run-1');
    await commit(lakehouse, { insert: ['u2'] });
    await capture(lakehouse, 2, 2);
    expect(await lakehouse.openFanInRun('run-2')).toEqual({ runKey: 'run-2', resumed: false, sources: 1 });
  });

  it('never reopens a committed run key, so a timed-out open that runs late opens nothing', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1'] });
    await capture(lakehouse, 1, 1);
    await lakehouse.openFanInRun('run-1');
    await lakehouse.commitFanInRun('run-1');
    await commit(lakehouse, { insert: ['u2'] });
    await capture(lakehouse, 2, 2);
    await lakehouse.refreshChangedIds();

    await lakehouse.openFanInRun('run-1');
    const open = await lakehouse.db.all(`SELECT run_key FROM cdf.fan_in_runs WHERE status = 'open'`);
    expect(open).toEqual([]);
  });

  it('numbers snapshot batches by the given size', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7'] });
    await capture(lakehouse, 1, 1);
    const { runKey } = await lakehouse.openFanInRun('run-1');

    expect(await lakehouse.snapshotBatches(runKey, 3, 3)).toMatchObject({ changedIds: 7, batchCount: 3 });
    const sizes = await lakehouse.db.all<{ batch_number: number; n: bigint }>(
      `SELECT batch_number, count(*) AS n FROM cdf.dispatch_batches WHERE run_key = ? GROUP BY batch_number ORDER BY batch_number`,
      [runKey],
    );
    expect(sizes.map((row) => [row.batch_number, Number(row.n)])).toEqual([
      [1, 3],
      [2, 3],
      [3, 1],
    ]);
  });

  it('returns the same snapshot and writes no duplicate rows when a run is snapshotted again', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3', 'u4', 'u5'] });
    await capture(lakehouse, 1, 1);
    const { runKey } = await lakehouse.openFanInRun('run-1');

    const first = await lakehouse.snapshotBatches(runKey, 2, 3);
    expect(await lakehouse.snapshotBatches(runKey, 2, 3)).toEqual(first);
    expect(await batchIds(lakehouse, runKey)).toEqual(['u1', 'u2', 'u3', 'u4', 'u5']);
  });

  it('opens a run covering no sources and snapshots no ids when nothing changed since the last commit', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2'] });
    await capture(lakehouse, 1, 1);
    await dispatchAll(lakehouse, 'run-1');

    const next = await lakehouse.openFanInRun('run-2');
    expect(next).toEqual({ runKey: 'run-2', resumed: false, sources: 0 });
    expect(await lakehouse.snapshotBatches(next.runKey, 100, 3)).toEqual({ changedIds: 0, batchCount: 0, windows: [], sources: 0 });
  });

  it('snapshots only ids changed after the last dispatch, not ids whose newest change was dispatched', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3'] });
    await capture(lakehouse, 1, 1);
    expect(await dispatchAll(lakehouse, 'run-1')).toEqual(['u1', 'u2', 'u3']);

    await commit(lakehouse, { update: ['u2'] });
    await capture(lakehouse, 2, 2);
    expect(await dispatchAll(lakehouse, 'run-2')).toEqual(['u2']);
  });

  it("merges the master rows of one batch's ids into the target", async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2', 'u3', 'u4'] });
    await capture(lakehouse, 1, 1);
    const { runKey } = await lakehouse.openFanInRun('run-1');
    await lakehouse.snapshotBatches(runKey, 2, 3);

    expect(await lakehouse.processBatch(runKey, 1)).toEqual({ rowsMerged: 2 });
    const target = await lakehouse.db.all(
      `SELECT uts_id, display_name, score, master_updated_at AS updated_at, run_key, batch_number FROM demo.entity_target ORDER BY uts_id`,
    );
    const master = await lakehouse.db.all(
      `SELECT uts_id, display_name, score, updated_at, ? AS run_key, 1 AS batch_number FROM demo.entity_master WHERE uts_id IN ('u1', 'u2') ORDER BY uts_id`,
      [runKey],
    );
    expect(master).toHaveLength(2);
    expect(target).toEqual(master);
  });

  describe('batch states', () => {
    /** A run of `ids` inserted ids, snapshotted in batches of 2 with `attemptLimit` attempts each. */
    async function snapshotted(ids: string[], attemptLimit = 2) {
      const lakehouse = await openPipeline();
      await commit(lakehouse, { insert: ids });
      await capture(lakehouse, 1, 1);
      const { runKey } = await lakehouse.openFanInRun('run-1');
      const snapshot = await lakehouse.snapshotBatches(runKey, 2, attemptLimit);
      return { lakehouse, runKey, snapshot };
    }

    it('reports the window of every source with its ids', async () => {
      const { lakehouse, snapshot } = await snapshotted(['u1', 'u2', 'u3']);
      const { tableId } = await lakehouse.describeSource(orders);
      expect(snapshot).toEqual({ changedIds: 3, batchCount: 2, sources: 1, windows: [{ source: 'orders', tableId, afterVersion: -1, throughVersion: 1, changedIds: 3 }] });
    });

    it('starts every batch pending with no attempts and its id count', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2', 'u3']);
      expect(await lakehouse.listBatches({ runKey, limit: 10 })).toEqual([
        expect.objectContaining({ batchNumber: 1, status: 'pending', attempts: 0, attemptLimit: 2, ids: 2 }),
        expect.objectContaining({ batchNumber: 2, status: 'pending', attempts: 0, attemptLimit: 2, ids: 1 }),
      ]);
      expect(await lakehouse.pendingBatches(runKey, 0, 10)).toEqual([1, 2]);
    });

    it('does not commit a window while a batch has no final outcome', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2', 'u3']);
      await finishAttempt(lakehouse, { runKey, batchNumber: 1 }, 1, 'succeeded');
      await finishAttempt(lakehouse, { runKey, batchNumber: 2 }, 1, 'failed');
      expect(await lakehouse.commitFanInRun(runKey)).toEqual({ committed: false });
      expect(await lakehouse.pendingBatches(runKey, 0, 10)).toEqual([2]);
    });

    it('commits a window whose batches succeeded or parked, and keeps the parked batch and its ids', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2', 'u3']);
      await finishAttempt(lakehouse, { runKey, batchNumber: 1 }, 1, 'succeeded');
      await finishAttempt(lakehouse, { runKey, batchNumber: 2 }, 2, 'parked');
      expect(await lakehouse.commitFanInRun(runKey)).toEqual({ committed: true });
      expect(await lakehouse.listBatches({ statuses: ['parked'], limit: 10 })).toEqual([expect.objectContaining({ runKey, batchNumber: 2, attempts: 2, ids: 1 })]);
      expect(await batchIds(lakehouse, runKey)).toEqual(['u1', 'u2', 'u3']);
    });

    it('never records an older attempt over a newer one', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2']);
      const batch = { runKey, batchNumber: 1 };
      await lakehouse.recordBatchLaunch(batch, 2, { runId: 'r2', runPageUrl: 'x' });
      await lakehouse.recordBatchLaunch(batch, 1, { runId: 'r1', runPageUrl: 'x' });
      await lakehouse.recordBatchOutcome(batch, 1, { status: 'failed', stateMessage: 'late' });
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'launched', attempts: 2, runId: 'r2' }));
    });

    it('requeues a parked batch of a committed run with more attempts, and lists it for the next fan-in', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2', 'u3']);
      await finishAttempt(lakehouse, { runKey, batchNumber: 1 }, 1, 'succeeded');
      await finishAttempt(lakehouse, { runKey, batchNumber: 2 }, 2, 'parked');
      await lakehouse.commitFanInRun(runKey);
      expect(await lakehouse.requeueBatch({ runKey, batchNumber: 2 }, 3, { status: 'parked', attempts: 2, runId: 'r2' })).toEqual({ changed: true, after: expect.objectContaining({ status: 'retry', attempts: 2, attemptLimit: 5 }) });
      expect(await lakehouse.requeuedBatches(10)).toEqual([{ runKey, batchNumber: 2 }]);
    });

    it('refuses to requeue or abandon a batch that succeeded, or one no longer in the state the command checked', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2']);
      await finishAttempt(lakehouse, { runKey, batchNumber: 1 }, 1, 'succeeded');
      expect(await lakehouse.requeueBatch({ runKey, batchNumber: 1 }, 3, { status: 'succeeded', attempts: 1, runId: 'r1' })).toEqual({ changed: false, after: expect.objectContaining({ status: 'succeeded' }) });
      expect(await lakehouse.abandonBatch({ runKey, batchNumber: 1 }, 'no', { status: 'succeeded', attempts: 1, runId: 'r1' })).toEqual({ changed: false, after: expect.objectContaining({ status: 'succeeded', reason: null }) });
      expect(await lakehouse.abandonBatch({ runKey, batchNumber: 1 }, 'no', { status: 'launched', attempts: 1, runId: 'r1' })).toEqual({ changed: false, after: expect.objectContaining({ status: 'succeeded', reason: null }) });
      expect(await lakehouse.requeueBatch({ runKey, batchNumber: 9 }, 3, { status: 'parked', attempts: 1, runId: 'r1' })).toEqual({ changed: false, after: null });
    });

    it('claims a batch for its next attempt only from pending, failed or retry at the attempt before, and an abandon after the claim changes nothing', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2']);
      const batch = { runKey, batchNumber: 1 };
      expect(await lakehouse.claimBatchAttempt(batch, 2)).toBe(false);
      expect(await lakehouse.claimBatchAttempt(batch, 1)).toBe(true);
      expect(await lakehouse.claimBatchAttempt(batch, 1)).toBe(false);
      expect(await lakehouse.abandonBatch(batch, 'late', { status: 'pending', attempts: 0, runId: null })).toEqual({ changed: false, after: expect.objectContaining({ status: 'launched', attempts: 1, runId: null }) });
      await lakehouse.recordBatchLaunch(batch, 1, { runId: 'r1', runPageUrl: 'x' });
      // A command that checked the batch before its run was recorded changes nothing either.
      expect(await lakehouse.requeueBatch(batch, 3, { status: 'launched', attempts: 1, runId: null })).toEqual({ changed: false, after: expect.objectContaining({ status: 'launched', runId: 'r1', attemptLimit: 2 }) });
    });

    it('requeues a launched batch with no recorded run as launched, with more attempts, so that the next fan-in asks run-now with its token again', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1']);
      const batch = { runKey, batchNumber: 1 };
      await lakehouse.claimBatchAttempt(batch, 1);
      expect(await lakehouse.requeueBatch(batch, 3, { status: 'launched', attempts: 1, runId: null })).toEqual({ changed: true, after: expect.objectContaining({ status: 'launched', attempts: 1, attemptLimit: 4, runId: null }) });
      expect(await lakehouse.pendingBatches(runKey, 0, 10)).toEqual([1]);
    });

    it('abandons a parked batch with its reason, and never lists it for a fan-in again', async () => {
      const { lakehouse, runKey } = await snapshotted(['u1', 'u2']);
      await finishAttempt(lakehouse, { runKey, batchNumber: 1 }, 2, 'parked');
      await lakehouse.commitFanInRun(runKey);
      expect(await lakehouse.abandonBatch({ runKey, batchNumber: 1 }, 'bad upstream rows, reloaded by hand', { status: 'parked', attempts: 2, runId: 'r2' })).toEqual({
        changed: true,
        after: expect.objectContaining({ status: 'abandoned', reason: 'bad upstream rows, reloaded by hand' }),
      });
      expect(await lakehouse.requeuedBatches(10)).toEqual([]);
      expect(await lakehouse.pendingBatches(runKey, 0, 10)).toEqual([]);
    });
  });
});

describe('LocalLakehouse replays', () => {
  it('keeps a capture that began before a rewind from moving the offset forward again', async () => {
    const lakehouse = await openPipeline();
    for (let i = 1; i <= 6; i++) await commit(lakehouse, { insert: [`u${i}`] });
    const { tableId } = await lakehouse.describeSource(orders);
    const offset = (version: number, replayGeneration: number) => ({ source: orders.name, table: orders.table, tableId, version, commitTimestamp: null, replayGeneration });
    await lakehouse.mergeOffset(offset(3, 0));

    const rewound = await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId, version: 1 });
    expect(rewound.replayGeneration).toBe(1);
    // A timed-out captureRange of versions 4–6, begun under generation 0, whose MERGE lands after the rewind.
    expect(await lakehouse.mergeOffset(offset(6, 0))).toEqual({ lastVersion: 1, advanced: false });
    expect(await lakehouse.mergeOffset(offset(2, 1))).toEqual({ lastVersion: 2, advanced: true });
    expect(await lakehouse.readOffset(orders.name)).toMatchObject({ lastVersion: 2, replayGeneration: 1 });
  });

  it('keeps a capture that began before a resync from bringing the old table id back', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1'] });
    const { tableId } = await lakehouse.describeSource(orders);
    await lakehouse.mergeOffset({ source: orders.name, table: orders.table, tableId, version: 1, commitTimestamp: null, replayGeneration: 0 });
    await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId: 'id-of-the-new-table', version: -1 });
    await lakehouse.mergeOffset({ source: orders.name, table: orders.table, tableId, version: 5, commitTimestamp: null, replayGeneration: 0 });
    expect(await lakehouse.readOffset(orders.name)).toMatchObject({ tableId: 'id-of-the-new-table', lastVersion: -1 });
  });

  it('marks a redispatch when the version lies inside a window still open, and the next fan-in dispatches those ids again', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1', 'u2'] });
    await commit(lakehouse, { update: ['u1'], insert: ['u3'] });
    await capture(lakehouse, 1, 2);
    const { tableId } = await lakehouse.describeSource(orders);
    // A fan-in opened its window (-1, 2] and has not committed it: no window was ever committed.
    const open = await lakehouse.openFanInRun('run-1');
    const replay = await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId, version: -1, redispatchAfterVersion: -1 });
    expect(replay.redispatchMarked).toBe(true);
    const { batchCount } = await lakehouse.snapshotBatches(open.runKey, 100, 3);
    for (let batchNumber = 1; batchNumber <= batchCount; batchNumber++) await finishAttempt(lakehouse, { runKey: open.runKey, batchNumber }, 1, 'succeeded');
    await lakehouse.commitFanInRun(open.runKey);
    expect((await batchIds(lakehouse, open.runKey)).sort()).toEqual(['u1', 'u2', 'u3']);

    expect((await dispatchAll(lakehouse, 'run-2')).sort()).toEqual(['u1', 'u2', 'u3']);
  });

  it('writes no redispatch marker when nothing from that version on was dispatched or opened for dispatch', async () => {
    const lakehouse = await openPipeline();
    await commit(lakehouse, { insert: ['u1'] });
    await capture(lakehouse, 1, 1);
    const { tableId } = await lakehouse.describeSource(orders);
    const replay = await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId, version: -1, redispatchAfterVersion: -1 });
    expect(replay.redispatchMarked).toBe(false);
    expect(await dispatchAll(lakehouse, 'run-1')).toEqual(['u1']);
  });

  it('moves the dispatch watermark back only: a second, later redispatch does not skip the first one\'s ids', async () => {
    const lakehouse = await openPipeline();
    for (let i = 1; i <= 4; i++) await commit(lakehouse, { insert: [`u${i}`] });
    await capture(lakehouse, 1, 4);
    const { tableId } = await lakehouse.describeSource(orders);
    await dispatchAll(lakehouse, 'run-1');
    expect((await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId, version: 1, redispatchAfterVersion: 1 })).redispatchMarked).toBe(true);
    expect((await lakehouse.rewindOffset({ source: orders.name, table: orders.table, tableId, version: 3, redispatchAfterVersion: 3 })).redispatchMarked).toBe(false);
    expect((await dispatchAll(lakehouse, 'run-2')).sort()).toEqual(['u2', 'u3', 'u4']);
  });
});
