import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { SourceConfig, TablesConfig } from '../../config/schema';
import { PermanentError } from '../../errors';
import { DatabricksConfigError } from '../../databricks/connection';
import { classifyLakehouseError, INCREMENTAL_READ_BROKEN } from '../errors';
import {
  BATCH_STATUSES,
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
  type TableCounts,
  type VersionRange,
} from '../port';
import { parseBatchState } from '../batchStateRow';
import { databricksStatements, REFRESHED_FROM_PROPERTY, REFRESHED_THROUGH_PROPERTY, type ChangedIdsStrategy, type DatabricksStatements } from './statements';
import type { Row, SqlRunner } from './sqlRunner';

// Driver rows, parsed at the boundary. BIGINT arrives as bigint (preserveBigNumericPrecision) or number.
const integer = z.union([z.bigint(), z.number(), z.string().regex(/^-?\d+$/)]).transform((v) => Number(v));
/** Epoch milliseconds (statements read timestamps with unix_millis) as an ISO instant. */
const epochMs = integer.transform((ms) => new Date(ms).toISOString());
/**
 * A TIMESTAMP column as an ISO instant. Arrow results carry the instant (a Date); text results
 * (Thrift columns) carry the session's wall clock without a zone, which is UTC because the
 * session is pinned to it: read as UTC, not in the worker's own time zone.
 */
const instant = z.union([z.date(), z.string()]).transform((v) => {
  if (v instanceof Date) return v.toISOString();
  const zoneless = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(v.trim());
  return new Date(zoneless ? `${v.trim().replace(' ', 'T')}Z` : v).toISOString();
});
const historyRow = z.object({
  version: integer,
  timestamp: instant,
  operation: z.string(),
  operationParameters: z.record(z.string(), z.unknown()).nullish(),
});
const detailRow = z.object({ id: z.string(), properties: z.record(z.string(), z.string()).nullish() });
const countsRow = z.object({ change_type: z.string(), n: integer, null_keys: integer });
const registryCountRow = z.object({ change_type: z.string(), n: integer });
const offsetRow = z.object({ source: z.string(), table_id: z.string(), last_version: integer, last_commit_epoch_ms: epochMs.nullish(), replay_generation: integer });
const batchStateTimes = z.object({ updated_at_epoch_ms: epochMs }).passthrough();
const windowRow = z.object({ source: z.string(), table_id: z.string(), after_version: integer, through_version: integer, changed_ids: integer, sources: integer });
const batchKeyRow = z.object({ run_key: z.string(), batch_number: integer });
const dmlRow = z.object({ num_affected_rows: integer.optional(), num_inserted_rows: integer.optional() });

/** The object at the changed-ids name is not what `databricks.changedIds` maintains. */
export class ChangedIdsObjectMismatchError extends DatabricksConfigError {
  constructor(name: string, objectType: string, strategy: ChangedIdsStrategy) {
    const drop = objectType === 'MATERIALIZED_VIEW' ? 'DROP MATERIALIZED VIEW' : objectType === 'VIEW' ? 'DROP VIEW' : 'DROP TABLE';
    const needs = strategy === 'materializedView' ? 'a materialized view' : 'a Delta table (MANAGED or EXTERNAL)';
    const other = strategy === 'materializedView' ? 'table' : 'materializedView';
    const found = { MANAGED: 'a managed table', EXTERNAL: 'an external table', VIEW: 'a view', MATERIALIZED_VIEW: 'a materialized view' }[objectType] ?? `an object of type ${objectType}`;
    super(
      `databricks.changedIds is "${strategy}", which keeps ${needs} at ${name}, but ${name} is ${found}. ` +
        `Either drop it (${drop} ${name}) and start again: the next start creates it and fills it from the whole registry, nothing is lost; ` +
        `or set databricks.changedIds to "${other}" if that is what it was built for.`,
    );
  }
}

/**
 * The lakehouse on a Databricks SQL warehouse. Statement text lives in statements.ts; this class
 * runs it, parses what comes back and adds the checks Delta does not make for us.
 */
