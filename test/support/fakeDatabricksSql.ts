import type { DriverClient, DriverOperation, DriverSession } from '../../src/lakehouse/databricks/sqlRunner';

/** One statement as the driver received it, parameters unwrapped from DBSQLParameter. */
export interface RecordedStatement {
  sql: string;
  params: Record<string, { type: string | undefined; value: unknown }>;
}

interface HistoryEntry {
  version: number;
  timestamp: Date;
  operation: string;
  operationParameters: Record<string, unknown>;
}

interface FakeBatchState {
  run_key: string;
  batch_number: number;
  status: string;
  attempts: number;
  attempt_limit: number;
  ids: bigint;
  run_id: string | null;
  run_page_url: string | null;
  state_message: string | null;
  reason: string | null;
  updated_at: string;
}

interface FakeTable {
  id: string;
  history: HistoryEntry[];
}

/** Each fake commit after version 0 changes three ids: one insert, one update (pre/post), one delete. */
export const IDS_PER_VERSION = 3;

/**
 * A recording stand-in for `@databricks/sql`'s DBSQLClient: same calls (connect, openSession,
 * executeStatement, fetchChunk, hasMoreRows, close), answers shaped like the driver's (rows as
 * plain objects, BIGINT as bigint, DML returning num_affected_rows / num_inserted_rows), backed by
 * a small model of the warehouse so that the real workflows can run on it. It does not execute
 * SQL: it recognises the adapter's statements and fails loudly on anything else.
 */
export class FakeDatabricksSql implements DriverClient {
  readonly statements: RecordedStatement[] = [];
  readonly connectOptions: Record<string, unknown>[] = [];
  readonly sessionConfigurations: Record<string, string>[] = [];
  fetchCalls = 0;
  openSessions = 0;
  /** Errors thrown by the next statements whose text matches, in order. */
  readonly faults: { match: RegExp; error: Error; times: number }[] = [];
  private readonly hooks: { match: RegExp; action: () => void }[] = [];
  private sessionExpired = false;

  /** What each pipeline object is (DESCRIBE TABLE EXTENDED's `Type`); a test may set one beforehand. */
  readonly objectTypes = new Map<string, string>();
  private readonly tables = new Map<string, FakeTable>();
  private readonly captured = new Map<string, Set<number>>();
  private readonly offsets = new Map<string, { table: string; tableId: string; version: bigint; commitTimestamp: string | null; generation: number }>();
  private view = new Map<string, number>();
  private readonly runs: { runKey: string; windows: Map<string, { after: number; through: number }>; status: 'open' | 'committed' }[] = [];
  private readonly batches = new Map<string, { ids: number; batches: number; batchSize: number }>();
  private readonly batchStates = new Map<string, FakeBatchState>();

  addTable(name: string, versions: number, id = `id-${name}`): void {
    const history: HistoryEntry[] = [];
    for (let version = 0; version <= versions; version++) {
      history.push({ version, timestamp: new Date(Date.UTC(2026, 10, 1, 0, version)), operation: version === 0 ? 'CREATE TABLE' : 'MERGE', operationParameters: {} });
    }
    this.tables.set(name, { id, history });
  }

  commit(name: string, operation = 'MERGE', operationParameters: Record<string, unknown> = {}): number {
    const table = this.tables.get(name)!;
    const version = table.history.length;
    table.history.push({ version, timestamp: new Date(Date.UTC(2026, 10, 1, 1, version)), operation, operationParameters });
    return version;
  }

  /** The log no longer holds the commits before `version` (log retention): DESCRIBE HISTORY stops there. */
  forgetHistoryBefore(name: string, version: number): void {
    const table = this.tables.get(name)!;
    table.history = table.history.filter((entry) => entry.version >= version);
  }

  /** Runs `action` just before the next statement that matches executes (e.g. a commit landing between two reads). */
  beforeNext(match: RegExp, action: () => void): void {
    this.hooks.push({ match, action });
  }

