import { SqlEngineError, parseEngineMessage } from '../errors';

/** A statement with named parameters (`:name`), each with an explicit Databricks SQL type. */
export interface Statement {
  sql: string;
  params: Record<string, SqlParam>;
}

export interface SqlParam {
  /** Always explicit: a JS number in int32 range would otherwise be bound as INTEGER. */
  type: 'STRING' | 'BIGINT' | 'INTEGER' | 'BOOLEAN' | 'TIMESTAMP';
  value: string | bigint | number | boolean | null;
}

export type Row = Record<string, unknown>;

/*
 * The slice of @databricks/sql this adapter uses. Tests put a recording fake here; production
 * passes `new DBSQLClient()`. Shapes follow the driver's contracts (IDBSQLClient, IDBSQLSession,
 * IOperation).
 */
export interface DriverClient {
  connect(options: Record<string, unknown>): Promise<DriverClient>;
  openSession(request?: { initialCatalog?: string; initialSchema?: string; configuration?: Record<string, string> }): Promise<DriverSession>;
  close(): Promise<void>;
}

export interface DriverSession {
  executeStatement(sql: string, options?: { namedParameters?: Record<string, unknown>; maxRows?: number | null }): Promise<DriverOperation>;
  close(): Promise<unknown>;
}

export interface DriverOperation {
  fetchChunk(options?: { maxRows?: number; disableBuffering?: boolean }): Promise<object[]>;
  hasMoreRows(): Promise<boolean>;
  close(): Promise<unknown>;
}

export interface SqlRunnerOptions {
  /** Options for `client.connect` (host, path, auth, telemetry ...). Holds the token: never log it. */
  connectOptions: Record<string, unknown>;
  sessionConfiguration: Record<string, string>;
  /** Wraps a typed value in the driver's parameter class. */
  toDriverParameter: (param: SqlParam) => unknown;
  chunkRows?: number;
}

const SESSION_GONE = /session (was )?(closed|expired)|invalid sessionhandle|session.*not found/i;

/**
 * One long-lived driver client per worker, one session reopened when the server has expired it.
 * Results are read chunk by chunk (`fetchChunk`), never with `fetchAll`, so a large result never
 * sits in memory whole. The driver never retries ExecuteStatement, and neither does this class
 * except after a dead session (the statement did not run): every write must be safe to run twice.
 */
export class SqlRunner {
  private connected?: Promise<DriverClient>;
  private session?: Promise<DriverSession>;

  constructor(
    private readonly client: DriverClient,
    private readonly options: SqlRunnerOptions,
  ) {}

  /** Runs a statement and returns all its rows; for statements whose result is small by construction. */
  async query(statement: Statement): Promise<Row[]> {
    const rows: Row[] = [];
    await this.stream(statement, async (chunk) => {
      rows.push(...chunk);
      return true;
    });
    return rows;
  }

  /**
   * Runs a statement and hands its rows over chunk by chunk; `onChunk` returns false to stop
   * reading early (the operation is closed either way).
   */
  async stream(statement: Statement, onChunk: (rows: Row[]) => Promise<boolean>): Promise<void> {
    const operation = await this.execute(statement);
    try {
      for (;;) {
        const chunk = (await operation.fetchChunk({ maxRows: this.options.chunkRows ?? 10_000 })) as Row[];
        if (chunk.length > 0 && !(await onChunk(chunk))) return;
        if (!(await operation.hasMoreRows())) return;
      }
    } catch (error) {
      throw toEngineError(error);
    } finally {
      await operation.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const session = await this.session?.catch(() => undefined);
    await session?.close().catch(() => undefined);
    if (this.connected) await (await this.connected.catch(() => undefined))?.close().catch(() => undefined);
  }

  private async execute(statement: Statement): Promise<DriverOperation> {
    const namedParameters = Object.fromEntries(Object.entries(statement.params).map(([name, param]) => [name, this.options.toDriverParameter(param)]));
    for (let attempt = 1; ; attempt++) {
      const session = await this.openSession();
      try {
        return await session.executeStatement(statement.sql, { namedParameters });
      } catch (error) {
        if (attempt === 1 && SESSION_GONE.test(messageOf(error))) {
          this.session = undefined;
          continue;
        }
        throw toEngineError(error);
      }
    }
  }

  private openSession(): Promise<DriverSession> {
    this.connected ??= this.client.connect(this.options.connectOptions).catch((error) => {
      this.connected = undefined;
      throw toEngineError(error);
    });
    this.session ??= this.connected
      .then((client) => client.openSession({ configuration: this.options.sessionConfiguration }))
      .catch((error) => {
        this.session = undefined;
        throw toEngineError(error);
      });
    return this.session;
  }
}

/** Driver errors carry the server's text in `response.displayMessage` and its SQLSTATE in `response.sqlState`. */
export function toEngineError(error: unknown): SqlEngineError {
  if (error instanceof SqlEngineError) return error;
  const response = (error as { response?: { displayMessage?: string; errorMessage?: string; sqlState?: string } }).response;
  const message = response?.displayMessage || response?.errorMessage || messageOf(error);
  const parsed = parseEngineMessage(message);
  const code = (error as { code?: unknown }).code;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  const suffix = [typeof code === 'string' ? `code ${code}` : '', typeof statusCode === 'number' ? `HTTP ${statusCode}` : ''].filter(Boolean).join(', ');
  return new SqlEngineError(suffix ? `${message} (${suffix})` : message, parsed.errorClass, response?.sqlState ?? parsed.sqlState);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