export class DatabricksLakehouse implements Lakehouse {
  private readonly sql: DatabricksStatements;

  constructor(
    private readonly runner: SqlRunner,
    private readonly tables: TablesConfig,
    private readonly options: { createDemoTables?: boolean; changedIds?: ChangedIdsStrategy; optimizeAfterPurge?: boolean; consumerWindowHours?: number } = {},
  ) {
    this.sql = databricksStatements(tables, options.changedIds, { consumerWindowHours: options.consumerWindowHours });
  }

  async ensurePipelineTables(): Promise<void> {
    await this.assertChangedIdsFitStrategy();
    const statements = [...this.sql.createPipelineObjects(), ...(this.options.createDemoTables ? this.sql.createDemoTables() : [])];
    for (const statement of statements) await this.runner.query(statement);
    const columns = (await this.runner.query(this.sql.describeColumns(this.tables.offsets))).map((row) => String(row.col_name ?? ''));
    if (!columns.includes('replay_generation')) await this.runner.query(this.sql.addReplayGenerationColumn());
  }

  /**
   * `CREATE ... IF NOT EXISTS` keeps whatever object already has the changed-ids name, so a switch
   * of `databricks.changedIds` would leave the other strategy's object in place and fail at the
   * first refresh. Checked before anything is created, so a refused start writes nothing.
   */
  private async assertChangedIdsFitStrategy(): Promise<void> {
    const strategy = this.options.changedIds ?? 'materializedView';
    const name = this.tables.changedIds;
    let rows: Row[];
    try {
      rows = await this.runner.query(this.sql.describeObject(name));
    } catch (error) {
      const type = classifyLakehouseError(error).type;
      if (type === 'TABLE_OR_VIEW_NOT_FOUND' || type === 'SCHEMA_NOT_FOUND') return; // created below
      throw error;
    }
    const objectType = rows.find((row) => row.col_name === 'Type')?.data_type;
    if (typeof objectType !== 'string') return;
    const fits = strategy === 'materializedView' ? objectType === 'MATERIALIZED_VIEW' : objectType === 'MANAGED' || objectType === 'EXTERNAL';
    if (!fits) throw new ChangedIdsObjectMismatchError(name, objectType, strategy);
  }

  async describeSource(source: SourceConfig): Promise<SourceDescription> {
    const [latest] = (await this.runner.query(this.sql.latestCommit(source.table))).map((r) => historyRow.parse(r));
    const [detail] = (await this.runner.query(this.sql.tableDetail(source.table))).map((r) => detailRow.parse(r));
    if (!latest || !detail) throw new Error(`DESCRIBE HISTORY/DETAIL of ${source.table} returned no row`);
    return {
      latestVersion: latest.version,
      latestCommitTimestamp: latest.timestamp,
      tableId: detail.id,
      deletedFileRetentionHours: retentionHours(detail.properties?.['delta.deletedFileRetentionDuration']),
    };
  }

  async latestCommit(source: SourceConfig): Promise<{ latestVersion: number; latestCommitTimestamp: string }> {
    const [latest] = (await this.runner.query(this.sql.latestCommit(source.table))).map((r) => historyRow.parse(r));
    if (!latest) throw new Error(`DESCRIBE HISTORY of ${source.table} returned no row`);
    return { latestVersion: latest.version, latestCommitTimestamp: latest.timestamp };
  }

  async readOffset(sourceName: string): Promise<SourceOffset | null> {
    const [row] = (await this.runner.query(this.sql.readOffset(sourceName))).map((r) => offsetRow.parse(r));
    return row
      ? { source: row.source, tableId: row.table_id, lastVersion: row.last_version, lastCommitTimestamp: row.last_commit_epoch_ms ?? null, replayGeneration: row.replay_generation }
      : null;
  }

