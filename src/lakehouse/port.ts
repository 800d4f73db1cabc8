import type { SourceConfig } from '../config/schema';

/**
 * The lakehouse as the pipeline sees it. Every method pushes its work down as SQL and returns
 * counts, versions and descriptors, never lists of ids. Versions are plain numbers at this
 * boundary because they cross Temporal as JSON (Delta versions stay far below 2^53).
 */
export interface Lakehouse {
  /** Creates the registry, offsets, fan-in and demo tables if missing. Idempotent. */
  ensurePipelineTables(): Promise<void>;

  /** Latest committed version of a source table, its timestamp and the table's identity. */
  describeSource(source: SourceConfig): Promise<SourceDescription>;
  /** Only the latest committed version and its timestamp: what an idle poll needs (Databricks: one DESCRIBE HISTORY … LIMIT 1). */
  latestCommit(source: SourceConfig): Promise<{ latestVersion: number; latestCommitTimestamp: string }>;
  readOffset(sourceName: string): Promise<SourceOffset | null>;

  /** Row counts per `_change_type` in `table_changes(table, fromVersion, toVersion)`. */
  summarizeChanges(source: SourceConfig, range: VersionRange): Promise<ChangeCounts>;
  /**
   * Deduplicated append of the range's changed ids to the registry, under the table id the cycle
   * read (dedupe key: source, table id, uts_id, commit version); re-running it adds nothing. The
   * one read of the range's change feed: the counts are of the registry rows the range holds (the
   * same on a re-run), and the commit timestamp of `toVersion` comes from the commit log, so
   * neither the counts nor the offset read the feed again.
   */
  appendRangeToRegistry(source: SourceConfig, range: VersionRange, tableId: string): Promise<RegistryAppend>;
  /**
   * Moves the offset forward to `version` (never back) and records the table id and that
   * version's commit timestamp, only while the offset is still at `replayGeneration`: a capture
   * that began before a replay rewound the offset (a timed-out attempt whose statement still
   * runs) cannot push it forward again, nor bring an old table id back.
   */
  mergeOffset(offset: OffsetUpdate & { commitTimestamp: string | null; replayGeneration: number }): Promise<{ lastVersion: number; advanced: boolean }>;
  /**
   * The one way an offset moves back: an operator's replay. Sets it to `version` (-1 = nothing
   * captured) with the table's current id, which also accepts a replaced table after a resync.
   * With `redispatchAfterVersion` (at least `version`), the dispatch watermark of (source, table
   * id) moves back to it too, so every id changed after it is dispatched again, when anything
   * after it was dispatched or opened for dispatch (`redispatchMarked`). Starts the offset's next
   * replay generation.
   */
  rewindOffset(offset: OffsetUpdate & { redispatchAfterVersion?: number }): Promise<{ replayGeneration: number; redispatchMarked: boolean }>;

