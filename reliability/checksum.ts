import { createHash } from 'node:crypto';
import type { TablesConfig } from '../src/config/schema';
import { quoteIdent, type Duck } from '../src/lakehouse/local/duck';

/** The row alias of the per-table hash; unusual, so it cannot be shadowed by a column of that name. */
const ROW = '__checksum_row';

/** A table that is not there hashes to this, so a dropped table changes the checksum instead of failing it. */
const MISSING = 'missing';

interface TableRef {
  schema: string;
  table: string;
}

/**
 * One hash per table that the pipeline or the emulated Delta log keeps, keyed by a readable name:
 * - the pipeline tables of `tables` (`registry`, `offsets`, …, not the consumer view), `missing` when dropped;
 * - every table of the `_delta` schema (the catalog, the commit log and the change-feed shadows);
 * - every upstream table the catalog lists as live;
 * - `(tables)`: the names of all tables in the database, so a table created or dropped anywhere shows.
 * A table's hash is the md5 of all its rows, each cast to text, in text order: it covers every
 * column of every row and does not depend on storage order. Temporary tables (the engine's `_pick`,
 * the audit's scratch tables) belong to the connection, not to the database, and are left out.
 */
export async function tableChecksums(db: Duck, tables: TablesConfig): Promise<Record<string, string>> {
  const existing = await db.all<{ schema_name: string; table_name: string }>(
    `SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY schema_name, table_name`,
  );
  const exists = (ref: TableRef) => existing.some((t) => t.schema_name === ref.schema && t.table_name === ref.table);
  const hashes: Record<string, string> = { '(tables)': md5(existing.map((t) => `${t.schema_name}.${t.table_name}`).join('\n')) };

  for (const [key, name] of Object.entries(tables)) {
    // A view over the registry: its rows are the registry's, hashed there.
    if (key === 'consumerView') continue;
    const ref = splitName(name);
    hashes[key] = exists(ref) ? await tableHash(db, ref) : MISSING;
  }
  for (const t of existing.filter((t) => t.schema_name === '_delta')) {
    hashes[`_delta.${t.table_name}`] = await tableHash(db, { schema: t.schema_name, table: t.table_name });
  }
  const catalog = exists({ schema: '_delta', table: 'tables' })
    ? await db.all<{ name: string }>(`SELECT name FROM _delta.tables WHERE NOT dropped ORDER BY name`)
    : [];
  for (const { name } of catalog) {
    const ref = splitName(name);
    hashes[`upstream ${name}`] = exists(ref) ? await tableHash(db, ref) : MISSING;
  }
  return hashes;
}

/** One deterministic hash over the full contents of the pipeline tables and the upstream Delta catalog. */
export async function pipelineChecksum(db: Duck, tables: TablesConfig): Promise<string> {
  const hashes = await tableChecksums(db, tables);
  const text = Object.keys(hashes)
    .sort()
    .map((key) => `${key}=${hashes[key]}`)
    .join('\n');
  return createHash('sha256').update(text).digest('hex');
}

/** Names of the tables whose hash differs between two `tableChecksums` results. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((key) => before[key] !== after[key]);
}

/**
 * The hash of the registry's rows without `captured_at`: a range captured again (a replay, a retry)
 * is deleted and written again in one transaction on the local engine, the same rows at a new
 * capture time.
 */
export async function registryRowsHash(db: Duck, tables: TablesConfig): Promise<string> {
  return tableHash(db, splitName(tables.registry), ['captured_at']);
}

async function tableHash(db: Duck, ref: TableRef, exceptColumns: string[] = []): Promise<string> {
  const name = `${quoteIdent(ref.schema)}.${quoteIdent(ref.table)}`;
  const from = exceptColumns.length ? `(SELECT * EXCLUDE (${exceptColumns.map(quoteIdent).join(', ')}) FROM ${name})` : name;
  const [row] = await db.all<{ h: string; n: bigint }>(
    `SELECT md5(coalesce(string_agg(${ROW}::VARCHAR, '|' ORDER BY ${ROW}::VARCHAR), '')) AS h, count(*) AS n FROM ${from} ${ROW}`,
  );
  return `${row!.n}:${row!.h}`;
}

/** Local lakehouse names are `schema.table`, or a bare `table` in DuckDB's `main` schema. */
function splitName(name: string): TableRef {
  const parts = name.split('.');
  return parts.length >= 2 ? { schema: parts[parts.length - 2]!, table: parts[parts.length - 1]! } : { schema: 'main', table: parts[0]! };
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}