  /** Scans the range's history for operations that break incremental reads, then counts the feed. */
  async summarizeChanges(source: SourceConfig, range: VersionRange): Promise<ChangeCounts> {
    await this.assertRangeIsIncremental(source, range);
    const counts: Required<ChangeCounts> = { insert: 0, update_preimage: 0, update_postimage: 0, delete: 0, nullKeys: 0 };
    for (const row of (await this.runner.query(this.sql.summarizeChanges(source, range))).map((r) => countsRow.parse(r))) {
      if (row.change_type in counts) counts[row.change_type as keyof Omit<ChangeCounts, 'nullKeys'>] = row.n;
      counts.nullKeys += row.null_keys;
    }
    return counts;
  }

  /** Scans the range's history for commits that break incremental reads (and for `toVersion`'s timestamp), then appends: the one pass over the feed. */
  async appendRangeToRegistry(source: SourceConfig, range: VersionRange, tableId: string): Promise<RegistryAppend> {
    const toVersionCommitTimestamp = await this.assertRangeIsIncremental(source, range);
    const rowsInserted = inserted(await this.runner.query(this.sql.appendRangeToRegistry(source, range, tableId)));
    const counts: ChangeCounts = { insert: 0, update_preimage: 0, update_postimage: 0, delete: 0 };
    for (const row of (await this.runner.query(this.sql.countRangeInRegistry(source.name, tableId, range))).map((r) => registryCountRow.parse(r))) {
      if (row.change_type in counts) counts[row.change_type as keyof ChangeCounts] = row.n;
    }
    return { rowsInserted, counts, toVersionCommitTimestamp };
  }

  async mergeOffset(offset: OffsetUpdate & { commitTimestamp: string | null; replayGeneration: number }): Promise<{ lastVersion: number; advanced: boolean }> {
    const source = { name: offset.source, table: offset.table } as SourceConfig;
    const changed = affected(await this.runner.query(this.sql.mergeOffset(source, offset.tableId, offset.version, offset.commitTimestamp, offset.replayGeneration)));
    const stored = await this.readOffset(offset.source);
    return { lastVersion: stored?.lastVersion ?? offset.version, advanced: changed > 0 };
  }

  async rewindOffset(offset: OffsetUpdate & { redispatchAfterVersion?: number }): Promise<{ replayGeneration: number; redispatchMarked: boolean }> {
    const source = { name: offset.source, table: offset.table } as SourceConfig;
    await this.runner.query(this.sql.rewindOffset(source, offset.tableId, offset.version));
    // After the offset (a refused rewind moves nothing); a retry after a lost answer inserts nothing, the watermark being at `version` already.
    let redispatchMarked = false;
    if (offset.redispatchAfterVersion !== undefined) {
      const marker = this.sql.rewindDispatchWatermark(`redispatch-${offset.source}-${randomUUID().slice(0, 8)}`, offset.source, offset.tableId, offset.redispatchAfterVersion);
      redispatchMarked = inserted(await this.runner.query(marker)) > 0;
    }
    const stored = await this.readOffset(offset.source);
    return { replayGeneration: stored?.replayGeneration ?? 1, redispatchMarked };
  }

  async refreshChangedIds(): Promise<{ rows: number }> {
    if ((this.options.changedIds ?? 'materializedView') === 'materializedView') {
      await this.runner.query(this.sql.refreshChangedIds());
      return { rows: -1 }; // REFRESH reports no row count
    }
    const [registry] = (await this.runner.query(this.sql.latestCommit(this.tables.registry))).map((r) => historyRow.parse(r));
    const [registryDetail] = (await this.runner.query(this.sql.tableDetail(this.tables.registry))).map((r) => detailRow.parse(r));
    const [detail] = (await this.runner.query(this.sql.tableDetail(this.tables.changedIds))).map((r) => detailRow.parse(r));
    if (!registry || !registryDetail) throw new Error(`DESCRIBE HISTORY/DETAIL of ${this.tables.registry} returned no row`);
    const through = registry.version;
    let after = integer.parse(detail?.properties?.[REFRESHED_THROUGH_PROPERTY] ?? -1);
    // Built from another registry (dropped and re-created: its versions start again): rebuild from scratch.
    if (detail?.properties?.[REFRESHED_FROM_PROPERTY] !== registryDetail.id || through < after) {
      if (after >= 0) await this.runner.query(this.sql.clearChangedIds());
      after = -1;
    }
    if (through <= after) return { rows: 0 };
    const rows = affected(await this.runner.query(this.sql.mergeChangedIds(after, through)));
    await this.runner.query(this.sql.markChangedIdsRefreshed(through, registryDetail.id));
    return { rows };
  }

