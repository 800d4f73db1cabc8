import { randomUUID } from 'node:crypto';
import type { SourceConfig, TablesConfig } from '../../config/schema';
import { SqlEngineError } from '../errors';
import {
  MAX_WINDOWS_REPORTED,
  type BatchKey,
  type BatchOutcomeRecord,
  type BatchSnapshot,
  type BatchState,
  type BatchStatus,
  type ChangeCounts,
  type BatchChangeResult,
  type ExpectedBatchState,
  type FanInRun,
  type Lakehouse,
  type OffsetUpdate,
  type PurgedTable,
  type RegistryAppend,
  type SourceDescription,
  type SourceOffset,
  type SourceWindow,
  type TableCounts,
  type VersionRange,
} from '../port';
import { parseBatchState } from '../batchStateRow';
import { Duck, type DuckStatements } from './duck';
import { LocalDeltaEngine, type CommitResult, type CommitSpec } from './deltaEngine';
import { pipelineStatements, type PipelineStatements } from './statements';

export interface LocalFaults {
  /** Probability that a registry append or offset MERGE fails with a Delta write conflict first. */
  transientConflictRate: number;
}

/**
 * The embedded lakehouse: upstream Delta tables emulated by LocalDeltaEngine and the pipeline's
 * own tables, all in one DuckDB file.
 */
export class LocalLakehouse implements Lakehouse {
  readonly engine: LocalDeltaEngine;
  private readonly sql: PipelineStatements;

  private constructor(
    readonly db: Duck,
    private readonly tables: TablesConfig,
    private readonly faults: LocalFaults,
    private readonly random: () => number,
    private readonly consumerView: { windowHours?: number; replace: boolean } = { replace: false },
  ) {
    this.engine = new LocalDeltaEngine(db);
    this.sql = pipelineStatements(tables);
  }

  static async open(
    path: string,
    tables: TablesConfig,
    options: { faults?: Partial<LocalFaults>; random?: () => number; memoryLimitMB?: number; consumerWindowHours?: number; replaceConsumerView?: boolean } = {},
  ): Promise<LocalLakehouse> {
    const db = await Duck.open(path, { memoryLimitMB: options.memoryLimitMB });
    const lakehouse = new LocalLakehouse(db, tables, { transientConflictRate: 0, ...options.faults }, options.random ?? Math.random, { windowHours: options.consumerWindowHours, replace: options.replaceConsumerView ?? false });
    await lakehouse.engine.ensureCatalog();
    return lakehouse;
  }

  async ensurePipelineTables(): Promise<void> {
    await this.db.transaction(async (tx) => {
      for (const statement of [...this.sql.createSchemas, ...this.sql.createTables]) await tx.run(statement);
      if (this.consumerView.windowHours) await tx.run(this.sql.createConsumerView(this.consumerView.windowHours, this.consumerView.replace));
    });
    const [schema, table] = this.tables.registry.split('.') as [string, string];
    const [column] = await this.db.all<{ n: bigint }>(this.sql.registryHasTableId, [schema, table]);
    if (Number(column!.n) === 0) {
      throw new Error(
        `the lakehouse file ${this.db.path} was created by an older cdf-orchestrator: its registry ${this.tables.registry} has no table_id column, ` +
          'which keeps a re-created table\'s changes apart from the old one\'s. For the demo, delete the file (and .data/local-jobs.duckdb) and start again.',
      );
    }
  }

  async describeSource(source: SourceConfig): Promise<SourceDescription> {
    const { latestVersion, latestCommitTimestamp, tableId, deletedFileRetentionHours } = await this.engine.describe(source.table);
    return { latestVersion, latestCommitTimestamp, tableId, deletedFileRetentionHours };
  }

  async latestCommit(source: SourceConfig): Promise<{ latestVersion: number; latestCommitTimestamp: string }> {
    const { latestVersion, latestCommitTimestamp } = await this.engine.describe(source.table);
    return { latestVersion, latestCommitTimestamp };
  }

  async readOffset(sourceName: string): Promise<SourceOffset | null> {
    const [row] = await this.db.all<{ source: string; table_id: string; last_version: bigint; last_commit_timestamp: string | null; replay_generation: bigint }>(
      this.sql.readOffset,
      [sourceName],
    );
    return row
      ? { source: row.source, tableId: row.table_id, lastVersion: Number(row.last_version), lastCommitTimestamp: row.last_commit_timestamp, replayGeneration: Number(row.replay_generation) }
      : null;
  }

