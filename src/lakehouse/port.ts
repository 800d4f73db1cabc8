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
  readOffset(sourceName: string): Promise<SourceOffset | null>;

  /** Row counts per `_change_type` in `table_changes(table, fromVersion, toVersion)`. */
  summarizeChanges(source: SourceConfig, range: VersionRange): Promise<ChangeCounts>;
  /** Deduplicated append of the range's changed ids to the registry; re-running it adds nothing. */
  appendRangeToRegistry(source: SourceConfig, range: VersionRange): Promise<{ rowsInserted: number }>;
  /** Moves the offset forward to `version` (never back) and records the table id. */
  mergeOffset(offset: OffsetUpdate): Promise<{ lastVersion: number; advanced: boolean }>;
  /**
   * The one way an offset moves back: an operator's replay. Sets it to `version` (-1 = nothing
   * captured) with the table's current id, which also accepts a replaced table after a resync.
   */
  rewindOffset(offset: OffsetUpdate): Promise<void>;

  /** Rebuilds the changed-ids view (`GROUP BY source, uts_id` over the registry). */
  refreshChangedIds(): Promise<{ rows: number }>;
  /**
   * Returns the fan-in run that is still open, or opens `proposedRunKey` with a pinned window per
   * source: (last dispatched version, newest version in the changed-ids view].
   */
  openFanInRun(proposedRunKey: string): Promise<FanInRun>;
  /** Writes the run's ids into the batch table once; later calls return the same snapshot. */
  snapshotBatches(runKey: string, batchSize: number): Promise<BatchSnapshot>;
  /** Marks the run dispatched, which advances every source's dispatch watermark to its window end. */
  commitFanInRun(runKey: string): Promise<{ committed: boolean }>;

  /** The demo downstream job: MERGE the master rows of one batch's ids into the target table. */
  processBatch(runKey: string, batchNumber: number): Promise<{ rowsMerged: number }>;

  /** Row counts of the pipeline's tables, for summaries and status. */
  tableCounts(): Promise<TableCounts>;

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
}

export interface OffsetUpdate {
  source: string;
  table: string;
  tableId: string;
  version: number;
}

export interface ChangeCounts {
  insert: number;
  update_preimage: number;
  update_postimage: number;
  delete: number;
  /** Rows whose key column is NULL: they cannot be registered and are only counted. */
  nullKeys: number;
}

export interface FanInRun {
  runKey: string;
  resumed: boolean;
  /** Sources with undispatched versions in this run's window. */
  sources: number;
}

export interface BatchSnapshot {
  changedIds: number;
  batchCount: number;
}

export interface TableCounts {
  registryRows: number;
  changedIds: number;
  targetRows: number;
}