  async openFanInRun(proposedRunKey: string): Promise<FanInRun> {
    const openRun = async () => (await this.runner.query(this.sql.findOpenFanInRun()))[0]?.run_key as string | undefined;
    const existing = await openRun();
    if (!existing) await this.runner.query(this.sql.openFanInRun(proposedRunKey));
    // Read back: with a concurrent opener, the earliest open run wins for both.
    const runKey = existing ?? (await openRun()) ?? proposedRunKey;
    const [count] = await this.runner.query(this.sql.countFanInRunSources(runKey));
    return { runKey, resumed: Boolean(existing), sources: integer.parse(count?.n ?? 0) };
  }

  async snapshotBatches(runKey: string, batchSize: number, attemptLimit: number): Promise<BatchSnapshot> {
    await this.runner.query(this.sql.snapshotBatches(runKey, batchSize));
    await this.runner.query(this.sql.createBatchStates(runKey, attemptLimit));
    const [row] = await this.runner.query(this.sql.countBatchRows(runKey));
    const windows = (await this.runner.query(this.sql.fanInWindows(runKey, MAX_WINDOWS_REPORTED))).map((r) => windowRow.parse(r));
    return {
      changedIds: integer.parse(row?.ids ?? 0),
      batchCount: integer.parse(row?.batches ?? 0),
      windows: windows.map((w) => ({ source: w.source, tableId: w.table_id, afterVersion: w.after_version, throughVersion: w.through_version, changedIds: w.changed_ids })),
      sources: windows[0]?.sources ?? 0,
    };
  }

  async pendingBatches(runKey: string, afterBatch: number, limit: number): Promise<number[]> {
    return (await this.runner.query(this.sql.pendingBatches(runKey, afterBatch, limit))).map((r) => integer.parse(r.batch_number));
  }

  async requeuedBatches(limit: number): Promise<BatchKey[]> {
    return (await this.runner.query(this.sql.requeuedBatches(limit))).map((r) => batchKeyRow.parse(r)).map((r) => ({ runKey: r.run_key, batchNumber: r.batch_number }));
  }

  async readBatchState(batch: BatchKey): Promise<BatchState | null> {
    const [row] = await this.runner.query(this.sql.readBatchState(batch.runKey, batch.batchNumber));
    return row ? batchState(row) : null;
  }

  async batchStatusCounts(runKey: string): Promise<Partial<Record<BatchStatus, number>>> {
    const rows = await this.runner.query(this.sql.batchStatusCounts(runKey));
    return Object.fromEntries(rows.map((r) => [z.enum(BATCH_STATUSES as [BatchStatus, ...BatchStatus[]]).parse(r.status), integer.parse(r.n)]));
  }

  async claimBatchAttempt(batch: BatchKey, attempt: number): Promise<boolean> {
    return affected(await this.runner.query(this.sql.claimBatchAttempt(batch.runKey, batch.batchNumber, attempt))) > 0;
  }

  async recordBatchLaunch(batch: BatchKey, attempt: number, run: { runId: string; runPageUrl: string }): Promise<void> {
    await this.runner.query(this.sql.recordBatchLaunch(batch.runKey, batch.batchNumber, attempt, run.runId, run.runPageUrl));
  }

  async recordBatchOutcome(batch: BatchKey, attempt: number, outcome: BatchOutcomeRecord): Promise<void> {
    await this.runner.query(this.sql.recordBatchOutcome(batch.runKey, batch.batchNumber, attempt, outcome.status, outcome.stateMessage, outcome.uncounted ? 1 : 0));
  }

