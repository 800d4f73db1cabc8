import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { IDENTIFIER_PART } from '../../config/identifiers';

export type SqlParam = string | number | bigint | boolean | null;
export type Row = Record<string, unknown>;

/** Quotes one validated identifier part, or a dotted name part by part, for DuckDB. */
export function quoteIdent(name: string): string {
  return name
    .split('.')
    .map((part) => {
      if (!IDENTIFIER_PART.test(part)) throw new Error(`refusing to quote invalid identifier part "${part}"`);
      return `"${part}"`;
    })
    .join('.');
}

/**
 * One DuckDB database file behind a single connection. DuckDB allows one writing process per file
 * and its transactions are optimistic, so every statement here is serialized through one queue:
 * concurrent activities in the worker take turns instead of failing with write-write conflicts.
 */
export class Duck {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    readonly path: string,
  ) {}

  /**
   * `memoryLimitMB` caps DuckDB's buffer manager (its default is 80% of the machine's memory):
   * above it, large aggregations, sorts and window functions spill to a temporary directory
   * next to the file instead of growing the worker. With a limit, the connection also runs one
   * thread and does not preserve insertion order (every statement that needs an order says so):
   * each DuckDB thread and order-preserving insert buffers outside the limit, which measured
   * ~170 MB more resident memory on a 10M-id snapshot.
   */
  static async open(path: string, options: { memoryLimitMB?: number } = {}): Promise<Duck> {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const instance = await DuckDBInstance.create(path);
    const connection = await instance.connect();
    // TIMESTAMP columns hold UTC: now()::TIMESTAMP would otherwise follow the process time zone.
    await connection.run(`SET TimeZone = 'UTC'`);
    if (options.memoryLimitMB !== undefined) {
      if (!Number.isSafeInteger(options.memoryLimitMB) || options.memoryLimitMB <= 0) throw new RangeError(`memoryLimitMB must be a positive integer, got ${options.memoryLimitMB}`);
      await connection.run(`SET memory_limit = '${options.memoryLimitMB}MB'`);
      await connection.run(`SET threads = 1`);
      await connection.run(`SET preserve_insertion_order = false`);
    }
    return new Duck(instance, connection, path);
  }

  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return this.exclusive(async (tx) => tx.run(sql, params));
  }

  /** Runs a query and returns its rows as plain JS objects (BIGINT stays bigint). */
  all<T extends Row = Row>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    return this.exclusive(async (tx) => tx.all<T>(sql, params));
  }

  /** Runs `work` inside BEGIN/COMMIT on the serialized connection; rolls back on error. */
  transaction<T>(work: (tx: DuckStatements) => Promise<T>): Promise<T> {
    return this.exclusive(async (tx) => {
      await tx.run('BEGIN TRANSACTION');
      try {
        const result = await work(tx);
        await tx.run('COMMIT');
        return result;
      } catch (error) {
        await tx.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    this.connection.closeSync();
    this.instance.closeSync();
  }

  private exclusive<T>(work: (tx: DuckStatements) => Promise<T>): Promise<T> {
    const statements = new DuckStatements(this.connection);
    const next = this.queue.then(() => work(statements));
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** Statement helpers usable only while holding the connection (inside `transaction`). */
export class DuckStatements {
  constructor(private readonly connection: DuckDBConnection) {}

  async run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    const result = await this.connection.run(sql, params.length ? (params as DuckDBValue[]) : undefined);
    return Number(result.rowsChanged);
  }

  async all<T extends Row = Row>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    const reader = await this.connection.runAndReadAll(sql, params.length ? (params as DuckDBValue[]) : undefined);
    return reader.getRowObjectsJS() as T[];
  }
}