  /** Rebuilds the changed-ids view (`GROUP BY source, uts_id` over the registry). */
  refreshChangedIds(): Promise<{ rows: number }>;
  /**
   * Returns the fan-in run that is still open, or opens `proposedRunKey` with a pinned window per
   * source: (last dispatched version, newest version in the changed-ids view].
   */
  openFanInRun(proposedRunKey: string): Promise<FanInRun>;
  /**
   * Writes the run's ids into the batch table once, with one state row per batch (pending, parked
   * after `attemptLimit` failed attempts); later calls return the same snapshot.
   */
  snapshotBatches(runKey: string, batchSize: number, attemptLimit: number): Promise<BatchSnapshot>;
  /** Batch numbers of the run after `afterBatch` still to dispatch (not succeeded, parked or abandoned), ascending. */
  pendingBatches(runKey: string, afterBatch: number, limit: number): Promise<number[]>;
  /** Batches of committed runs that an operator asked to retry and that are not done yet, oldest first. */
  requeuedBatches(limit: number): Promise<BatchKey[]>;
  readBatchState(batch: BatchKey): Promise<BatchState | null>;
  /** How many of the run's batches are in each status. */
  batchStatusCounts(runKey: string): Promise<Partial<Record<BatchStatus, number>>>;
  /**
   * Takes the batch for `attempt` (status launched, no run yet) before its launch, only if it is
   * still at `attempt - 1` and pending, failed or queued for retry. False: something else (an
   * operator's abandon) changed it first, and nothing may be launched.
   */
  claimBatchAttempt(batch: BatchKey, attempt: number): Promise<boolean>;
  /** Records that `attempt` was launched as `runId`; never moves a batch back to an earlier attempt. */
  recordBatchLaunch(batch: BatchKey, attempt: number, run: { runId: string; runPageUrl: string }): Promise<void>;
  /**
   * Records how `attempt` ended: succeeded, failed (to be relaunched) or parked (attempts used up).
   * `uncounted`: the job itself could not run, so the attempt does not count toward parking.
   */
  recordBatchOutcome(batch: BatchKey, attempt: number, outcome: BatchOutcomeRecord): Promise<void>;
  /** Batch states, newest runs first, optionally only those with the given statuses. */
  listBatches(filter: { statuses?: readonly BatchStatus[]; runKey?: string; limit: number }): Promise<BatchState[]>;
  /**
   * An operator's retry of a parked, failed or launched batch (or one queued already): it is queued
   * for the next fan-in with `extraAttempts` more attempts (a launched batch with no recorded run
   * stays launched, with the higher limit). Only from `expected`, the state the command checked (a
   * compare-and-set: an attempt that started meanwhile wins). `changed` says whether this update
   * made the change; `after` is the state read after it (null if there is no such batch).
   */
  requeueBatch(batch: BatchKey, extraAttempts: number, expected: ExpectedBatchState): Promise<BatchChangeResult>;
  /** An operator gives up on a batch (from `expected`, as requeueBatch): it keeps its ids and the reason, and is never launched again. */
  abandonBatch(batch: BatchKey, reason: string, expected: ExpectedBatchState): Promise<BatchChangeResult>;
  /** Marks the run dispatched, which advances every source's dispatch watermark to its window end. */
  commitFanInRun(runKey: string): Promise<{ committed: boolean }>;

  /** The demo downstream job: MERGE the master rows of one batch's ids into the target table. */
  processBatch(runKey: string, batchNumber: number): Promise<{ rowsMerged: number }>;

  /** Row counts of the pipeline's tables, for summaries and status. */
  tableCounts(): Promise<TableCounts>;

  /**
   * Retention: how many rows of `table` are older than `before` and may go. Registry rows once
   * dispatched (at or below their (source, table id)'s dispatch watermark) and the changed-ids rows
   * whose every change is such a row; batches that succeeded (ids and state), outside open runs;
   * committed fan-in windows, except each (source, table id)'s latest, which is its dispatch
   * watermark. Nothing undispatched, open, pending, failed, parked, queued for retry or abandoned
   * (the audit of what was given up) ever qualifies. 0 for an object the engine maintains itself.
   */
  countExpired(table: PurgedTable, before: string): Promise<number>;
  /** Deletes what countExpired counts; returns how many rows it deleted. */
  deleteExpired(table: PurgedTable, before: string): Promise<number>;
  /** Compacts a table after a purge (Databricks: OPTIMIZE); its name, or null when the engine has nothing to do. */
  compactTable(table: PurgedTable): Promise<string | null>;

  close(): Promise<void>;
}

export interface VersionRange {
  fromVersion: number;
  toVersion: number;
}

export interface SourceDescription {
  latestVersion: number;
  latestCommitTimestamp: string;
  tableId: string;
  /** delta.deletedFileRetentionDuration in hours (Delta's default is 168). */
  deletedFileRetentionHours: number;
}

export interface SourceOffset {
  source: string;
  tableId: string;
  lastVersion: number;
  lastCommitTimestamp: string | null;
  /** Replays applied to this offset so far: each rewind starts a new generation, and only a capture of the current one moves the offset. */
  replayGeneration: number;
}

export interface OffsetUpdate {
  source: string;
  table: string;
  tableId: string;
  version: number;
}

export interface RegistryAppend {
  rowsInserted: number;
  /** The range's registry rows by change type: one per (uts_id, commit version), an update's two images counted once as update_postimage. */
  counts: ChangeCounts;
  /** When `toVersion` was committed (ISO-8601), or null if the commit log no longer has it. */
  toVersionCommitTimestamp: string | null;
}

