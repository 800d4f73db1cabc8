import { IDENTIFIER_PART, isQualifiedName } from '../../config/identifiers';
import type { SourceConfig, TablesConfig } from '../../config/schema';
import type { ExpectedBatchState, PurgedTable, VersionRange } from '../port';
import type { SqlParam, Statement } from './sqlRunner';

/**
 * Every statement the Databricks adapter runs, built as text plus typed parameters and kept apart
 * from the driver, so the same generation can be checked by tests and run on any Delta engine.
 * Identifiers are validated and backquoted here; values are bound as named parameters, except
 * where Databricks needs literals: `table_changes` arguments must be constants (so the table name
 * is a validated string literal and versions are validated integers), and LIMIT takes a literal.
 */
export type ChangedIdsStrategy = 'materializedView' | 'table';

/** Table properties of the `table` strategy's changed-ids table: the registry version it reflects, and of which registry. */
export const REFRESHED_THROUGH_PROPERTY = 'cdf.refreshedThroughRegistryVersion';
export const REFRESHED_FROM_PROPERTY = 'cdf.refreshedFromRegistryTableId';

/**
 * `consumerWindowHours`: create the consumer view over that window (absent: no view);
 * `replaceConsumerView`: replace an existing one (bootstrap; replacing a view takes its owner).
 */