  async listBatches(filter: { statuses?: readonly BatchStatus[]; runKey?: string; limit: number }): Promise<BatchState[]> {
    const rows = await this.runner.query(this.sql.listBatches({ statuses: filter.statuses ?? [], runKey: filter.runKey, limit: filter.limit }));
    return rows.map(batchState);
  }

  async requeueBatch(batch: BatchKey, extraAttempts: number, expected: ExpectedBatchState): Promise<BatchChangeResult> {
    const changed = affected(await this.runner.query(this.sql.requeueBatch(batch.runKey, batch.batchNumber, extraAttempts, expected))) > 0;
    return { changed, after: await this.readBatchState(batch) };
  }

  async abandonBatch(batch: BatchKey, reason: string, expected: ExpectedBatchState): Promise<BatchChangeResult> {
    const changed = affected(await this.runner.query(this.sql.abandonBatch(batch.runKey, batch.batchNumber, reason, expected))) > 0;
    return { changed, after: await this.readBatchState(batch) };
  }

  async commitFanInRun(runKey: string): Promise<{ committed: boolean }> {
    return { committed: affected(await this.runner.query(this.sql.commitFanInRun(runKey))) > 0 };
  }

  async processBatch(runKey: string, batchNumber: number): Promise<{ rowsMerged: number }> {
    return { rowsMerged: affected(await this.runner.query(this.sql.processBatch(runKey, batchNumber))) };
  }

  async tableCounts(): Promise<TableCounts> {
    const [row] = await this.runner.query(this.sql.tableCounts());
    return { registryRows: integer.parse(row?.registry_rows ?? 0), changedIds: integer.parse(row?.changed_ids ?? 0), targetRows: integer.parse(row?.target_rows ?? 0) };
  }

  async countExpired(table: PurgedTable, before: string): Promise<number> {
    if (this.maintainedByDatabricks(table)) return 0;
    return integer.parse((await this.runner.query(this.sql.countExpired(table, before)))[0]?.n ?? 0);
  }

  async deleteExpired(table: PurgedTable, before: string): Promise<number> {
    if (this.maintainedByDatabricks(table)) return 0;
    return affected(await this.runner.query(this.sql.deleteExpired(table, before)));
  }

  async compactTable(table: PurgedTable): Promise<string | null> {
    if (this.maintainedByDatabricks(table) || this.options.optimizeAfterPurge === false) return null;
    await this.runner.query(this.sql.optimize(table));
    return this.tables[table];
  }

  /** A materialized view is Databricks' to maintain: its next refresh drops what the registry lost. */
  private maintainedByDatabricks(table: PurgedTable): boolean {
    return table === 'changedIds' && (this.options.changedIds ?? 'materializedView') === 'materializedView';
  }

  close(): Promise<void> {
    return this.runner.close();
  }