  async summarizeChanges(source: SourceConfig, range: VersionRange): Promise<ChangeCounts> {
    const changes = await this.engine.changesRelation(source.table, range.fromVersion, range.toVersion);
    const rows = await this.db.all<{ change_type: string; n: bigint; null_keys: bigint }>(this.sql.summarizeChanges(changes.sql, source.keyColumn));
    const counts: Required<ChangeCounts> = { insert: 0, update_preimage: 0, update_postimage: 0, delete: 0, nullKeys: 0 };
    for (const row of rows) {
      if (row.change_type in counts) counts[row.change_type as keyof Omit<ChangeCounts, 'nullKeys'>] = Number(row.n);
      counts.nullKeys += Number(row.null_keys);
    }
    return counts;
  }

  /**
   * A range not captured before is one INSERT that streams the feed. A range with rows already
   * (a retry after a crash, a replay) is written again in one transaction: its rows deleted, the
   * same rows inserted; only rows it did not hold count as inserted. (The feed of a version never
   * changes, and the table id keeps a re-created table's versions apart.)
   */
  async appendRangeToRegistry(source: SourceConfig, range: VersionRange, tableId: string): Promise<RegistryAppend> {
    const changes = await this.engine.changesRelation(source.table, range.fromVersion, range.toVersion);
    this.maybeConflict(this.tables.registry);
    const rangeParams = [source.name, tableId, range.fromVersion, range.toVersion];
    const insert = this.sql.appendRangeToRegistry(changes.sql, source.keyColumn, source.extraColumns);
    // One transaction holds the connection from the check to the write: a zombie attempt of the same range cannot slip in between.
    const rowsInserted = await this.db.transaction(async (tx) => {
      const deleted = total(await this.registryCounts(tx, rangeParams)) === 0 ? 0 : await tx.run(this.sql.deleteRangeFromRegistry, rangeParams);
      return Math.max(0, (await tx.run(insert, [source.name, tableId])) - deleted);
    });
    return {
      rowsInserted,
      counts: await this.registryCounts(this.db, rangeParams),
      toVersionCommitTimestamp: await this.engine.commitTimestamp(source.table, range.toVersion),
    };
  }

  private async registryCounts(db: Pick<DuckStatements, 'all'>, rangeParams: (string | number)[]): Promise<ChangeCounts> {
    const counts: ChangeCounts = { insert: 0, update_preimage: 0, update_postimage: 0, delete: 0 };
    for (const row of await db.all<{ change_type: string; n: bigint }>(this.sql.countRangeInRegistry, rangeParams)) {
      if (row.change_type in counts) counts[row.change_type as keyof ChangeCounts] = Number(row.n);
    }
    return counts;
  }

  async mergeOffset(offset: OffsetUpdate & { commitTimestamp: string | null; replayGeneration: number }): Promise<{ lastVersion: number; advanced: boolean }> {
    this.maybeConflict(this.tables.offsets);
    const changed = await this.db.run(this.sql.mergeOffset, [offset.source, offset.table, offset.tableId, offset.version, offset.commitTimestamp, offset.replayGeneration, offset.replayGeneration]);
    const stored = await this.readOffset(offset.source);
    return { lastVersion: stored?.lastVersion ?? offset.version, advanced: changed > 0 };
  }

  async rewindOffset(offset: OffsetUpdate & { redispatchAfterVersion?: number }): Promise<{ replayGeneration: number; redispatchMarked: boolean }> {
    const commitTimestamp = offset.version >= 0 ? await this.engine.commitTimestamp(offset.table, offset.version) : null;
    return this.db.transaction(async (tx) => {
      await tx.run(this.sql.rewindOffset, [offset.source, offset.table, offset.tableId, offset.version, commitTimestamp]);
      let redispatchMarked = false;
      if (offset.redispatchAfterVersion !== undefined) {
        const runKey = `redispatch-${offset.source}-${randomUUID().slice(0, 8)}`;
        const { source, tableId, redispatchAfterVersion: version } = offset;
        redispatchMarked = (await tx.run(this.sql.rewindDispatchWatermark, [runKey, source, tableId, version, version, version, source, tableId, source, tableId])) > 0;
      }
      const [row] = await tx.all<{ replay_generation: bigint }>(this.sql.readOffset, [offset.source]);
      return { replayGeneration: Number(row!.replay_generation), redispatchMarked };
    });
  }

