import type { TablesConfig } from '../../config/schema';
import { quoteIdent } from './duck';

/**
 * Every SQL statement the local lakehouse runs against the pipeline's own tables, one named
 * function each. Identifiers go through `quoteIdent`; values are `?` parameters, except the CDF
 * relation, which the engine builds from validated integers (see LocalDeltaEngine.changesRelation).
 */
export function pipelineStatements(tables: TablesConfig) {
  const t = {
    registry: quoteIdent(tables.registry),
    offsets: quoteIdent(tables.offsets),
    changedIds: quoteIdent(tables.changedIds),
    batches: quoteIdent(tables.batches),
    fanInRuns: quoteIdent(tables.fanInRuns),
    batchStates: quoteIdent(tables.batchStates),
    master: quoteIdent(tables.master),
    target: quoteIdent(tables.target),
  };
  const schemas = [...new Set(Object.values(tables).filter((n) => n.includes('.')).map((n) => n.split('.')[0]!))];
  /** Per (source, table id): the end of its latest committed window, as openFanInRun reads it. */
  const dispatchWatermarks = `SELECT source, table_id, arg_max(through_version, opened_at) AS dispatched FROM ${t.fanInRuns} WHERE status = 'committed' GROUP BY source, table_id`;
  const finishedBatches = `SELECT s.run_key, s.batch_number FROM ${t.batchStates} s
      WHERE s.status = 'succeeded' AND s.updated_at < ?::TIMESTAMP
        AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} r WHERE r.run_key = s.run_key AND r.status = 'open')`;

  return {
    createSchemas: schemas.map((schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`),

    createTables: [
      `CREATE TABLE IF NOT EXISTS ${t.registry} (
        source VARCHAR NOT NULL, table_id VARCHAR NOT NULL, uts_id VARCHAR NOT NULL, change_type VARCHAR NOT NULL,
        commit_version BIGINT NOT NULL, commit_timestamp TIMESTAMP NOT NULL, extra VARCHAR, captured_at TIMESTAMP NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${t.offsets} (
        source VARCHAR PRIMARY KEY, source_table VARCHAR NOT NULL, table_id VARCHAR NOT NULL,
        last_version BIGINT NOT NULL, last_commit_timestamp TIMESTAMP, updated_at TIMESTAMP NOT NULL, replay_generation BIGINT NOT NULL DEFAULT 0)`,
      // Offsets tables from before the replay generation get the column (0 for every row).
      `ALTER TABLE ${t.offsets} ADD COLUMN IF NOT EXISTS replay_generation BIGINT DEFAULT 0`,
      `CREATE TABLE IF NOT EXISTS ${t.changedIds} (
        source VARCHAR NOT NULL, table_id VARCHAR NOT NULL, uts_id VARCHAR NOT NULL, last_commit_version BIGINT NOT NULL,
        last_commit_timestamp TIMESTAMP NOT NULL, change_count BIGINT NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${t.fanInRuns} (
        run_key VARCHAR NOT NULL, source VARCHAR NOT NULL, table_id VARCHAR NOT NULL, after_version BIGINT NOT NULL, through_version BIGINT NOT NULL,
        status VARCHAR NOT NULL, opened_at TIMESTAMP NOT NULL, committed_at TIMESTAMP, PRIMARY KEY (run_key, source, table_id))`,
      `CREATE TABLE IF NOT EXISTS ${t.batches} (
        run_key VARCHAR NOT NULL, batch_number INTEGER NOT NULL, uts_id VARCHAR NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${t.batchStates} (
        run_key VARCHAR NOT NULL, batch_number INTEGER NOT NULL, status VARCHAR NOT NULL, attempts INTEGER NOT NULL,
        attempt_limit INTEGER NOT NULL, ids BIGINT NOT NULL, run_id VARCHAR, run_page_url VARCHAR, state_message VARCHAR,
        reason VARCHAR, updated_at TIMESTAMP NOT NULL, PRIMARY KEY (run_key, batch_number))`,
      `CREATE TABLE IF NOT EXISTS ${t.master} (
        uts_id VARCHAR PRIMARY KEY, display_name VARCHAR NOT NULL, score DOUBLE NOT NULL, updated_at TIMESTAMP NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${t.target} (
        uts_id VARCHAR PRIMARY KEY, display_name VARCHAR NOT NULL, score DOUBLE NOT NULL, master_updated_at TIMESTAMP NOT NULL,
        run_key VARCHAR NOT NULL, batch_number INTEGER NOT NULL, processed_at TIMESTAMP NOT NULL)`,
    ],

    /** The pull-style view: every uts_id changed in the last `hours`, by commit time; `replace` (bootstrap) applies a new window. */
    createConsumerView: (hours: number, replace: boolean) => {
      if (!Number.isSafeInteger(hours) || hours <= 0) throw new RangeError(`hours must be a positive integer, got ${hours}`);
      return `CREATE ${replace ? 'OR REPLACE VIEW' : 'VIEW IF NOT EXISTS'} ${quoteIdent(tables.consumerView)} AS
        SELECT uts_id, max(commit_timestamp) AS last_changed_at, count(*) AS changes, list_sort(list(DISTINCT source)) AS sources
        FROM ${t.registry}
        WHERE commit_timestamp >= now()::TIMESTAMP - INTERVAL (${hours}) HOUR
        GROUP BY uts_id`;
    },

    /** Counts per change type in a pinned CDF range. */
    summarizeChanges: (changes: string, key: string) =>
      `SELECT _change_type AS change_type, count(*) AS n, count(*) FILTER (WHERE ${quoteIdent(key)} IS NULL) AS null_keys
       FROM ${changes} GROUP BY _change_type`,

    /**
     * One row per (uts_id, commit_version) of the table with this id: an update's pre- and
     * post-image collapse into one `update`-family row, keeping the most telling change type. A
     * hash aggregate, not a window: a window sorts the whole range (n log n, and spills at millions
     * of rows), the aggregate grows with the rows. It reads nothing of the registry: DuckDB
     * materialises in memory, unspillably, every row of an INSERT that also reads its own target,
     * so an anti-join against the registry here ran a 5M-row range out of a 128 MB limit. The
     * caller makes it idempotent instead (see LocalLakehouse.appendRangeToRegistry). No primary
     * key either: DuckDB keeps index pages in memory, so a key over a registry of millions of rows
     * would hold the worker's memory hostage. Params: source, table id.
     */
    appendRangeToRegistry: (changes: string, key: string, extraColumns: readonly string[]) => {
      const extra = extraColumns.length
        ? `to_json(struct_pack(${extraColumns.map((c) => `${quoteIdent(c)} := ${quoteIdent(c)}`).join(', ')}))::VARCHAR`
        : 'NULL';
      const rank = `CASE _change_type WHEN 'delete' THEN 0 WHEN 'insert' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END`;
      return `INSERT INTO ${t.registry} (source, table_id, uts_id, change_type, commit_version, commit_timestamp, extra, captured_at)
        SELECT ?, ?, uts_id, picked.change_type, commit_version, commit_timestamp, picked.extra, now()::TIMESTAMP FROM (
          SELECT CAST(${quoteIdent(key)} AS VARCHAR) AS uts_id, _commit_version AS commit_version, max(_commit_timestamp) AS commit_timestamp,
                 arg_min(struct_pack(change_type := _change_type, extra := ${extra}), ${rank}) AS picked
          FROM ${changes} WHERE ${quoteIdent(key)} IS NOT NULL
          GROUP BY ${quoteIdent(key)}, _commit_version)`;
    },

    /** A range captured before (a retry, a replay): its rows go, in the transaction that writes them again. Params: source, table id, from, to. */
    deleteRangeFromRegistry: `DELETE FROM ${t.registry} WHERE source = ? AND table_id = ? AND commit_version BETWEEN ? AND ?`,

    /** The range's registry rows by change type (the capture's counts). Params: source, table id, from, to. */
    countRangeInRegistry: `SELECT change_type, count(*) AS n FROM ${t.registry}
      WHERE source = ? AND table_id = ? AND commit_version BETWEEN ? AND ? GROUP BY change_type`,

    readOffset: `SELECT source, table_id, last_version, strftime(last_commit_timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS last_commit_timestamp,
        coalesce(replay_generation, 0) AS replay_generation
      FROM ${t.offsets} WHERE source = ?`,

    /**
     * Monotonic: an offset only moves forward; the table id is recorded with it. Fenced by the
     * replay generation: a capture that began before a rewind writes nothing. Params: source,
     * table, table id, version, commit timestamp, generation, generation.
     */
    mergeOffset: `INSERT INTO ${t.offsets} (source, source_table, table_id, last_version, last_commit_timestamp, updated_at, replay_generation)
      VALUES (?, ?, ?, ?, ?::TIMESTAMP, now()::TIMESTAMP, ?)
      ON CONFLICT (source) DO UPDATE SET source_table = excluded.source_table, table_id = excluded.table_id,
        last_version = excluded.last_version, last_commit_timestamp = excluded.last_commit_timestamp, updated_at = excluded.updated_at
      WHERE excluded.last_version > ${t.offsets}.last_version AND coalesce(${t.offsets}.replay_generation, 0) = ?`,

    /** Replay only: sets the offset unconditionally and starts its next replay generation. */
    rewindOffset: `INSERT INTO ${t.offsets} (source, source_table, table_id, last_version, last_commit_timestamp, updated_at, replay_generation)
      VALUES (?, ?, ?, ?, ?::TIMESTAMP, now()::TIMESTAMP, 1)
      ON CONFLICT (source) DO UPDATE SET source_table = excluded.source_table, table_id = excluded.table_id,
        last_version = excluded.last_version, last_commit_timestamp = excluded.last_commit_timestamp, updated_at = excluded.updated_at,
        replay_generation = coalesce(${t.offsets}.replay_generation, 0) + 1`,

    refreshChangedIds: `CREATE OR REPLACE TABLE ${t.changedIds} AS
      SELECT source, table_id, uts_id, max(commit_version) AS last_commit_version, max(commit_timestamp) AS last_commit_timestamp, count(*) AS change_count
      FROM ${t.registry} GROUP BY source, table_id, uts_id`,

    findOpenFanInRun: `SELECT run_key FROM ${t.fanInRuns} WHERE status = 'open' ORDER BY opened_at, run_key LIMIT 1`,

    /**
     * Window per (source, table id): after the dispatch watermark (the end of the latest committed
     * run, or of an operator's redispatch), through the newest version in the changed-ids view.
     * Registry rows arrive one whole range at a time, so every change up to that newest version is
     * already in the view. A re-created or replaced table has a new id, so its window starts at -1.
     * Params: run key, run key.
     */
    openFanInRun: `INSERT INTO ${t.fanInRuns} (run_key, source, table_id, after_version, through_version, status, opened_at)
      SELECT ?, v.source, v.table_id, coalesce(d.dispatched, -1), v.newest, 'open', now()::TIMESTAMP
      FROM (SELECT source, table_id, max(last_commit_version) AS newest FROM ${t.changedIds} GROUP BY source, table_id) v
      LEFT JOIN (SELECT source, table_id, arg_max(through_version, opened_at) AS dispatched FROM ${t.fanInRuns} WHERE status = 'committed' GROUP BY source, table_id) d
        ON d.source = v.source AND d.table_id = v.table_id
      WHERE v.newest > coalesce(d.dispatched, -1)
        -- A run key is used once: a late (timed-out) attempt must not reopen a run already committed.
        AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} WHERE run_key = ?)`,

    countFanInRunSources: `SELECT count(*) AS n FROM ${t.fanInRuns} WHERE run_key = ?`,

    countBatchRows: `SELECT count(*) AS ids, coalesce(max(batch_number), 0) AS batches FROM ${t.batches} WHERE run_key = ?`,

    /** The run's ids, numbered by uts_id into fixed-size batches. */
    snapshotBatches: `INSERT INTO ${t.batches} (run_key, batch_number, uts_id)
      SELECT ?, ((row_number() OVER (ORDER BY uts_id) - 1) // ?) + 1, uts_id FROM (
        SELECT DISTINCT v.uts_id FROM ${t.changedIds} v
        JOIN ${t.fanInRuns} w ON w.run_key = ? AND w.source = v.source AND w.table_id = v.table_id
        WHERE v.last_commit_version > w.after_version AND v.last_commit_version <= w.through_version)`,

    /** Params: attempt limit, run key. One pending state row per batch of the run. */
    createBatchStates: `INSERT INTO ${t.batchStates} (run_key, batch_number, status, attempts, attempt_limit, ids, updated_at)
      SELECT run_key, batch_number, 'pending', 0, ?, count(*), now()::TIMESTAMP FROM ${t.batches} WHERE run_key = ?
      GROUP BY run_key, batch_number
      ON CONFLICT DO NOTHING`,

    /** Params: run key, limit. Every source window of the run with its ids in the changed-ids view. */
    fanInWindows: `SELECT w.source, w.table_id, w.after_version, w.through_version, count(DISTINCT v.uts_id) AS changed_ids,
        count(*) OVER () AS sources
      FROM ${t.fanInRuns} w
      LEFT JOIN ${t.changedIds} v ON v.source = w.source AND v.table_id = w.table_id
        AND v.last_commit_version > w.after_version AND v.last_commit_version <= w.through_version
      WHERE w.run_key = ? GROUP BY w.source, w.table_id, w.after_version, w.through_version ORDER BY w.source, w.table_id LIMIT ?`,

    /**
     * An operator's replay with redispatch: a committed window ending at `version`, opened after
     * every other, moves the dispatch watermark of (source, table id) back, so the next fan-in
     * dispatches every id changed after it again. Written when the watermark or a window still
     * open reaches past `version`: the open run commits its window later, but the marker was
     * opened after it and stays the watermark. Never otherwise: a marker at or above both would
     * skip changes captured but not dispatched yet. Params: run key, source, table id, version,
     * version, version, source, table id, source, table id.
     */
    rewindDispatchWatermark: `INSERT INTO ${t.fanInRuns} (run_key, source, table_id, after_version, through_version, status, opened_at, committed_at)
      SELECT ?, ?, ?, ?, ?, 'committed', now()::TIMESTAMP, now()::TIMESTAMP
      WHERE ? < greatest(
        (SELECT coalesce(arg_max(through_version, opened_at), -1) FROM ${t.fanInRuns} WHERE status = 'committed' AND source = ? AND table_id = ?),
        (SELECT coalesce(max(through_version), -1) FROM ${t.fanInRuns} WHERE status = 'open' AND source = ? AND table_id = ?))`,

    /** Whether the registry has the table_id column (tables from before it lack it). */
    registryHasTableId: `SELECT count(*) AS n FROM information_schema.columns
      WHERE table_schema = ? AND table_name = ? AND column_name = 'table_id'`,

    /** Params: run key, after batch, limit. */
    pendingBatches: `SELECT batch_number FROM ${t.batchStates}
      WHERE run_key = ? AND batch_number > ? AND status IN ('pending', 'launched', 'failed', 'retry')
      ORDER BY batch_number LIMIT ?`,

    /** Params: limit. Only batches of committed runs: an open run's own batches are its fan-in's. */
    requeuedBatches: `SELECT s.run_key, s.batch_number FROM ${t.batchStates} s
      WHERE s.status IN ('retry', 'launched', 'failed') AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} r WHERE r.run_key = s.run_key AND r.status = 'open')
      ORDER BY s.updated_at, s.run_key, s.batch_number LIMIT ?`,

    batchStateColumns: `run_key, batch_number, status, attempts, attempt_limit, ids, run_id, run_page_url, state_message, reason,
      strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS updated_at`,

    /** Params: run key. */
    batchStatusCounts: `SELECT status, count(*) AS n FROM ${t.batchStates} WHERE run_key = ? GROUP BY status`,

    /** Params: run key, batch. */
    readBatchState: `FROM ${t.batchStates} WHERE run_key = ? AND batch_number = ?`,

    /**
     * Params: attempt, run key, batch, attempt - 1. Takes the batch for its next attempt before the
     * launch, only from a state no attempt is in; the affected-row count says whether it won
     * against an operator's abandon or retry.
     */
    claimBatchAttempt: `UPDATE ${t.batchStates} SET status = 'launched', attempts = ?, run_id = NULL, run_page_url = NULL, state_message = NULL, updated_at = now()::TIMESTAMP
      WHERE run_key = ? AND batch_number = ? AND attempts = ? AND status IN ('pending', 'failed', 'retry')`,

    /** Params: attempt, run id, run page url, run key, batch, attempt. Never back to an earlier attempt, never over a final state. */
    recordBatchLaunch: `UPDATE ${t.batchStates} SET status = 'launched', attempts = ?, run_id = ?, run_page_url = ?, state_message = NULL, updated_at = now()::TIMESTAMP
      WHERE run_key = ? AND batch_number = ? AND attempts <= ? AND status NOT IN ('succeeded', 'abandoned')`,

    /** Params: status, message, extra attempts, run key, batch, attempt. Only the batch's current attempt may set its outcome. */
    recordBatchOutcome: `UPDATE ${t.batchStates} SET status = ?, state_message = ?, attempt_limit = attempt_limit + ?, updated_at = now()::TIMESTAMP
      WHERE run_key = ? AND batch_number = ? AND attempts = ? AND status = 'launched'`,

    /**
     * Params: extra attempts, run key, batch, expected status, attempts, run id ('' for none). Only
     * from the state the operator's command checked. A launched batch with no recorded run stays
     * launched: its attempt's token may have started a run, which the next fan-in asks run-now for.
     */
    requeueBatch: `UPDATE ${t.batchStates} SET status = CASE WHEN status = 'launched' AND run_id IS NULL THEN 'launched' ELSE 'retry' END, attempt_limit = attempts + ?, reason = NULL, updated_at = now()::TIMESTAMP
      WHERE run_key = ? AND batch_number = ? AND status = ? AND attempts = ? AND coalesce(run_id, '') = ? AND status IN ('parked', 'retry', 'failed', 'launched')`,

    /** Params: reason, run key, batch, expected status, attempts, run id ('' for none). The row stays: it is the audit of what was given up. */
    abandonBatch: `UPDATE ${t.batchStates} SET status = 'abandoned', reason = ?, updated_at = now()::TIMESTAMP
      WHERE run_key = ? AND batch_number = ? AND status = ? AND attempts = ? AND coalesce(run_id, '') = ? AND status IN ('parked', 'retry', 'failed', 'launched')`,

    /** Params: statuses…, [run key], limit. */
    listBatches: (statusCount: number, byRunKey: boolean) =>
      `FROM ${t.batchStates} WHERE ${statusCount ? `status IN (${Array(statusCount).fill('?').join(', ')})` : 'true'}
        ${byRunKey ? 'AND run_key = ?' : ''} ORDER BY run_key DESC, batch_number LIMIT ?`,

    /**
     * Params: run key, run key. Only once every batch succeeded, parked or was abandoned (a batch an
     * operator requeued meanwhile is taken by the next fan-in and does not hold the window).
     */
    commitFanInRun: `UPDATE ${t.fanInRuns} SET status = 'committed', committed_at = now()::TIMESTAMP WHERE run_key = ? AND status = 'open'
      AND NOT EXISTS (SELECT 1 FROM ${t.batchStates} WHERE run_key = ? AND status IN ('pending', 'launched', 'failed'))`,

    /** Demo downstream job: master rows of one batch's ids, MERGEd into the target. */
    processBatch: `MERGE INTO ${t.target} AS target
      USING (SELECT m.uts_id, m.display_name, m.score, m.updated_at FROM ${t.batches} b JOIN ${t.master} m ON m.uts_id = b.uts_id
             WHERE b.run_key = ? AND b.batch_number = ?) AS source
      ON target.uts_id = source.uts_id
      WHEN MATCHED THEN UPDATE SET display_name = source.display_name, score = source.score, master_updated_at = source.updated_at,
        run_key = ?, batch_number = ?, processed_at = now()::TIMESTAMP
      WHEN NOT MATCHED THEN INSERT (uts_id, display_name, score, master_updated_at, run_key, batch_number, processed_at)
        VALUES (source.uts_id, source.display_name, source.score, source.updated_at, ?, ?, now()::TIMESTAMP)`,

    /** Demo upstream side effect: every inserted or updated id gets a fresh master row. */
    upsertMasterForPickedIds: `INSERT INTO ${t.master} (uts_id, display_name, score, updated_at)
      SELECT uts_id, 'Entity ' || uts_id, (hash(uts_id, ?::BIGINT) % 10000) / 100.0, ?::TIMESTAMP FROM _pick WHERE op IN ('insert', 'update')
      ON CONFLICT (uts_id) DO UPDATE SET display_name = excluded.display_name, score = excluded.score, updated_at = excluded.updated_at`,

    /**
     * Retention: the rowids of what a purge may delete, per table. Counted by a dry run, deleted
     * by a purge, so both see one predicate. Each takes one param, its cutoff timestamp.
     * Registry rows go once dispatched: at or below the dispatch watermark of their (source, table id).
     */
    expiredRegistryRows: `SELECT r.rowid FROM ${t.registry} r
      JOIN (${dispatchWatermarks}) d ON d.source = r.source AND d.table_id = r.table_id
      WHERE r.commit_timestamp < ?::TIMESTAMP AND r.commit_version <= d.dispatched`,
    /** A changed-ids row whose newest change is dispatched and old: every registry row behind it goes too. */
    expiredChangedIds: `SELECT v.rowid FROM ${t.changedIds} v
      JOIN (${dispatchWatermarks}) d ON d.source = v.source AND d.table_id = v.table_id
      WHERE v.last_commit_timestamp < ?::TIMESTAMP AND v.last_commit_version <= d.dispatched`,
    /** The ids of succeeded batches, never of an open run (an abandoned batch stays: the audit of ids given up). */
    expiredBatchRows: `SELECT b.rowid FROM ${t.batches} b JOIN (${finishedBatches}) k ON k.run_key = b.run_key AND k.batch_number = b.batch_number`,
    expiredBatchStates: `SELECT s.rowid FROM ${t.batchStates} s JOIN (${finishedBatches}) k ON k.run_key = s.run_key AND k.batch_number = s.batch_number`,
    /** Committed windows, except each (source, table id)'s latest: that one is its dispatch watermark. */
    expiredFanInRuns: `SELECT r.rowid FROM ${t.fanInRuns} r
      WHERE r.status = 'committed' AND r.committed_at < ?::TIMESTAMP
        AND r.opened_at < (SELECT max(l.opened_at) FROM ${t.fanInRuns} l WHERE l.status = 'committed' AND l.source = r.source AND l.table_id = r.table_id)`,
    countRows: (rowids: string) => `SELECT count(*) AS n FROM (${rowids})`,
    deleteRows: (table: keyof typeof t, rowids: string) => `DELETE FROM ${t[table]} WHERE rowid IN (${rowids})`,

    tableCounts: `SELECT (SELECT count(*) FROM ${t.registry}) AS registry_rows,
      (SELECT count(DISTINCT uts_id) FROM ${t.changedIds}) AS changed_ids,
      (SELECT count(*) FROM ${t.target}) AS target_rows`,
  };
}

export type PipelineStatements = ReturnType<typeof pipelineStatements>;