  failNext(match: RegExp, error: Error, times = 1): void {
    this.faults.push({ match, error, times });
  }

  expireSession(): void {
    this.sessionExpired = true;
  }

  offsetOf(source: string): number | undefined {
    const offset = this.offsets.get(source);
    return offset === undefined ? undefined : Number(offset.version);
  }

  statementsMatching(pattern: RegExp): RecordedStatement[] {
    return this.statements.filter((s) => pattern.test(s.sql));
  }

  // --- the driver's surface ---

  async connect(options: Record<string, unknown>): Promise<DriverClient> {
    this.connectOptions.push(options);
    return this;
  }

  async openSession(request?: { configuration?: Record<string, string> }): Promise<DriverSession> {
    this.openSessions += 1;
    this.sessionConfigurations.push(request?.configuration ?? {});
    this.sessionExpired = false;
    return {
      executeStatement: async (sql, options) => this.execute(sql, (options?.namedParameters ?? {}) as Record<string, { type?: string; value: unknown }>),
      close: async () => undefined,
    };
  }

  async close(): Promise<void> {}

  private async execute(sql: string, namedParameters: Record<string, { type?: string; value: unknown }>): Promise<DriverOperation> {
    if (this.sessionExpired) throw new Error('The session was closed or has expired');
    const params = Object.fromEntries(Object.entries(namedParameters).map(([name, p]) => [name, { type: p.type, value: p.value }]));
    this.statements.push({ sql, params });
    const hook = this.hooks.findIndex((h) => h.match.test(sql));
    if (hook >= 0) this.hooks.splice(hook, 1)[0]!.action();
    const fault = this.faults.find((f) => f.times > 0 && f.match.test(sql));
    if (fault) {
      fault.times -= 1;
      throw fault.error;
    }
    return this.operation(this.answer(sql, params));
  }

  private operation(rows: object[]): DriverOperation {
    let position = 0;
    return {
      // Two rows per chunk, whatever is asked, so that readers must loop.
      fetchChunk: async () => {
        this.fetchCalls += 1;
        const chunk = rows.slice(position, position + 2);
        position += chunk.length;
        return chunk;
      },
      hasMoreRows: async () => position < rows.length,
      close: async () => undefined,
    };
  }