  async refreshChangedIds(): Promise<{ rows: number }> {
    return { rows: await this.db.run(this.sql.refreshChangedIds) };
  }

  openFanInRun(proposedRunKey: string): Promise<FanInRun> {
    return this.db.transaction(async (tx) => {
      const [open] = await tx.all<{ run_key: string }>(this.sql.findOpenFanInRun);
      const runKey = open?.run_key ?? proposedRunKey;
      if (!open) await tx.run(this.sql.openFanInRun, [runKey, runKey]);
      const [window] = await tx.all<{ n: bigint }>(this.sql.countFanInRunSources, [runKey]);
      return { runKey, resumed: Boolean(open), sources: Number(window!.n) };
    });
  }

  async snapshotBatches(runKey: string, batchSize: number, attemptLimit: number): Promise<BatchSnapshot> {
    const counts = await this.db.transaction(async (tx) => {
      let [existing] = await tx.all<{ ids: bigint; batches: number }>(this.sql.countBatchRows, [runKey]);
      if (Number(existing!.ids) === 0) {
        await tx.run(this.sql.snapshotBatches, [runKey, batchSize, runKey]);
        [existing] = await tx.all<{ ids: bigint; batches: number }>(this.sql.countBatchRows, [runKey]);
      }
      // Always (it inserts only what is missing): a run snapshotted before batch states existed gets them too.
      await tx.run(this.sql.createBatchStates, [attemptLimit, runKey]);
      return { changedIds: Number(existing!.ids), batchCount: Number(existing!.batches) };
    });
    const rows = await this.db.all<{ source: string; table_id: string; after_version: bigint; through_version: bigint; changed_ids: bigint; sources: bigint }>(
      this.sql.fanInWindows,
      [runKey, MAX_WINDOWS_REPORTED],
    );
    const windows: SourceWindow[] = rows.map((r) => ({
      source: r.source,
      tableId: r.table_id,
      afterVersion: Number(r.after_version),
      throughVersion: Number(r.through_version),
      changedIds: Number(r.changed_ids),
    }));
    return { ...counts, windows, sources: Number(rows[0]?.sources ?? 0) };
  }

  async pendingBatches(runKey: string, afterBatch: number, limit: number): Promise<number[]> {
    const rows = await this.db.all<{ batch_number: number }>(this.sql.pendingBatches, [runKey, afterBatch, limit]);
    return rows.map((r) => r.batch_number);
  }

  async requeuedBatches(limit: number): Promise<BatchKey[]> {
    const rows = await this.db.all<{ run_key: string; batch_number: number }>(this.sql.requeuedBatches, [limit]);
    return rows.map((r) => ({ runKey: r.run_key, batchNumber: r.batch_number }));
  }

  async readBatchState(batch: BatchKey): Promise<BatchState | null> {
    const [row] = await this.db.all(`SELECT ${this.sql.batchStateColumns} ${this.sql.readBatchState}`, [batch.runKey, batch.batchNumber]);
    return row ? parseBatchState(row) : null;
  }