export interface ChangeCounts {
  insert: number;
  update_preimage: number;
  update_postimage: number;
  delete: number;
  /**
   * Rows whose key column is NULL: they cannot be registered. Counted by summarizeChanges (a
   * diagnostic pass over the feed); the capture's counts come from the registry and leave it out.
   */
  nullKeys?: number;
}

export interface FanInRun {
  runKey: string;
  resumed: boolean;
  /** Sources with undispatched versions in this run's window. */
  sources: number;
}

/** One source's part of a fan-in run: versions (afterVersion, throughVersion] and its distinct ids. */
export interface SourceWindow {
  source: string;
  /** The table's identity: a re-created or replaced table is a window of its own. */
  tableId: string;
  afterVersion: number;
  throughVersion: number;
  changedIds: number;
}

export interface BatchSnapshot {
  changedIds: number;
  batchCount: number;
  /** The run's windows, at most MAX_WINDOWS_REPORTED of them (`sources` counts them all). */
  windows: SourceWindow[];
  sources: number;
}

export const MAX_WINDOWS_REPORTED = 50;

export interface BatchOutcomeRecord {
  status: 'succeeded' | 'failed' | 'parked';
  stateMessage: string;
  uncounted?: boolean;
}

/** The state an operator's command checked before changing a batch. */
export type ExpectedBatchState = Pick<BatchState, 'status' | 'attempts' | 'runId'>;

/** What an operator's conditional update of a batch did: whether it changed the row, and the state read after. */
export interface BatchChangeResult {
  changed: boolean;
  after: BatchState | null;
}

export interface BatchKey {
  runKey: string;
  batchNumber: number;
}

/**
 * pending: not launched yet · launched: a run exists for `attempts` · failed: that run failed and
 * the batch will be relaunched · succeeded · parked: attempts used up, waiting for an operator ·
 * retry: an operator asked for another try, the next fan-in takes it · abandoned: an operator gave up.
 */
export type BatchStatus = 'pending' | 'launched' | 'failed' | 'succeeded' | 'parked' | 'retry' | 'abandoned';
export const BATCH_STATUSES: readonly BatchStatus[] = ['pending', 'launched', 'failed', 'succeeded', 'parked', 'retry', 'abandoned'];

export interface BatchState extends BatchKey {
  status: BatchStatus;
  /** Attempts launched so far; attempt N runs under the token `<runKey>-b<batch>-a<N>`. */
  attempts: number;
  /** The batch parks when a failed attempt reaches this number. */
  attemptLimit: number;
  ids: number;
  runId: string | null;
  runPageUrl: string | null;
  stateMessage: string | null;
  /** Why it was abandoned (an operator's words). */
  reason: string | null;
  updatedAt: string;
}

/** The tables a purge deletes from, in its order: the registry before the fan-in runs whose watermarks it reads, batch ids before their states. */
export const PURGED_TABLES = ['registry', 'changedIds', 'batches', 'batchStates', 'fanInRuns'] as const;
export type PurgedTable = (typeof PURGED_TABLES)[number];

/** ISO-8601 instants: rows older than these may go. */
export interface PurgeCutoffs {
  registryBefore: string;
  batchesBefore: string;
  fanInRunsBefore: string;
}

/** The cutoff that applies to `table`: the changed-ids rows follow the registry's, batch ids and states the batches'. */
export function purgeCutoffOf(table: PurgedTable, cutoffs: PurgeCutoffs): string {
  if (table === 'registry' || table === 'changedIds') return cutoffs.registryBefore;
  if (table === 'batches' || table === 'batchStates') return cutoffs.batchesBefore;
  return cutoffs.fanInRunsBefore;
}

/** Rows deleted (or, in a dry run, that would be). */
export interface PurgeCounts {
  registryRows: number;
  /** Rows of the changed-ids object the purge maintains itself (the local table, the `table` strategy); 0 for a materialized view, which drops them at its next refresh. */
  changedIdsRows: number;
  batchRows: number;
  batchStates: number;
  fanInRuns: number;
  /** Tables compacted after the deletes (Databricks: OPTIMIZE); empty in a dry run and on the local lakehouse. */
  optimized: string[];
}

export interface TableCounts {
  registryRows: number;
  changedIds: number;
  targetRows: number;
}
