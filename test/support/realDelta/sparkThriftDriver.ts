import { DBSQLClient, type DBSQLParameter } from '@databricks/sql';
import type { DriverClient, DriverOperation, DriverSession } from '../../../src/lakehouse/databricks/sqlRunner';
import { driverLogger } from '../../../src/lakehouse/databricks/driverLogger';

/*
 * The product's driver, @databricks/sql, talking to an open-source Spark Thrift Server instead of a
 * Databricks SQL warehouse. Every difference between the two that the product would trip over is
 * bridged here, in test support, and each is named; the product code stays what runs on
 * Databricks. Measured with @databricks/sql 2.1.0 and Spark 4.0.1 (../shared/reference/real-delta.md):
 *
 * 1. Auth: the driver's token auth sends `Bearer`; the server (HTTP mode, no auth) wants a user name
 *    in Basic auth. → a custom auth provider sending Basic.
 * 2. OpenSession: the driver fills only Databricks' `client_protocol_i64`; the server needs
 *    `client_protocol`. → a Hive protocol version (V10) on the request.
 * 3. Result metadata: the server announces no result format and numbers columns from 0. → the
 *    metadata says column-based, columns renumbered from 1.
 * 4. Named parameters: the driver sends them only to servers it knows as Databricks (protocol
 *    SPARK_V8+); Spark would raise UNBOUND_SQL_PARAMETER. → `EXECUTE IMMEDIATE '<sql>' USING
 *    <literal> AS <name>, …`, which binds them on the server (arguments must be plain literals).
 * 5. Values: results come as Thrift columns, not Arrow: MAP columns as text whose inner quotes are
 *    not escaped, timestamps as zone-less text, BIGINT as number. → maps parsed back into objects;
 *    timestamps and numbers left as they are (the adapter's row schemas accept both forms).
 * 6. Errors: `displayMessage` is empty and the text, with a Java stack trace, is in
 *    `errorMessage`. → nothing to do: the adapter falls back to `errorMessage` on Databricks too.
 * 7. Session time zone: Databricks takes `TIMEZONE` among a session's configuration parameters,
 *    over the workspace's own TIMEZONE setting; Spark keeps unknown keys in the session's conf and
 *    ignores this one (its own is `spark.sql.session.timeZone`). → a session opened with
 *    `TIMEZONE` runs `SET TIME ZONE` first. `workspaceTimeZone` stands for the workspace setting:
 *    every session starts in that zone, as on a workspace whose TIMEZONE is not UTC;
 *    `honourTimeZoneParameter: false` leaves a session there, as Spark itself would.
 */

/** HIVE_CLI_SERVICE_PROTOCOL_V10, the newest protocol Spark's Thrift server speaks. */
const HIVE_PROTOCOL_V10 = 9;
const COLUMN_BASED_SET = 1;
/** TTypeId values. */
const STRING_TYPE = 7;
const MAP_TYPE = 11;
const MAP_MARK = 'cdf-test-shim: MAP read as text';

interface ThriftColumn {
  columnName: string;
  position: number;
  comment?: string | null;
  typeDesc: { types: { primitiveEntry?: { type: number } }[] };
}

let thriftPatched = false;

/** Differences 2 and 3, on the Thrift client class the driver uses (idempotent). */
function patchThriftClient(): void {
  if (thriftPatched) return;
  thriftPatched = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const service = require('@databricks/sql/thrift/TCLIService') as { Client: { prototype: Record<string, (req: unknown, callback: (error: unknown, response: unknown) => void) => unknown> } };
  const proto = service.Client.prototype;
  const openSession = proto.OpenSession!;
  proto.OpenSession = function (this: unknown, req, callback) {
    const request = req as { client_protocol?: number };
    if (request.client_protocol === undefined || request.client_protocol < 0) request.client_protocol = HIVE_PROTOCOL_V10;
    return openSession.call(this, req, callback);
  };
  const getResultSetMetadata = proto.GetResultSetMetadata!;
  proto.GetResultSetMetadata = function (this: unknown, req, callback) {
    return getResultSetMetadata.call(this, req, (error, response) => {
      const metadata = response as { resultFormat?: number | null; schema?: { columns?: ThriftColumn[] } } | undefined;
      if (!error && metadata) {
        if (metadata.resultFormat === undefined || metadata.resultFormat === null) metadata.resultFormat = COLUMN_BASED_SET;
        const columns = metadata.schema?.columns ?? [];
        if (columns.length > 0 && Math.min(...columns.map((c) => c.position)) === 0) for (const column of columns) column.position += 1;
        // Difference 5: the driver JSON-parses MAP text and, failing on the unescaped quotes, gives
        // {}. Read maps as strings and mark them; ShimmedOperation parses them.
        for (const column of columns) {
          const entry = column.typeDesc.types[0]?.primitiveEntry;
          if (entry?.type === MAP_TYPE) {
            entry.type = STRING_TYPE;
            column.comment = MAP_MARK;
          }
        }
      }
      callback(error, response);
    });
  };
}