export function databricksStatements(
  tables: TablesConfig,
  changedIds: ChangedIdsStrategy = 'materializedView',
  options: { consumerWindowHours?: number; replaceConsumerView?: boolean } = {},
) {
  const t = Object.fromEntries(Object.entries(tables).map(([key, name]) => [key, quote(name)])) as Record<keyof TablesConfig, string>;
  const schemas = [...new Set(Object.values(tables).filter((n) => n.includes('.')).map((n) => n.split('.').slice(0, -1).join('.')))];
  /** Per (source, table id): the end of its latest committed window, as openFanInRun reads it. */
  const dispatchWatermarks = `SELECT source, table_id, max_by(through_version, opened_at) AS dispatched FROM ${t.fanInRuns} WHERE status = 'committed' GROUP BY source, table_id`;
  /** Batches that succeeded before :before, never of an open run (an abandoned batch stays: it is the audit of ids given up). */
  const finishedBatches = `SELECT s.run_key, s.batch_number FROM ${t.batchStates} AS s
  WHERE s.status = 'succeeded' AND s.updated_at < CAST(:before AS TIMESTAMP)
    AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} AS o WHERE o.run_key = s.run_key AND o.status = 'open')`;
  /** Per (source, table id): when its latest committed window opened; that window is the watermark and stays. */
  const latestCommittedWindows = `SELECT source, table_id, max(opened_at) AS latest FROM ${t.fanInRuns} WHERE status = 'committed' GROUP BY source, table_id`;
  /**
   * Retention, one predicate per table, used by the dry run's count and the purge's delete alike.
   * Deletes are MERGEs: open-source Delta refuses a subquery in a DELETE condition, Databricks takes both.
   */
  const expired = {
    registry: {
      target: t.registry,
      source: dispatchWatermarks,
      on: 'd.source = x.source AND d.table_id = x.table_id AND x.commit_version <= d.dispatched AND x.commit_timestamp < CAST(:before AS TIMESTAMP)',
    },
    changedIds: {
      target: t.changedIds,
      source: dispatchWatermarks,
      on: 'd.source = x.source AND d.table_id = x.table_id AND x.last_commit_version <= d.dispatched AND x.last_commit_timestamp < CAST(:before AS TIMESTAMP)',
    },
    batches: { target: t.batches, source: finishedBatches, on: 'd.run_key = x.run_key AND d.batch_number = x.batch_number' },
    batchStates: { target: t.batchStates, source: finishedBatches, on: 'd.run_key = x.run_key AND d.batch_number = x.batch_number' },
    fanInRuns: {
      target: t.fanInRuns,
      source: latestCommittedWindows,
      on: "d.source = x.source AND d.table_id = x.table_id AND x.status = 'committed' AND x.committed_at < CAST(:before AS TIMESTAMP) AND x.opened_at < d.latest",
    },
  } as const;

  return {
    /** Idempotent DDL for the pipeline's tables and the changed-ids materialized view. */
    createPipelineObjects: (): Statement[] =>
      [
        ...schemas.map((schema) => `CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`),
        // Clustered by the dedupe key's leading columns: per-source MERGEs touch disjoint files and
        // row tracking lets the materialized view refresh incrementally.
        `CREATE TABLE IF NOT EXISTS ${t.registry} (
  source STRING NOT NULL, table_id STRING NOT NULL, uts_id STRING NOT NULL, change_type STRING NOT NULL,
  commit_version BIGINT NOT NULL, commit_timestamp TIMESTAMP NOT NULL, extra STRING, captured_at TIMESTAMP NOT NULL)
USING DELTA CLUSTER BY (source, commit_version)
TBLPROPERTIES ('delta.enableRowTracking' = 'true', 'delta.enableDeletionVectors' = 'true')`,
        `CREATE TABLE IF NOT EXISTS ${t.offsets} (
  source STRING NOT NULL, source_table STRING NOT NULL, table_id STRING NOT NULL,
  last_version BIGINT NOT NULL, last_commit_timestamp TIMESTAMP, updated_at TIMESTAMP NOT NULL, replay_generation BIGINT)
USING DELTA TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')`,
        `CREATE TABLE IF NOT EXISTS ${t.fanInRuns} (
  run_key STRING NOT NULL, source STRING NOT NULL, table_id STRING NOT NULL, after_version BIGINT NOT NULL, through_version BIGINT NOT NULL,
  status STRING NOT NULL, opened_at TIMESTAMP NOT NULL, committed_at TIMESTAMP)
USING DELTA`,
        `CREATE TABLE IF NOT EXISTS ${t.batches} (run_key STRING NOT NULL, batch_number INT NOT NULL, uts_id STRING NOT NULL)
USING DELTA CLUSTER BY (run_key, batch_number)`,
        `CREATE TABLE IF NOT EXISTS ${t.batchStates} (
  run_key STRING NOT NULL, batch_number INT NOT NULL, status STRING NOT NULL, attempts INT NOT NULL, attempt_limit INT NOT NULL,
  ids BIGINT NOT NULL, run_id STRING, run_page_url STRING, state_message STRING, reason STRING, updated_at TIMESTAMP NOT NULL)
USING DELTA CLUSTER BY (run_key, batch_number) TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')`,
        changedIds === 'materializedView'
          ? // GROUP BY rather than DISTINCT, and no scalar-subquery watermark: both keep the refresh incremental.
            `CREATE MATERIALIZED VIEW IF NOT EXISTS ${t.changedIds} AS
SELECT source, table_id, uts_id, max(commit_version) AS last_commit_version, max(commit_timestamp) AS last_commit_timestamp, count(*) AS change_count
FROM ${t.registry} GROUP BY source, table_id, uts_id`
          : `CREATE TABLE IF NOT EXISTS ${t.changedIds} (
  source STRING NOT NULL, table_id STRING NOT NULL, uts_id STRING NOT NULL,
  last_commit_version BIGINT NOT NULL, last_commit_timestamp TIMESTAMP NOT NULL)
USING DELTA CLUSTER BY (source, table_id)`,
        // The pull-style view. Only bootstrap replaces it (a new window): replacing a view takes its
        // owner, which the worker's principal need not be.
        ...(options.consumerWindowHours
          ? [
              `CREATE ${options.replaceConsumerView ? 'OR REPLACE VIEW' : 'VIEW IF NOT EXISTS'} ${t.consumerView} AS
SELECT uts_id, max(commit_timestamp) AS last_changed_at, count(*) AS changes, array_sort(collect_set(source)) AS sources
FROM ${t.registry}
WHERE commit_timestamp >= current_timestamp() - INTERVAL ${literalHours(options.consumerWindowHours)} HOURS
GROUP BY uts_id`,
            ]
          : []),
      ].map((sql) => ({ sql, params: {} })),

    /** Demo tables for the local runner's processor; a real downstream job owns its own. */
    createDemoTables: (): Statement[] =>
      [
        `CREATE TABLE IF NOT EXISTS ${t.master} (uts_id STRING NOT NULL, display_name STRING NOT NULL, score DOUBLE NOT NULL, updated_at TIMESTAMP NOT NULL) USING DELTA`,
        `CREATE TABLE IF NOT EXISTS ${t.target} (uts_id STRING NOT NULL, display_name STRING NOT NULL, score DOUBLE NOT NULL, master_updated_at TIMESTAMP NOT NULL, run_key STRING NOT NULL, batch_number INT NOT NULL, processed_at TIMESTAMP NOT NULL) USING DELTA`,
      ].map((sql) => ({ sql, params: {} })),

    enableChangeDataFeed: (table: string): Statement => ({
      sql: `ALTER TABLE ${quote(table)} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`,
      params: {},
    }),

    /** The newest commit only: `version`, `timestamp`, `operation`, ... (newest first). */
    latestCommit: (table: string): Statement => ({ sql: `DESCRIBE HISTORY ${quote(table)} LIMIT 1`, params: {} }),

    /**
     * The newest `commits` commits, newest first. Without a LIMIT the engine reads every commit the
     * log retains (a month of a table written every few seconds is half a million), however few
     * rows the client then reads.
     */
    history: (table: string, commits: number): Statement => ({ sql: `DESCRIBE HISTORY ${quote(table)} LIMIT ${Math.max(1, Math.floor(commits))}`, params: {} }),

    /**
     * Columns, then a `Type` row: MANAGED, EXTERNAL, VIEW, MATERIALIZED_VIEW, ... (Unity Catalog's
     * table types; open-source Spark reports MANAGED, EXTERNAL or VIEW).
     */
    describeObject: (table: string): Statement => ({ sql: `DESCRIBE TABLE EXTENDED ${quote(table)}`, params: {} }),

    /** One row per column (`col_name`, `data_type`, `comment`), then partitioning rows. */
    describeColumns: (table: string): Statement => ({ sql: `DESCRIBE TABLE ${quote(table)}`, params: {} }),

    /**
     * An offsets table created before the replay generation gets the column; its rows read as
     * generation 0 (NULL, coalesced by every statement that reads it). Delta adds a column without
     * rewriting data, and a NOT NULL one would need the column-defaults table feature.
     */
    addReplayGenerationColumn: (): Statement => ({ sql: `ALTER TABLE ${t.offsets} ADD COLUMNS (replay_generation BIGINT)`, params: {} }),

    /** `id` is the table's identity: it changes when the table is replaced or re-created. */
    tableDetail: (table: string): Statement => ({ sql: `DESCRIBE DETAIL ${quote(table)}`, params: {} }),

    summarizeChanges: (source: SourceConfig, range: VersionRange): Statement => ({
      sql: `SELECT _change_type AS change_type, count(*) AS n, count_if(${quote(source.keyColumn)} IS NULL) AS null_keys
FROM ${tableChanges(source.table, range)}
GROUP BY _change_type`,
      params: {},
    }),

    /**
     * Insert-only MERGE on the dedupe key (source, table id, uts_id, commit_version), over a source already
     * reduced to one row per key (an insert-only MERGE does not reject duplicate source rows, it
     * inserts them twice). Chosen over INSERT … REPLACE WHERE because a re-run then rewrites no
     * file and leaves rows already read by the view untouched, and per-source MERGEs on a
     * table clustered by source touch disjoint rows, so they do not conflict with each other.
     * The reduction is an aggregate (min_by the most telling change type), not a window: a window
     * sorts the whole range, an aggregate grows with it.
     */
    appendRangeToRegistry: (source: SourceConfig, range: VersionRange, tableId: string): Statement => {
      const key = quote(source.keyColumn);
      const extra = source.extraColumns.length
        ? `to_json(named_struct(${source.extraColumns.map((c) => `'${c}', ${quote(c)}`).join(', ')}))`
        : 'CAST(NULL AS STRING)';
      const rank = `CASE _change_type WHEN 'delete' THEN 0 WHEN 'insert' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END`;
      return {
        sql: `MERGE INTO ${t.registry} AS registry
USING (
  SELECT :source AS source, :tableId AS table_id, uts_id, picked.change_type AS change_type, commit_version, commit_timestamp,
         picked.extra AS extra, current_timestamp() AS captured_at FROM (
    SELECT CAST(${key} AS STRING) AS uts_id, _commit_version AS commit_version, max(_commit_timestamp) AS commit_timestamp,
           min_by(named_struct('change_type', _change_type, 'extra', ${extra}), ${rank}) AS picked
    FROM ${tableChanges(source.table, range)}
    WHERE ${key} IS NOT NULL
    GROUP BY ${key}, _commit_version
  )
) AS change
ON registry.source = :source AND registry.table_id = :tableId AND registry.commit_version BETWEEN :fromVersion AND :toVersion
  AND registry.source = change.source AND registry.table_id = change.table_id AND registry.uts_id = change.uts_id AND registry.commit_version = change.commit_version
WHEN NOT MATCHED THEN INSERT *`,
        params: { source: text(source.name), tableId: text(tableId), fromVersion: bigint(range.fromVersion), toVersion: bigint(range.toVersion) },
      };
    },

    /** The range's registry rows by change type (the capture's counts): reads the registry, not the feed again. */
    countRangeInRegistry: (sourceName: string, tableId: string, range: VersionRange): Statement => ({
      sql: `SELECT change_type, count(*) AS n FROM ${t.registry}
WHERE source = :source AND table_id = :tableId AND commit_version BETWEEN :fromVersion AND :toVersion
GROUP BY change_type`,
      params: { source: text(sourceName), tableId: text(tableId), fromVersion: bigint(range.fromVersion), toVersion: bigint(range.toVersion) },
    }),

    /** The commit timestamp as epoch milliseconds: exact whatever the session's time zone (see EPOCH_MS). */
    readOffset: (sourceName: string): Statement => ({
      sql: `SELECT source, table_id, last_version, unix_millis(last_commit_timestamp) AS last_commit_epoch_ms, coalesce(replay_generation, 0) AS replay_generation
FROM ${t.offsets} WHERE source = :source`,
      params: { source: text(sourceName) },
    }),

    /**
     * Forward only, and only while the offset is at the capture's replay generation (a capture
     * begun before a rewind writes nothing); the commit timestamp of the new offset comes from the
     * commit log the append read (null: not known).
     */
    mergeOffset: (source: SourceConfig, tableId: string, version: number, commitTimestamp: string | null, replayGeneration: number): Statement => ({
      sql: `MERGE INTO ${t.offsets} AS offsets
USING (
  SELECT :source AS source, :sourceTable AS source_table, :tableId AS table_id, :version AS last_version,
         ${commitTimestamp === null ? 'CAST(NULL AS TIMESTAMP)' : 'CAST(:commitTimestamp AS TIMESTAMP)'} AS last_commit_timestamp,
         current_timestamp() AS updated_at, :replayGeneration AS replay_generation
) AS next
ON offsets.source = next.source
WHEN MATCHED AND next.last_version > offsets.last_version AND coalesce(offsets.replay_generation, 0) = next.replay_generation THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *`,
      params: {
        source: text(source.name),
        sourceTable: text(source.table),
        tableId: text(tableId),
        version: bigint(version),
        replayGeneration: bigint(replayGeneration),
        ...(commitTimestamp === null ? {} : { commitTimestamp: text(commitTimestamp) }),
      },
    }),

    /** Replay only: sets the offset unconditionally (-1 = nothing captured) and starts its next replay generation. */
    rewindOffset: (source: SourceConfig, tableId: string, version: number): Statement => ({
      sql: `MERGE INTO ${t.offsets} AS offsets
USING (
  SELECT :source AS source, :sourceTable AS source_table, :tableId AS table_id, :version AS last_version,
         CAST(NULL AS TIMESTAMP) AS last_commit_timestamp, current_timestamp() AS updated_at
) AS next
ON offsets.source = next.source
WHEN MATCHED THEN UPDATE SET source_table = next.source_table, table_id = next.table_id, last_version = next.last_version,
  last_commit_timestamp = next.last_commit_timestamp, updated_at = next.updated_at, replay_generation = coalesce(offsets.replay_generation, 0) + 1
WHEN NOT MATCHED THEN INSERT (source, source_table, table_id, last_version, last_commit_timestamp, updated_at, replay_generation)
  VALUES (next.source, next.source_table, next.table_id, next.last_version, next.last_commit_timestamp, next.updated_at, 1)`,
      params: { source: text(source.name), sourceTable: text(source.table), tableId: text(tableId), version: bigint(version) },
    }),

    /**
     * An operator's replay with redispatch: a committed window ending at `version`, opened after
     * every other, moves the dispatch watermark of (source, table id) back. Written when the
     * watermark or a window still open reaches past `version` (the open run commits later, but
     * the marker was opened after it and stays the watermark); never otherwise (a marker at or
     * above both would skip changes captured but not dispatched yet).
     */
    rewindDispatchWatermark: (runKey: string, sourceName: string, tableId: string, version: number): Statement => ({
      sql: `INSERT INTO ${t.fanInRuns} (run_key, source, table_id, after_version, through_version, status, opened_at, committed_at)
SELECT :runKey, :source, :tableId, :version, :version, 'committed', current_timestamp(), current_timestamp()
WHERE :version < greatest(
  (SELECT coalesce(max_by(through_version, opened_at), -1) FROM ${t.fanInRuns} WHERE status = 'committed' AND source = :source AND table_id = :tableId),
  (SELECT coalesce(max(through_version), -1) FROM ${t.fanInRuns} WHERE status = 'open' AND source = :source AND table_id = :tableId))`,
      params: { runKey: text(runKey), source: text(sourceName), tableId: text(tableId), version: bigint(version) },
    }),

    /** `materializedView`: SYNC (the default), the statement returns when the refresh is done, or fails with it. */
    refreshChangedIds: (): Statement => ({ sql: `REFRESH MATERIALIZED VIEW ${t.changedIds}`, params: {} }),

    /**
     * `table`: brings the changed-ids table from registry version `after` up to `through`. It reads
     * the registry as of `through` (time travel), so rows appended meanwhile wait for the next
     * refresh instead of being half seen, and only the rows written after `after` (row tracking
     * gives each row the version that wrote it). The update only ever raises a row's versions, so
     * running it twice (a retry, or a crash before the watermark was stored) writes the same table.
     * Versions are literals: VERSION AS OF takes no parameter.
     */
    mergeChangedIds: (after: number, through: number): Statement => ({
      sql: `MERGE INTO ${t.changedIds} AS v
USING (
  SELECT source, table_id, uts_id, max(commit_version) AS last_commit_version, max(commit_timestamp) AS last_commit_timestamp
  FROM ${t.registry} VERSION AS OF ${literalVersion(through)}
  WHERE _metadata.row_commit_version > ${after < 0 ? -1 : literalVersion(after)}
  GROUP BY source, table_id, uts_id
) AS c
ON v.source = c.source AND v.table_id = c.table_id AND v.uts_id = c.uts_id
WHEN MATCHED AND (c.last_commit_version > v.last_commit_version OR c.last_commit_timestamp > v.last_commit_timestamp) THEN
  UPDATE SET last_commit_version = greatest(v.last_commit_version, c.last_commit_version), last_commit_timestamp = greatest(v.last_commit_timestamp, c.last_commit_timestamp)
WHEN NOT MATCHED THEN INSERT (source, table_id, uts_id, last_commit_version, last_commit_timestamp)
  VALUES (c.source, c.table_id, c.uts_id, c.last_commit_version, c.last_commit_timestamp)`,
      params: {},
    }),

    /** `table`: empties the changed-ids table before a rebuild (the registry was re-created). */
    clearChangedIds: (): Statement => ({ sql: `DELETE FROM ${t.changedIds}`, params: {} }),

    /** `table`: records the registry version the changed-ids table now reflects (DDL takes a literal). */
    markChangedIdsRefreshed: (through: number, registryTableId: string): Statement => ({
      sql: `ALTER TABLE ${t.changedIds} SET TBLPROPERTIES ('${REFRESHED_THROUGH_PROPERTY}' = '${literalVersion(through)}', '${REFRESHED_FROM_PROPERTY}' = '${literalTableId(registryTableId)}')`,
      params: {},
    }),

    findOpenFanInRun: (): Statement => ({
      sql: `SELECT run_key FROM ${t.fanInRuns} WHERE status = 'open' ORDER BY opened_at, run_key LIMIT 1`,
      params: {},
    }),

    /**
     * One statement: opens the run only if no run is open, with a window per (source, table id)
     * after its dispatch watermark (the end of the latest committed window, by opening time).
     */
    openFanInRun: (runKey: string): Statement => ({
      sql: `INSERT INTO ${t.fanInRuns} (run_key, source, table_id, after_version, through_version, status, opened_at, committed_at)
SELECT :runKey, v.source, v.table_id, coalesce(d.dispatched, -1), v.newest, 'open', current_timestamp(), CAST(NULL AS TIMESTAMP)
FROM (SELECT source, table_id, max(last_commit_version) AS newest FROM ${t.changedIds} GROUP BY source, table_id) AS v
LEFT JOIN (SELECT source, table_id, max_by(through_version, opened_at) AS dispatched FROM ${t.fanInRuns} WHERE status = 'committed' GROUP BY source, table_id) AS d
  ON d.source = v.source AND d.table_id = v.table_id
WHERE v.newest > coalesce(d.dispatched, -1)
  AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} WHERE status = 'open' OR run_key = :runKey)`,
      params: { runKey: text(runKey) },
    }),

    countFanInRunSources: (runKey: string): Statement => ({
      sql: `SELECT count(*) AS n FROM ${t.fanInRuns} WHERE run_key = :runKey`,
      params: { runKey: text(runKey) },
    }),

    /** Writes the run's ids once; a second call finds rows for the run key and inserts nothing. */
    snapshotBatches: (runKey: string, batchSize: number): Statement => ({
      sql: `INSERT INTO ${t.batches} (run_key, batch_number, uts_id)
SELECT :runKey, CAST(((row_number() OVER (ORDER BY uts_id) - 1) DIV :batchSize) + 1 AS INT), uts_id
FROM (
  SELECT DISTINCT v.uts_id FROM ${t.changedIds} AS v
  JOIN ${t.fanInRuns} AS w ON w.run_key = :runKey AND w.source = v.source AND w.table_id = v.table_id
  WHERE v.last_commit_version > w.after_version AND v.last_commit_version <= w.through_version
)
WHERE NOT EXISTS (SELECT 1 FROM ${t.batches} WHERE run_key = :runKey)`,
      params: { runKey: text(runKey), batchSize: bigint(batchSize) },
    }),

    countBatchRows: (runKey: string): Statement => ({
      sql: `SELECT count(*) AS ids, coalesce(max(batch_number), 0) AS batches FROM ${t.batches} WHERE run_key = :runKey`,
      params: { runKey: text(runKey) },
    }),

    /** One pending state row per batch of the run; a second call inserts nothing. */
    createBatchStates: (runKey: string, attemptLimit: number): Statement => ({
      sql: `MERGE INTO ${t.batchStates} AS state
USING (
  SELECT run_key, batch_number, 'pending' AS status, 0 AS attempts, CAST(:attemptLimit AS INT) AS attempt_limit, count(*) AS ids,
         CAST(NULL AS STRING) AS run_id, CAST(NULL AS STRING) AS run_page_url, CAST(NULL AS STRING) AS state_message,
         CAST(NULL AS STRING) AS reason, current_timestamp() AS updated_at
  FROM ${t.batches} WHERE run_key = :runKey GROUP BY run_key, batch_number
) AS batch
ON state.run_key = :runKey AND state.run_key = batch.run_key AND state.batch_number = batch.batch_number
WHEN NOT MATCHED THEN INSERT *`,
      params: { runKey: text(runKey), attemptLimit: bigint(attemptLimit) },
    }),

    /** Every source window of the run with its ids in the changed-ids view; LIMIT takes a literal. */
    fanInWindows: (runKey: string, limit: number): Statement => ({
      sql: `SELECT w.source, w.table_id, w.after_version, w.through_version, count(DISTINCT v.uts_id) AS changed_ids, count(*) OVER () AS sources
FROM ${t.fanInRuns} AS w
LEFT JOIN ${t.changedIds} AS v ON v.source = w.source AND v.table_id = w.table_id
  AND v.last_commit_version > w.after_version AND v.last_commit_version <= w.through_version
WHERE w.run_key = :runKey
GROUP BY w.source, w.table_id, w.after_version, w.through_version
ORDER BY w.source, w.table_id LIMIT ${literalLimit(limit)}`,
      params: { runKey: text(runKey) },
    }),

    pendingBatches: (runKey: string, afterBatch: number, limit: number): Statement => ({
      sql: `SELECT batch_number FROM ${t.batchStates}
WHERE run_key = :runKey AND batch_number > :afterBatch AND status IN ('pending', 'launched', 'failed', 'retry')
ORDER BY batch_number LIMIT ${literalLimit(limit)}`,
      params: { runKey: text(runKey), afterBatch: bigint(afterBatch) },
    }),

    /** Only batches of committed runs: an open run's own batches belong to its fan-in. */
    requeuedBatches: (limit: number): Statement => ({
      sql: `SELECT s.run_key, s.batch_number FROM ${t.batchStates} AS s
WHERE s.status IN ('retry', 'launched', 'failed') AND NOT EXISTS (SELECT 1 FROM ${t.fanInRuns} AS r WHERE r.run_key = s.run_key AND r.status = 'open')
ORDER BY s.updated_at, s.run_key, s.batch_number LIMIT ${literalLimit(limit)}`,
      params: {},
    }),

    listBatches: (filter: { statuses: readonly string[]; runKey?: string; limit: number }): Statement => ({
      sql: `SELECT ${BATCH_STATE_COLUMNS} FROM ${t.batchStates}
WHERE ${filter.statuses.length ? `status IN (${filter.statuses.map((_, i) => `:status${i}`).join(', ')})` : 'true'}${filter.runKey !== undefined ? ' AND run_key = :runKey' : ''}
ORDER BY run_key DESC, batch_number LIMIT ${literalLimit(filter.limit)}`,
      params: {
        ...Object.fromEntries(filter.statuses.map((status, i) => [`status${i}`, text(status)])),
        ...(filter.runKey !== undefined ? { runKey: text(filter.runKey) } : {}),
      },
    }),

    batchStatusCounts: (runKey: string): Statement => ({
      sql: `SELECT status, count(*) AS n FROM ${t.batchStates} WHERE run_key = :runKey GROUP BY status`,
      params: { runKey: text(runKey) },
    }),

    readBatchState: (runKey: string, batchNumber: number): Statement => ({
      sql: `SELECT ${BATCH_STATE_COLUMNS} FROM ${t.batchStates} WHERE run_key = :runKey AND batch_number = :batchNumber`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber) },
    }),

    /**
     * Takes the batch for its next attempt before the launch, only from a state no attempt is in;
     * num_affected_rows says whether it won against an operator's abandon or retry.
     */
    claimBatchAttempt: (runKey: string, batchNumber: number, attempt: number): Statement => ({
      sql: `UPDATE ${t.batchStates} SET status = 'launched', attempts = :attempt, run_id = CAST(NULL AS STRING), run_page_url = CAST(NULL AS STRING),
  state_message = CAST(NULL AS STRING), updated_at = current_timestamp()
WHERE run_key = :runKey AND batch_number = :batchNumber AND attempts = :attempt - 1 AND status IN ('pending', 'failed', 'retry')`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber), attempt: int(attempt) },
    }),

    /** Never back to an earlier attempt, never over a final state. */
    recordBatchLaunch: (runKey: string, batchNumber: number, attempt: number, runId: string, runPageUrl: string): Statement => ({
      sql: `UPDATE ${t.batchStates} SET status = 'launched', attempts = :attempt, run_id = :runId, run_page_url = :runPageUrl,
  state_message = CAST(NULL AS STRING), updated_at = current_timestamp()
WHERE run_key = :runKey AND batch_number = :batchNumber AND attempts <= :attempt AND status NOT IN ('succeeded', 'abandoned')`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber), attempt: int(attempt), runId: text(runId), runPageUrl: text(runPageUrl) },
    }),

    /** Only the batch's current attempt may set its outcome. */
    recordBatchOutcome: (runKey: string, batchNumber: number, attempt: number, status: string, stateMessage: string, extraAttempts: number): Statement => ({
      sql: `UPDATE ${t.batchStates} SET status = :status, state_message = :stateMessage, attempt_limit = attempt_limit + :extraAttempts, updated_at = current_timestamp()
WHERE run_key = :runKey AND batch_number = :batchNumber AND attempts = :attempt AND status = 'launched'`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber), attempt: int(attempt), status: text(status), stateMessage: text(stateMessage), extraAttempts: int(extraAttempts) },
    }),

    /**
     * Only from the state the operator's command checked. A launched batch with no recorded run
     * stays launched: its attempt's token may have started a run, which the next fan-in asks run-now for.
     */
    requeueBatch: (runKey: string, batchNumber: number, extraAttempts: number, expected: ExpectedBatchState): Statement => ({
      sql: `UPDATE ${t.batchStates} SET status = CASE WHEN status = 'launched' AND run_id IS NULL THEN 'launched' ELSE 'retry' END, attempt_limit = attempts + :extraAttempts, reason = CAST(NULL AS STRING), updated_at = current_timestamp()
WHERE run_key = :runKey AND batch_number = :batchNumber AND status = :expectedStatus AND attempts = :expectedAttempts AND coalesce(run_id, '') = :expectedRunId AND status IN ('parked', 'retry', 'failed', 'launched')`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber), extraAttempts: int(extraAttempts), expectedStatus: text(expected.status), expectedAttempts: int(expected.attempts), expectedRunId: text(expected.runId ?? '') },
    }),

    /** Only from the state the operator's command checked. The row stays: it is the audit of what was given up and why. */
    abandonBatch: (runKey: string, batchNumber: number, reason: string, expected: ExpectedBatchState): Statement => ({
      sql: `UPDATE ${t.batchStates} SET status = 'abandoned', reason = :reason, updated_at = current_timestamp()
WHERE run_key = :runKey AND batch_number = :batchNumber AND status = :expectedStatus AND attempts = :expectedAttempts AND coalesce(run_id, '') = :expectedRunId AND status IN ('parked', 'retry', 'failed', 'launched')`,
      params: { runKey: text(runKey), batchNumber: int(batchNumber), reason: text(reason), expectedStatus: text(expected.status), expectedAttempts: int(expected.attempts), expectedRunId: text(expected.runId ?? '') },
    }),

    /**
     * Only once every batch succeeded, parked or was abandoned. A MERGE, because open-source Delta
     * refuses a subquery in UPDATE's condition (DELTA_UNSUPPORTED_SUBQUERY) and Databricks takes both.
     */
    commitFanInRun: (runKey: string): Statement => ({
      sql: `MERGE INTO ${t.fanInRuns} AS r
USING (
  SELECT :runKey AS run_key
  WHERE NOT EXISTS (SELECT 1 FROM ${t.batchStates} WHERE run_key = :runKey AND status IN ('pending', 'launched', 'failed'))
) AS ready
ON r.run_key = ready.run_key AND r.status = 'open'
WHEN MATCHED THEN UPDATE SET status = 'committed', committed_at = current_timestamp()`,
      params: { runKey: text(runKey) },
    }),

    processBatch: (runKey: string, batchNumber: number): Statement => ({
      sql: `MERGE INTO ${t.target} AS target
USING (
  SELECT m.uts_id, m.display_name, m.score, m.updated_at FROM ${t.batches} AS b JOIN ${t.master} AS m ON m.uts_id = b.uts_id
  WHERE b.run_key = :runKey AND b.batch_number = :batchNumber
) AS source
ON target.uts_id = source.uts_id
WHEN MATCHED THEN UPDATE SET display_name = source.display_name, score = source.score, master_updated_at = source.updated_at,
  run_key = :runKey, batch_number = :batchNumber, processed_at = current_timestamp()
WHEN NOT MATCHED THEN INSERT (uts_id, display_name, score, master_updated_at, run_key, batch_number, processed_at)
  VALUES (source.uts_id, source.display_name, source.score, source.updated_at, :runKey, :batchNumber, current_timestamp())`,
      params: { runKey: text(runKey), batchNumber: { type: 'INTEGER', value: batchNumber } },
    }),

    /** Retention dry run: how many rows of `table` a purge with this cutoff deletes. */
    countExpired: (table: PurgedTable, before: string): Statement => ({
      sql: `SELECT count(*) AS n FROM ${expired[table].target} AS x JOIN (${expired[table].source}) AS d ON ${expired[table].on}`,
      params: { before: text(before) },
    }),

    /** Retention: deletes what countExpired counts. Every target row matches at most one source row. */
    deleteExpired: (table: PurgedTable, before: string): Statement => ({
      sql: `MERGE INTO ${expired[table].target} AS x USING (${expired[table].source}) AS d ON ${expired[table].on}
WHEN MATCHED THEN DELETE`,
      params: { before: text(before) },
    }),

    /** Compacts a table after a purge deleted rows from it (liquid clustering re-clusters too). */
    optimize: (table: PurgedTable): Statement => ({ sql: `OPTIMIZE ${expired[table].target}`, params: {} }),

    tableCounts: (): Statement => ({
      sql: `SELECT (SELECT count(*) FROM ${t.registry}) AS registry_rows,
  (SELECT count(DISTINCT uts_id) FROM ${t.changedIds}) AS changed_ids,
  (SELECT count(*) FROM ${t.target}) AS target_rows`,
      params: {},
    }),
  };
}