  async batchStatusCounts(runKey: string): Promise<Partial<Record<BatchStatus, number>>> {
    const rows = await this.db.all<{ status: BatchStatus; n: bigint }>(this.sql.batchStatusCounts, [runKey]);
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  async claimBatchAttempt(batch: BatchKey, attempt: number): Promise<boolean> {
    return (await this.db.run(this.sql.claimBatchAttempt, [attempt, batch.runKey, batch.batchNumber, attempt - 1])) > 0;
  }

  async recordBatchLaunch(batch: BatchKey, attempt: number, run: { runId: string; runPageUrl: string }): Promise<void> {
    await this.db.run(this.sql.recordBatchLaunch, [attempt, run.runId, run.runPageUrl, batch.runKey, batch.batchNumber, attempt]);
  }

  async recordBatchOutcome(batch: BatchKey, attempt: number, outcome: BatchOutcomeRecord): Promise<void> {
    await this.db.run(this.sql.recordBatchOutcome, [outcome.status, outcome.stateMessage, outcome.uncounted ? 1 : 0, batch.runKey, batch.batchNumber, attempt]);
  }

  async listBatches(filter: { statuses?: readonly BatchStatus[]; runKey?: string; limit: number }): Promise<BatchState[]> {
    const statuses = filter.statuses ?? [];
    const rows = await this.db.all(`SELECT ${this.sql.batchStateColumns} ${this.sql.listBatches(statuses.length, filter.runKey !== undefined)}`, [
      ...statuses,
      ...(filter.runKey !== undefined ? [filter.runKey] : []),
      filter.limit,
    ]);
    return rows.map(parseBatchState);
  }

  async requeueBatch(batch: BatchKey, extraAttempts: number, expected: ExpectedBatchState): Promise<BatchChangeResult> {
    const changed = (await this.db.run(this.sql.requeueBatch, [extraAttempts, batch.runKey, batch.batchNumber, expected.status, expected.attempts, expected.runId ?? ''])) > 0;
    return { changed, after: await this.readBatchState(batch) };
  }

  async abandonBatch(batch: BatchKey, reason: string, expected: ExpectedBatchState): Promise<BatchChangeResult> {
    const changed = (await this.db.run(this.sql.abandonBatch, [reason, batch.runKey, batch.batchNumber, expected.status, expected.attempts, expected.runId ?? ''])) > 0;
    return { changed, after: await this.readBatchState(batch) };
  }

  async commitFanInRun(runKey: string): Promise<{ committed: boolean }> {
    return { committed: (await this.db.run(this.sql.commitFanInRun, [runKey, runKey])) > 0 };
  }

  async processBatch(runKey: string, batchNumber: number): Promise<{ rowsMerged: number }> {
    const rowsMerged = await this.db.run(this.sql.processBatch, [runKey, batchNumber, runKey, batchNumber, runKey, batchNumber]);
    return { rowsMerged };
  }

  async tableCounts(): Promise<TableCounts> {
    const [row] = await this.db.all<{ registry_rows: bigint; changed_ids: bigint; target_rows: bigint }>(this.sql.tableCounts);
    return { registryRows: Number(row!.registry_rows), changedIds: Number(row!.changed_ids), targetRows: Number(row!.target_rows) };
  }

  async countExpired(table: PurgedTable, before: string): Promise<number> {
    const [row] = await this.db.all<{ n: bigint }>(this.sql.countRows(this.expiredRows(table)), [before]);
    return Number(row!.n);
  }

  deleteExpired(table: PurgedTable, before: string): Promise<number> {
    return this.db.run(this.sql.deleteRows(table, this.expiredRows(table)), [before]);
  }

  /** DuckDB reclaims deleted rows at its own checkpoints. */
  async compactTable(_table: PurgedTable): Promise<string | null> {
    return null;
  }

  private expiredRows(table: PurgedTable): string {
    return {
      registry: this.sql.expiredRegistryRows,
      changedIds: this.sql.expiredChangedIds,
      batches: this.sql.expiredBatchRows,
      batchStates: this.sql.expiredBatchStates,
      fanInRuns: this.sql.expiredFanInRuns,
    }[table];
  }

  /**
   * Demo upstream traffic: one commit on a source table, plus a fresh master row for every id it
   * inserts or updates (the master is what the downstream job reads).
   */
  writeUpstreamCommit(table: string, spec: CommitSpec): Promise<CommitResult> {
    return this.engine.commit(table, spec, (tx, commit) => tx.run(this.sql.upsertMasterForPickedIds, [commit.version, commit.commitTimestamp]).then(() => undefined));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private maybeConflict(table: string): void {
    if (this.faults.transientConflictRate > 0 && this.random() < this.faults.transientConflictRate) {
      throw new SqlEngineError(
        `[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Transaction conflict detected. a concurrent WRITE added data to table ${table}. The concurrent operation modified data that should have been read by this operation. Please retry the operation. SQLSTATE: 2D521 (injected by lakehouse.local.faults)`,
        'DELTA_CONCURRENT_APPEND',
        '2D521',
      );
    }
  }
}

function total(counts: ChangeCounts): number {
  return counts.insert + counts.update_preimage + counts.update_postimage + counts.delete;
}