  private answer(sql: string, params: RecordedStatement['params']): object[] {
    const value = (name: string) => params[name]?.value;
    let m: RegExpMatchArray | null;
    if (/^DESCRIBE TABLE `cdf`\.`source_offsets`$/.test(sql)) {
      return ['source', 'source_table', 'table_id', 'last_version', 'last_commit_timestamp', 'updated_at', 'replay_generation'].map((col_name) => ({ col_name, data_type: 'string', comment: null }));
    }
    if ((m = /^DESCRIBE TABLE EXTENDED (\S+)$/.exec(sql))) {
      const name = m[1]!.replace(/`/g, '');
      const type = this.objectTypes.get(name);
      if (!type) throw new Error(`[TABLE_OR_VIEW_NOT_FOUND] The table or view \`${name}\` cannot be found. SQLSTATE: 42P01`);
      return [{ col_name: 'uts_id', data_type: 'string', comment: null }, { col_name: '', data_type: '', comment: '' }, { col_name: '# Detailed Table Information', data_type: '', comment: '' }, { col_name: 'Type', data_type: type, comment: '' }];
    }
    if ((m = /^CREATE (MATERIALIZED VIEW|TABLE) IF NOT EXISTS (\S+)/.exec(sql))) {
      const name = m[2]!.replace(/`/g, '');
      if (!this.objectTypes.has(name)) this.objectTypes.set(name, m[1] === 'TABLE' ? 'MANAGED' : 'MATERIALIZED_VIEW');
      return [];
    }
    if (/^(CREATE|ALTER) /.test(sql)) return [];
    if ((m = /^DESCRIBE HISTORY (\S+)( LIMIT (\d+))?$/.exec(sql))) {
      const history = [...this.table(m[1]!).history].reverse();
      return (m[3] ? history.slice(0, Number(m[3])) : history).map((h) => ({ ...h, version: BigInt(h.version) }));
    }
    if ((m = /^DESCRIBE DETAIL (\S+)$/.exec(sql))) return [{ id: this.table(m[1]!).id, format: 'delta' }];
    if ((m = /^SELECT _change_type AS change_type[\s\S]*table_changes\('([^']+)', (\d+), (\d+)\)/.exec(sql))) {
      const n = this.changedVersions(Number(m[2]), Number(m[3])).length;
      return ['insert', 'update_preimage', 'update_postimage', 'delete'].map((type) => ({ change_type: type, n: BigInt(n), null_keys: 0n }));
    }
    if ((m = /^MERGE INTO `cdf`\.`change_registry`[\s\S]*table_changes\('([^']+)', (\d+), (\d+)\)/.exec(sql))) {
      const captured = this.captured.get(String(value('source'))) ?? new Set<number>();
      this.captured.set(String(value('source')), captured);
      const fresh = this.changedVersions(Number(m[2]), Number(m[3])).filter((v) => !captured.has(v));
      fresh.forEach((v) => captured.add(v));
      return [dml(fresh.length * IDS_PER_VERSION)];
    }
    if (/^SELECT change_type, count\(\*\) AS n FROM `cdf`\.`change_registry`/.test(sql)) {
      // Each captured version left three registry rows: the insert, the update (post-image) and the delete.
      const captured = this.captured.get(String(value('source'))) ?? new Set<number>();
      const from = Number(value('fromVersion'));
      const to = Number(value('toVersion'));
      const n = [...captured].filter((v) => v >= from && v <= to).length;
      return n === 0 ? [] : ['insert', 'update_postimage', 'delete'].map((type) => ({ change_type: type, n: BigInt(n) }));
    }
    if (/^SELECT source, table_id, last_version/.test(sql)) {
      const offset = this.offsets.get(String(value('source')));
      // Timestamps are read as unix_millis (BIGINT), as the adapter asks.
      return offset ? [{ source: value('source'), table_id: offset.tableId, last_version: offset.version, last_commit_epoch_ms: epochMs(offset.commitTimestamp), replay_generation: BigInt(offset.generation) }] : [];
    }
    if (/^MERGE INTO `cdf`\.`source_offsets`/.test(sql)) {
      const source = String(value('source'));
      const current = this.offsets.get(source);
      const version = value('version') as bigint;
      const commitTimestamp = value('commitTimestamp');
      const next = { table: String(value('sourceTable')), tableId: String(value('tableId')), version, commitTimestamp: typeof commitTimestamp === 'string' ? commitTimestamp : null };
      // The rewind sets the offset and starts the next replay generation; a capture's MERGE moves it forward within its generation only.
      if (/replay_generation = coalesce\(offsets\.replay_generation, 0\) \+ 1/.test(sql)) {
        this.offsets.set(source, { ...next, commitTimestamp: null, generation: (current?.generation ?? 0) + 1 });
        return [dml(1)];
      }
      if (current && (current.version >= version || BigInt(current.generation) !== value('replayGeneration'))) return [dml(0)];
      this.offsets.set(source, { ...next, generation: current?.generation ?? 0 });
      return [dml(1)];
    }
    if (/^REFRESH MATERIALIZED VIEW/.test(sql)) {
      this.view = new Map([...this.captured].map(([source, versions]) => [source, Math.max(-1, ...versions)]));
      return [];
    }
    if (/^SELECT run_key FROM `cdf`\.`fan_in_runs` WHERE status = 'open'/.test(sql)) {
      const open = this.runs.find((r) => r.status === 'open');
      return open ? [{ run_key: open.runKey }] : [];
    }
    if (/^INSERT INTO `cdf`\.`fan_in_runs`/.test(sql)) {
      if (this.runs.some((r) => r.status === 'open')) return [dml(0)];
      const windows = new Map<string, { after: number; through: number }>();
      for (const [source, newest] of this.view) {
        const dispatched = Math.max(-1, ...this.runs.filter((r) => r.status === 'committed').map((r) => r.windows.get(source)?.through ?? -1));
        if (newest > dispatched) windows.set(source, { after: dispatched, through: newest });
      }
      if (windows.size > 0) this.runs.push({ runKey: String(value('runKey')), windows, status: 'open' });
      return [dml(windows.size)];
    }
    if (/^SELECT count\(\*\) AS n FROM `cdf`\.`fan_in_runs`/.test(sql)) {
      return [{ n: BigInt(this.runs.find((r) => r.runKey === value('runKey'))?.windows.size ?? 0) }];
    }
    if (/^INSERT INTO `cdf`\.`dispatch_batches`/.test(sql)) {
      const runKey = String(value('runKey'));
      if (this.batches.has(runKey)) return [dml(0)];
      const run = this.runs.find((r) => r.runKey === runKey);
      const ids = [...(run?.windows.values() ?? [])].reduce((sum, w) => sum + this.changedVersions(w.after + 1, w.through).length * IDS_PER_VERSION, 0);
      this.batches.set(runKey, { ids, batches: Math.ceil(ids / Number(value('batchSize'))), batchSize: Number(value('batchSize')) });
      return [dml(ids)];
    }
    if (/^SELECT count\(\*\) AS ids/.test(sql)) {
      const batch = this.batches.get(String(value('runKey')));
      return [{ ids: BigInt(batch?.ids ?? 0), batches: batch?.batches ?? 0 }];
    }
    if (/^MERGE INTO `cdf`\.`dispatch_batch_states`/.test(sql)) {
      const runKey = String(value('runKey'));
      const batch = this.batches.get(runKey);
      let inserted = 0;
      for (let n = 1; n <= (batch?.batches ?? 0); n++) {
        if (this.batchStates.has(`${runKey}/${n}`)) continue;
        const ids = n < batch!.batches ? batch!.batchSize : batch!.ids - batch!.batchSize * (batch!.batches - 1);
        this.batchStates.set(`${runKey}/${n}`, { run_key: runKey, batch_number: n, status: 'pending', attempts: 0, attempt_limit: Number(value('attemptLimit')), ids: BigInt(ids), run_id: null, run_page_url: null, state_message: null, reason: null, updated_at: '2026-11-01T02:00:00.000Z' });
        inserted += 1;
      }
      return [dml(inserted)];
    }
    if (/^SELECT w\.source, w\.table_id, w\.after_version/.test(sql)) {
      const run = this.runs.find((r) => r.runKey === value('runKey'));
      const windows = [...(run?.windows ?? new Map())].sort(([a], [b]) => a.localeCompare(b));
      return windows.map(([source, w]) => ({ source, table_id: this.offsets.get(source)?.tableId ?? `id-${source}`, after_version: BigInt(w.after), through_version: BigInt(w.through), changed_ids: BigInt(this.changedVersions(w.after + 1, w.through).length * IDS_PER_VERSION), sources: BigInt(windows.length) }));
    }
    if (/^SELECT batch_number FROM `cdf`\.`dispatch_batch_states`/.test(sql)) {
      const limit = Number(/LIMIT (\d+)/.exec(sql)![1]);
      return this.statesOf(String(value('runKey')))
        .filter((b) => b.batch_number > Number(value('afterBatch')) && ['pending', 'launched', 'failed', 'retry'].includes(b.status))
        .slice(0, limit)
        .map((b) => ({ batch_number: b.batch_number }));
    }
    if (/^SELECT s\.run_key, s\.batch_number FROM `cdf`\.`dispatch_batch_states`/.test(sql)) {
      const open = new Set(this.runs.filter((r) => r.status === 'open').map((r) => r.runKey));
      return [...this.batchStates.values()].filter((b) => ['retry', 'launched', 'failed'].includes(b.status) && !open.has(b.run_key)).map((b) => ({ run_key: b.run_key, batch_number: b.batch_number }));
    }
    if (/^SELECT status, count\(\*\) AS n FROM `cdf`\.`dispatch_batch_states`/.test(sql)) {
      const counts = new Map<string, number>();
      for (const b of this.statesOf(String(value('runKey')))) counts.set(b.status, (counts.get(b.status) ?? 0) + 1);
      return [...counts].map(([status, n]) => ({ status, n: BigInt(n) }));
    }
    if (/^SELECT run_key, batch_number, status, attempts/.test(sql) && /WHERE run_key = :runKey AND batch_number = :batchNumber/.test(sql)) {
      const state = this.batchStates.get(`${value('runKey')}/${value('batchNumber')}`);
      if (!state) return [];
      const { updated_at: updatedAt, ...columns } = state;
      return [{ ...columns, updated_at_epoch_ms: epochMs(updatedAt) }];
    }
    if (/^UPDATE `cdf`\.`dispatch_batch_states` SET status = 'launched'/.test(sql)) {
      const state = this.batchStates.get(`${value('runKey')}/${value('batchNumber')}`);
      const attempt = Number(value('attempt'));
      if (!state || state.attempts > attempt || state.status === 'succeeded' || state.status === 'abandoned') return [dml(0)];
      Object.assign(state, { status: 'launched', attempts: attempt, run_id: String(value('runId')), run_page_url: String(value('runPageUrl')), state_message: null });
      return [dml(1)];
    }
    if (/^UPDATE `cdf`\.`dispatch_batch_states` SET status = :status/.test(sql)) {
      const state = this.batchStates.get(`${value('runKey')}/${value('batchNumber')}`);
      if (!state || state.attempts !== Number(value('attempt')) || state.status !== 'launched') return [dml(0)];
      Object.assign(state, { status: String(value('status')), state_message: String(value('stateMessage')) });
      return [dml(1)];
    }
    if (/^MERGE INTO `cdf`\.`fan_in_runs`/.test(sql)) {
      if (this.statesOf(String(value('runKey'))).some((b) => ['pending', 'launched', 'failed'].includes(b.status))) return [dml(0)];
      const run = this.runs.find((r) => r.runKey === value('runKey') && r.status === 'open');
      if (run) run.status = 'committed';
      return [dml(run ? run.windows.size : 0)];
    }
    if (/^MERGE INTO `demo`\.`entity_target`/.test(sql)) return [dml(1)];
    if (/^SELECT \(SELECT count\(\*\)/.test(sql)) return [{ registry_rows: 0n, changed_ids: 0n, target_rows: 0n }];
    throw new Error(`FakeDatabricksSql does not know this statement:\n${sql}`);
  }

  private statesOf(runKey: string): FakeBatchState[] {
    return [...this.batchStates.values()].filter((b) => b.run_key === runKey).sort((a, b) => a.batch_number - b.batch_number);
  }

  private table(quoted: string): FakeTable {
    const name = quoted.replace(/`/g, '');
    const table = this.tables.get(name);
    if (!table) throw Object.assign(new Error(`[TABLE_OR_VIEW_NOT_FOUND] The table or view \`${name}\` cannot be found. SQLSTATE: 42P01`), {});
    return table;
  }

  /** Versions in [from, to] that carry row changes (version 0 creates the table). */
  private changedVersions(from: number, to: number): number[] {
    const versions: number[] = [];
    for (let v = Math.max(1, from); v <= to; v++) versions.push(v);
    return versions;
  }
}

/** A TIMESTAMP read with unix_millis: BIGINT epoch milliseconds (a bigint, preserveBigNumericPrecision). */
function epochMs(iso: string | null): bigint | null {
  return iso === null ? null : BigInt(Date.parse(iso));
}

function dml(rows: number): object {
  return { num_affected_rows: BigInt(rows), num_inserted_rows: BigInt(rows) };
}