export type DatabricksStatements = ReturnType<typeof databricksStatements>;

/** Backquotes a validated dotted name part by part. */
export function quote(name: string): string {
  return name
    .split('.')
    .map((part) => {
      if (!IDENTIFIER_PART.test(part)) throw new Error(`refusing to quote invalid identifier part "${part}"`);
      return `\`${part}\``;
    })
    .join('.');
}

/** `table_changes('<table>', start, end)` with both ends pinned; arguments must be constants. */
export function tableChanges(table: string, range: VersionRange): string {
  if (!isQualifiedName(table)) throw new Error(`refusing to read changes of invalid table name "${table}"`);
  for (const [field, value] of Object.entries(range)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a non-negative integer, got ${value}`);
  }
  if (range.toVersion < range.fromVersion) throw new RangeError(`toVersion ${range.toVersion} is before fromVersion ${range.fromVersion}`);
  return `table_changes('${table}', ${range.fromVersion}, ${range.toVersion})`;
}

/*
 * EPOCH_MS: timestamps are read as `unix_millis(ts)`, never formatted as text: `date_format`
 * renders the session's time zone (a workspace's TIMEZONE), so a literal 'Z' after it was hours
 * off anywhere but UTC; epoch milliseconds are the instant itself on every engine.
 */
const BATCH_STATE_COLUMNS = `run_key, batch_number, status, attempts, attempt_limit, ids, run_id, run_page_url, state_message, reason,
  unix_millis(updated_at) AS updated_at_epoch_ms`;

/** A Delta table id (a UUID) as it may stand in a DDL literal. */
function literalTableId(id: string): string {
  if (!/^[0-9a-fA-F-]{1,64}$/.test(id)) throw new Error(`refusing table id "${id}" in a table property`);
  return id;
}

function literalHours(hours: number): number {
  if (!Number.isSafeInteger(hours) || hours <= 0) throw new RangeError(`hours must be a positive integer, got ${hours}`);
  return hours;
}

function literalVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`version must be a non-negative integer, got ${version}`);
  return version;
}

/** LIMIT takes a literal on Databricks: a validated positive integer. */
function literalLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  return limit;
}

function int(value: number): SqlParam {
  if (!Number.isSafeInteger(value)) throw new RangeError(`expected an integer, got ${value}`);
  return { type: 'INTEGER', value };
}

function text(value: string): SqlParam {
  return { type: 'STRING', value };
}

function bigint(value: number): SqlParam {
  if (!Number.isSafeInteger(value)) throw new RangeError(`expected an integer, got ${value}`);
  return { type: 'BIGINT', value: BigInt(value) };
}