/** Difference 4: a typed parameter as a Spark SQL literal. */
export function sparkLiteral(parameter: DBSQLParameter): string {
  const { type, value } = parameter;
  if (value === null || value === undefined) return 'NULL';
  switch (type) {
    case 'STRING':
      return `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    case 'BIGINT':
      return `${BigInt(value as bigint | number | string)}L`;
    case 'INTEGER':
      return String(Number(value));
    case 'BOOLEAN':
      return value ? 'true' : 'false';
    case 'TIMESTAMP':
      return `TIMESTAMP'${value instanceof Date ? value.toISOString() : String(value)}'`;
    default:
      throw new Error(`sparkLiteral: no literal form for a ${type} parameter (add one when the adapter starts using it)`);
  }
}

/** Difference 4: a statement with named parameters, bound on the server. */
export function withServerSideParameters(sql: string, namedParameters: Record<string, unknown> | undefined): string {
  const entries = Object.entries(namedParameters ?? {});
  if (entries.length === 0) return sql;
  const quoted = `'${sql.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `EXECUTE IMMEDIATE ${quoted} USING ${entries.map(([name, p]) => `${sparkLiteral(p as DBSQLParameter)} AS ${name}`).join(', ')}`;
}

/**
 * Difference 5: a Thrift MAP<STRING,STRING> value, `{"k":"v","n":null,"k2":"{"a":"b","c":"d"}"}`,
 * whose inner quotes are not escaped. Keys are plain (letters, digits, `_ . -`). A value that
 * starts with `{` or `[` is read to its matching bracket (JSON in a map value, e.g. the properties
 * of a SET TBLPROPERTIES); any other runs to the next `","<key>":` or to the closing brace.
 */
export function parseThriftMap(text: string): Record<string, string | null> {
  const body = text.trim();
  if (body === '{}' || body === '') return {};
  if (!body.startsWith('{"') || !body.endsWith('}')) throw new Error(`not a Thrift map text: ${body.slice(0, 80)}`);
  const result: Record<string, string | null> = {};
  let at = 1;
  while (at < body.length - 1) {
    const key = /^"([A-Za-z0-9_.\-]+)":/.exec(body.slice(at));
    if (!key) throw new Error(`cannot read a Thrift map key at ${at}: ${body.slice(at, at + 40)}`);
    at += key[0].length;
    let value: string | null;
    if (body.startsWith('null', at)) {
      value = null;
      at += 4;
    } else if (body[at] === '"' && (body[at + 1] === '{' || body[at + 1] === '[')) {
      const end = matchingBracket(body, at + 1);
      value = body.slice(at + 1, end + 1);
      at = end + 2; // the bracket, then the closing quote
    } else if (body[at] === '"') {
      const next = body.slice(at + 1).search(/",(?="[A-Za-z0-9_.\-]+":)|"}$/);
      if (next < 0) throw new Error(`unterminated Thrift map value at ${at}`);
      value = body.slice(at + 1, at + 1 + next);
      at += next + 2;
    } else {
      throw new Error(`cannot read a Thrift map value at ${at}: ${body.slice(at, at + 40)}`);
    }
    result[key[1]!] = value;
    if (body[at] === ',') at += 1;
  }
  return result;
}