  /**
   * Delta reports some breaks (CDF off, vacuumed files) as errors, but a replace, truncate or
   * restore inside the range reads "successfully" as deletes and inserts of every row, so the
   * range's commits are read from the history. DESCRIBE HISTORY has no version filter, only a
   * LIMIT from the newest commit: the limit reaches from the latest version down to the range's
   * first, and grows by what was committed in between if the range's first was not reached. The
   * rows (newest first) are streamed and only the range's are kept: a source far behind a busy
   * table reads many commits newer than its range. Returns the commit timestamp of `toVersion` the
   * history showed (null if the log no longer has it).
   */
  private async assertRangeIsIncremental(source: SourceConfig, range: VersionRange): Promise<string | null> {
    const [latest] = (await this.runner.query(this.sql.latestCommit(source.table))).map((r) => historyRow.parse(r));
    let commits = Math.max(range.toVersion, latest?.version ?? range.toVersion) - range.fromVersion + 1;
    const inRange = new Map<number, z.infer<typeof historyRow>>();
    for (;;) {
      let read = 0;
      let oldest = Number.POSITIVE_INFINITY;
      await this.runner.stream(this.sql.history(source.table, commits), async (rows) => {
        for (const row of rows.map((r) => historyRow.parse(r))) {
          read += 1;
          oldest = Math.min(oldest, row.version);
          if (row.version >= range.fromVersion && row.version <= range.toVersion) inRange.set(row.version, row);
        }
        return oldest > range.fromVersion;
      });
      // Reached the range's first version, or the log holds nothing older (retention, or a re-created table).
      if (oldest <= range.fromVersion || read < commits) break;
      commits += oldest - range.fromVersion;
    }
    // With several breaks in the range, the newest counts: a replay from the version after an older one would meet it again.
    let broken: { version: number; operation: string } | undefined;
    for (const row of inRange.values()) {
      if (row.version > 0 && breaksIncrementalRead(row.operation, row.operationParameters ?? {}) && row.version > (broken?.version ?? -1)) {
        broken = { version: row.version, operation: row.operation };
      }
    }
    const toVersionCommitTimestamp = inRange.get(range.toVersion)?.timestamp ?? null;
    if (broken) {
      throw new PermanentError(
        INCREMENTAL_READ_BROKEN,
        `version ${broken.version} of ${source.table} is a ${broken.operation}, which breaks incremental CDF reads of range [${range.fromVersion}, ${range.toVersion}]`,
        `Resync the source: reload downstream from a snapshot, then replay from version ${broken.version + 1}.`,
      );
    }
    return toVersionCommitTimestamp;
  }
}

/**
 * Operations after which the feed no longer describes row-level changes of the same table.
 * Overwrites are not among them: a full `INSERT OVERWRITE`, a `replaceWhere` and a dynamic
 * partition overwrite all read as deletes of the rows they removed and inserts of the rows they
 * wrote (checked on real Delta), so their ids are captured and dispatched like any other change;
 * Delta 4.0 does not even record in the history which kind of overwrite a WRITE was.
 */
export function breaksIncrementalRead(operation: string, parameters: Record<string, unknown>): boolean {
  const op = operation.toUpperCase();
  if (/REPLACE TABLE|^TRUNCATE|^RESTORE/.test(op)) return true;
  if (op === 'SET TBLPROPERTIES' && turnsChangeDataFeedOff(parameters.properties ?? parameters)) return true;
  return false;
}

/** `properties` arrives as a JSON string (`{"delta.enableChangeDataFeed":"false"}`), not an object. */
function turnsChangeDataFeedOff(properties: unknown): boolean {
  let parsed = properties;
  if (typeof properties === 'string') {
    try {
      parsed = JSON.parse(properties);
    } catch {
      return /enableChangeDataFeed["']?\s*[:=]\s*["']?false/i.test(properties);
    }
  }
  const value = (parsed as Record<string, unknown> | null)?.['delta.enableChangeDataFeed'];
  return String(value).toLowerCase() === 'false';
}

/** Parses Delta's interval text ("interval 7 days", "168 hours"); Delta's default is 7 days. */
export function retentionHours(text: string | undefined): number {
  const match = /(\d+)\s*(week|day|hour|minute)s?/i.exec(text ?? '');
  if (!match) return 168;
  const perUnit: Record<string, number> = { week: 168, day: 24, hour: 1, minute: 1 / 60 };
  return Number(match[1]) * perUnit[match[2]!.toLowerCase()]!;
}

/** A batch-state row: its time arrives as epoch milliseconds (EPOCH_MS in statements.ts). */
function batchState(row: Row): BatchState {
  const { updated_at_epoch_ms: updatedAt, ...rest } = batchStateTimes.parse(row);
  return parseBatchState({ ...rest, updated_at: updatedAt });
}

function affected(rows: Row[]): number {
  const row = rows[0] ? dmlRow.parse(rows[0]) : undefined;
  return row?.num_affected_rows ?? 0;
}

function inserted(rows: Row[]): number {
  const row = rows[0] ? dmlRow.parse(rows[0]) : undefined;
  return row?.num_inserted_rows ?? row?.num_affected_rows ?? 0;
}