/** The index of the bracket closing the one at `start`, skipping brackets inside JSON strings. */
function matchingBracket(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  throw new Error(`unbalanced bracket in a Thrift map value from ${start}`);
}

class ShimmedOperation implements DriverOperation {
  private mapColumns?: Promise<string[]>;

  constructor(private readonly inner: DriverOperation & { getSchema(): Promise<{ columns?: ThriftColumn[] } | null> }) {}

  async fetchChunk(options?: { maxRows?: number; disableBuffering?: boolean }): Promise<object[]> {
    const rows = (await this.inner.fetchChunk(options)) as Record<string, unknown>[];
    const maps = await (this.mapColumns ??= this.findMapColumns());
    for (const row of rows) for (const name of maps) if (typeof row[name] === 'string') row[name] = parseThriftMap(row[name] as string);
    return rows;
  }

  hasMoreRows(): Promise<boolean> {
    return this.inner.hasMoreRows();
  }

  close(): Promise<unknown> {
    return this.inner.close();
  }

  private async findMapColumns(): Promise<string[]> {
    const schema = await this.inner.getSchema().catch(() => null);
    return (schema?.columns ?? []).filter((c) => c.comment === MAP_MARK).map((c) => c.columnName);
  }
}

class ShimmedSession implements DriverSession {
  constructor(private readonly inner: DriverSession) {}

  async executeStatement(sql: string, options?: { namedParameters?: Record<string, unknown>; maxRows?: number | null }): Promise<DriverOperation> {
    const operation = await this.inner.executeStatement(withServerSideParameters(sql, options?.namedParameters), { maxRows: options?.maxRows });
    return new ShimmedOperation(operation as ConstructorParameters<typeof ShimmedOperation>[0]);
  }

  close(): Promise<unknown> {
    return this.inner.close();
  }
}

async function runToEnd(session: DriverSession, sql: string): Promise<void> {
  const operation = await session.executeStatement(sql);
  try {
    do await operation.fetchChunk();
    while (await operation.hasMoreRows());
  } finally {
    await operation.close();
  }
}

/**
 * A DriverClient over the real DBSQLClient that reaches a Spark Thrift Server at
 * https://127.0.0.1:<port>/cliservice, trusting its self-signed certificate. The product's connect
 * options (host, path, token auth) are kept except for auth (difference 1) and TLS trust.
 */
export class SparkThriftDriverClient implements DriverClient {
  private readonly inner = new DBSQLClient({ logger: driverLogger });

  constructor(private readonly server: { certificatePem: string; user?: string; workspaceTimeZone?: string; honourTimeZoneParameter?: boolean }) {
    patchThriftClient();
  }

  async connect(options: Record<string, unknown>): Promise<DriverClient> {
    const basic = `Basic ${Buffer.from(`${this.server.user ?? 'cdf'}:unused`).toString('base64')}`;
    await this.inner.connect({
      ...(options as object),
      authType: 'custom',
      provider: { authenticate: async () => ({ Authorization: basic }) },
      customCaCert: this.server.certificatePem,
    } as Parameters<DBSQLClient['connect']>[0]);
    return this;
  }

  async openSession(request?: { initialCatalog?: string; initialSchema?: string; configuration?: Record<string, string> }): Promise<DriverSession> {
    // STATEMENT_TIMEOUT is a Databricks session setting; Spark rejects unknown configuration keys
    // only when they are static, so the product's configuration is passed on as is.
    const session = (await this.inner.openSession(request as Parameters<DBSQLClient['openSession']>[0])) as unknown as DriverSession;
    // Difference 7: the workspace's zone first, then the session's own parameter over it.
    const own = this.server.honourTimeZoneParameter === false ? undefined : request?.configuration?.TIMEZONE;
    for (const zone of [this.server.workspaceTimeZone, own]) {
      if (zone !== undefined) await runToEnd(session, `SET TIME ZONE ${sparkLiteral({ type: 'STRING', value: zone } as DBSQLParameter)}`);
    }
    return new ShimmedSession(session);
  }

  async close(): Promise<void> {
    await this.inner.close();
  }
}
