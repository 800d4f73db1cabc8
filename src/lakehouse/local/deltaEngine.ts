import { randomUUID } from 'node:crypto';
import { SqlEngineError } from '../errors';
import { quoteIdent, type Duck, type DuckStatements, type SqlParam } from './duck';

/**
 * A small Delta Lake with Change Data Feed, on DuckDB. It keeps what the orchestrator relies on:
 * every write is a numbered commit with a timestamp; the feed carries `_change_type`,
 * `_commit_version` and `_commit_timestamp`; reads are by pinned, inclusive version range; and it
 * fails the way Databricks fails (start past latest, vacuumed or expired versions, CDF off for a
 * version, dropped tables), with Databricks' error classes and SQLSTATEs in the message. A table
 * replace gives the table a new id, as `CREATE OR REPLACE` does for a non-catalog-managed table.
 */
export interface ColumnSpec {
  name: string;
  type: 'VARCHAR' | 'DOUBLE' | 'BIGINT' | 'INTEGER' | 'BOOLEAN' | 'TIMESTAMP';
}

export interface CommitSpec {
  /** New keys, or how many keys to draw from the id space that the table does not hold yet. */
  insert?: readonly string[] | number;
  /** Existing keys, or how many existing keys to pick at random. */
  update?: readonly string[] | number;
  /** Existing keys, or how many existing keys to pick at random. */
  delete?: readonly string[] | number;
  /** Size of the generated id space (`u000000001` …) for random inserts. */
  idSpace?: number;
  /** Makes random picks repeatable. */
  seed?: number;
}

export interface CommitResult {
  table: string;
  version: number;
  commitTimestamp: string;
  inserted: number;
  updated: number;
  deleted: number;
}

/** Runs inside the commit's transaction once the picked keys are in `_pick(uts_id, op)`. */
export type CommitHook = (tx: DuckStatements, commit: { version: number; commitTimestamp: string }) => Promise<void>;

export interface TableState {
  name: string;
  tableId: string;
  keyColumn: string;
  latestVersion: number;
  latestCommitTimestamp: string;
  /** delta.deletedFileRetentionDuration in hours: how old the start of a CDF read may be. */
  deletedFileRetentionHours: number;
}

interface CatalogRow {
  name: string;
  table_id: string;
  key_column: string;
  shadow: string;
  cdf_enabled: boolean;
  earliest_readable_version: bigint;
  earliest_log_version: bigint;
  deleted_file_retention_hours: number;
  dropped: boolean;
}

export class LocalDeltaEngine {
  constructor(private readonly db: Duck) {}

  async ensureCatalog(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run(`CREATE SCHEMA IF NOT EXISTS _delta`);
      await tx.run(`CREATE SEQUENCE IF NOT EXISTS _delta.shadow_seq`);
      await tx.run(`CREATE TABLE IF NOT EXISTS _delta.tables (
        name VARCHAR PRIMARY KEY, table_id VARCHAR NOT NULL, key_column VARCHAR NOT NULL, shadow VARCHAR NOT NULL,
        cdf_enabled BOOLEAN NOT NULL, earliest_readable_version BIGINT NOT NULL, earliest_log_version BIGINT NOT NULL,
        deleted_file_retention_hours INTEGER NOT NULL, dropped BOOLEAN NOT NULL)`);
      await tx.run(`CREATE TABLE IF NOT EXISTS _delta.commits (
        table_name VARCHAR NOT NULL, version BIGINT NOT NULL, commit_timestamp TIMESTAMP NOT NULL,
        operation VARCHAR NOT NULL, cdf_recorded BOOLEAN NOT NULL, table_id VARCHAR NOT NULL)`);
      // Tables dropped and then created again under their name: their log and change feed, kept for audits.
      await tx.run(`CREATE TABLE IF NOT EXISTS _delta.retired (name VARCHAR NOT NULL, table_id VARCHAR NOT NULL, shadow VARCHAR NOT NULL, log_name VARCHAR NOT NULL)`);
    });
  }

  /**
   * Every change feed a table name has had: the live table's and those of tables dropped before it
   * was created again, each with the name its commits are logged under (for audits: an oracle
   * independent of the pipeline's reads).
   */
  async changeFeeds(name: string): Promise<{ shadow: string; logName: string }[]> {
    const live = await this.catalogRow(name);
    const retired = await this.db.all<{ shadow: string; log_name: string }>(`SELECT shadow, log_name FROM _delta.retired WHERE name = ?`, [name]);
    return [...retired.map((r) => ({ shadow: r.shadow, logName: r.log_name })), ...(live && !live.dropped ? [{ shadow: live.shadow, logName: name }] : [])];
  }

  /**
   * Creates an empty table with CDF on, as version 0. Idempotent for a live table with that name.
   * Over a dropped table it is `DROP` + `CREATE` on Delta: a new table id and a new log from
   * version 0; the dropped table's log and feed are retired, not deleted.
   */
  async createTable(name: string, columns: readonly ColumnSpec[], options: { keyColumn: string }): Promise<TableState> {
    const existing = await this.catalogRow(name);
    if (existing && !existing.dropped) return this.describe(name);
    if (!columns.some((c) => c.name === options.keyColumn)) throw new Error(`key column ${options.keyColumn} is not among the columns of ${name}`);
    await this.db.transaction(async (tx) => {
      const [sequence] = await tx.all<{ next: bigint }>(`SELECT nextval('_delta.shadow_seq') AS next`);
      const shadow = `_delta.cdf_${sequence!.next}`;
      const schema = name.includes('.') ? name.split('.')[0]! : undefined;
      if (schema) await tx.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
      const columnList = columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ');
      await tx.run(`CREATE OR REPLACE TABLE ${quoteIdent(name)} (${columnList})`);
      await tx.run(
        `CREATE TABLE ${shadow} (${columnList}, _change_type VARCHAR NOT NULL, _commit_version BIGINT NOT NULL, _commit_timestamp TIMESTAMP NOT NULL)`,
      );
      const tableId = randomUUID();
      if (existing) {
        const logName = `${name}#${existing.table_id}`;
        await tx.run(`UPDATE _delta.commits SET table_name = ? WHERE table_name = ?`, [logName, name]);
        await tx.run(`INSERT INTO _delta.retired VALUES (?, ?, ?, ?)`, [name, existing.table_id, existing.shadow, logName]);
        await tx.run(`DROP TABLE IF EXISTS ${existing.shadow}_dropped`);
      }
      await tx.run(`DELETE FROM _delta.tables WHERE name = ?`, [name]);
      await tx.run(`INSERT INTO _delta.tables VALUES (?, ?, ?, ?, true, 0, 0, 168, false)`, [name, tableId, options.keyColumn, shadow]);
      await tx.run(`INSERT INTO _delta.commits VALUES (?, 0, now()::TIMESTAMP, 'CREATE TABLE', true, ?)`, [name, tableId]);
    });
    return this.describe(name);
  }

  /** Latest version, its timestamp and the table id (what DESCRIBE HISTORY/DETAIL give on Databricks). */
  async describe(name: string): Promise<TableState> {
    const table = await this.liveTable(name);
    const [latest] = await this.db.all<{ version: bigint; ts: string }>(
      `SELECT version, strftime(commit_timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts FROM _delta.commits WHERE table_name = ? ORDER BY version DESC LIMIT 1`,
      [name],
    );
    return {
      name,
      tableId: table.table_id,
      keyColumn: table.key_column,
      latestVersion: Number(latest!.version),
      latestCommitTimestamp: latest!.ts,
      deletedFileRetentionHours: table.deleted_file_retention_hours,
    };
  }

  /** Timestamp of one commit, or null if the version does not exist. */
  async commitTimestamp(name: string, version: number): Promise<string | null> {
    const [commit] = await this.db.all<{ ts: string }>(
      `SELECT strftime(commit_timestamp, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts FROM _delta.commits WHERE table_name = ? AND version = ?`,
      [name, version],
    );
    return commit?.ts ?? null;
  }

  /**
   * The `table_changes(name, start, end)` relation as SQL text, after the checks Delta makes.
   * Versions are inlined as validated integers: Delta requires constant table_changes arguments.
   */
  async changesRelation(name: string, startVersion: number, endVersion: number): Promise<{ sql: string; keyColumn: string }> {
    assertVersion('startVersion', startVersion);
    assertVersion('endVersion', endVersion);
    const table = await this.liveTable(name);
    if (endVersion < startVersion) {
      throw engineError('DELTA_INVALID_CDC_RANGE', `CDC range from start ${startVersion} to end ${endVersion} was invalid. End cannot be before start.`, '22003');
    }
    const { latestVersion } = await this.describe(name);
    if (startVersion > latestVersion) {
      throw engineError(
        'DELTA_CDC_START_VERSION_AFTER_LATEST',
        `Start version ${startVersion} for change data feed exceeds the latest table version ${latestVersion}.`,
        '22003',
      );
    }
    if (startVersion < Number(table.earliest_log_version)) {
      throw engineError(
        'DELTA_VERSION_NOT_FOUND',
        `Cannot time travel Delta table to version ${startVersion}. Available versions: [${table.earliest_log_version}, ${latestVersion}].`,
        '22003',
      );
    }
    const [start] = await this.db.all<{ age_hours: number }>(
      `SELECT date_diff('second', commit_timestamp, now()::TIMESTAMP) / 3600.0 AS age_hours FROM _delta.commits WHERE table_name = ? AND version = ?`,
      [name, startVersion],
    );
    if (start && start.age_hours > table.deleted_file_retention_hours) {
      throw engineError(
        'DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION',
        `Cannot time travel beyond delta.deletedFileRetentionDuration (${table.deleted_file_retention_hours} HOURS) set on the table.`,
        '0AKDC',
      );
    }
    if (startVersion < Number(table.earliest_readable_version)) {
      throw engineError(
        'DELTA_FILE_NOT_FOUND_DETAILED',
        `File ${table.shadow}/_change_data/cdc-v${startVersion}.parquet referenced in the transaction log cannot be found. This occurs when data has been manually deleted from the file system rather than using the table DELETE statement.`,
        '42K03',
      );
    }
    const end = Math.min(endVersion, latestVersion);
    const [missing] = await this.db.all<{ version: bigint }>(
      `SELECT min(version) AS version FROM _delta.commits WHERE table_name = ? AND version BETWEEN ? AND ? AND NOT cdf_recorded`,
      [name, startVersion, end],
    );
    if (missing?.version !== null && missing?.version !== undefined) {
      throw engineError(
        'DELTA_MISSING_CHANGE_DATA',
        `Error getting change data for range [${startVersion} , ${end}] as change data was not recorded for version [${missing.version}]. If you've enabled change data feed on this table, use \`DESCRIBE HISTORY\` to see when it was first enabled. Otherwise, to start recording change data, use \`ALTER TABLE table_name SET TBLPROPERTIES (delta.enableChangeDataFeed=true)\`.`,
        'KD002',
      );
    }
    return {
      sql: `(SELECT * FROM ${table.shadow} WHERE _commit_version BETWEEN ${startVersion} AND ${end})`,
      keyColumn: table.key_column,
    };
  }

  /** Writes one commit of inserts, updates and deletes; the feed records each row change. */
  async commit(name: string, spec: CommitSpec, hook?: CommitHook): Promise<CommitResult> {
    const table = await this.liveTable(name);
    const key = quoteIdent(table.key_column);
    const target = quoteIdent(name);
    const columns = await this.db.all<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`,
      splitName(name),
    );
    return this.db.transaction(async (tx) => {
      const { version, commitTimestamp } = await nextCommit(tx, name);
      const seed = spec.seed ?? version;
      await tx.run(`CREATE OR REPLACE TEMP TABLE _pick (uts_id VARCHAR NOT NULL, op VARCHAR NOT NULL)`);
      await pickKeys(tx, 'delete', spec.delete, `SELECT ${key} FROM ${target}`, seed);
      await pickKeys(tx, 'update', spec.update, `SELECT ${key} FROM ${target} WHERE ${key} NOT IN (SELECT uts_id FROM _pick)`, seed + 1);
      const idSpace = spec.idSpace ?? 1_000_000;
      await pickKeys(
        tx,
        'insert',
        spec.insert,
        `SELECT printf('u%09d', i) FROM range(${Math.floor(idSpace)}) r(i) WHERE printf('u%09d', i) NOT IN (SELECT ${key} FROM ${target})`,
        seed + 2,
      );
      const feed = (changeType: string, op: string) =>
        tx.run(
          `INSERT INTO ${table.shadow} SELECT t.*, '${changeType}', ${version}, '${commitTimestamp}'::TIMESTAMP FROM ${target} t WHERE t.${key} IN (SELECT uts_id FROM _pick WHERE op = '${op}')`,
        );
      const valuesFor = (keyExpr: string) =>
        columns.map((c) => (c.column_name === table.key_column ? keyExpr : generatedValue(c.data_type, keyExpr, version, commitTimestamp)));
      const deleted = await feed('delete', 'delete');
      await tx.run(`DELETE FROM ${target} WHERE ${key} IN (SELECT uts_id FROM _pick WHERE op = 'delete')`);
      await feed('update_preimage', 'update');
      const updates = columns
        .filter((c) => c.column_name !== table.key_column)
        .map((c) => `${quoteIdent(c.column_name)} = ${generatedValue(c.data_type, `t.${key}`, version, commitTimestamp)}`);
      const updated = updates.length
        ? await tx.run(`UPDATE ${target} t SET ${updates.join(', ')} WHERE t.${key} IN (SELECT uts_id FROM _pick WHERE op = 'update')`)
        : 0;
      await feed('update_postimage', 'update');
      const inserted = await tx.run(`INSERT INTO ${target} SELECT ${valuesFor('p.uts_id').join(', ')} FROM _pick p WHERE p.op = 'insert'`);
      await feed('insert', 'insert');
      await tx.run(`INSERT INTO _delta.commits VALUES (?, ?, ?::TIMESTAMP, 'MERGE', ?, ?)`, [name, version, commitTimestamp, table.cdf_enabled, table.table_id]);
      if (!table.cdf_enabled) await tx.run(`DELETE FROM ${table.shadow} WHERE _commit_version = ?`, [version]);
      if (hook) await hook(tx, { version, commitTimestamp });
      return { table: name, version, commitTimestamp, inserted, updated, deleted };
    });
  }

  /** VACUUM: files needed to read versions before `retainFromVersion` are gone. */
  async vacuum(name: string, retainFromVersion: number): Promise<void> {
    const table = await this.liveTable(name);
    await this.db.transaction(async (tx) => {
      await tx.run(`UPDATE _delta.tables SET earliest_readable_version = greatest(earliest_readable_version, ?) WHERE name = ?`, [retainFromVersion, name]);
      await tx.run(`DELETE FROM ${table.shadow} WHERE _commit_version < ?`, [retainFromVersion]);
    });
  }

  /** Log cleanup: versions before `keepFromVersion` can no longer be time-travelled to. */
  async expireLog(name: string, keepFromVersion: number): Promise<void> {
    await this.liveTable(name);
    await this.db.run(`UPDATE _delta.tables SET earliest_log_version = greatest(earliest_log_version, ?) WHERE name = ?`, [keepFromVersion, name]);
  }

  /** `ALTER TABLE … SET TBLPROPERTIES (delta.enableChangeDataFeed = …)`: a commit of its own. */
  async setChangeDataFeed(name: string, enabled: boolean): Promise<number> {
    const table = await this.liveTable(name);
    return this.db.transaction(async (tx) => {
      const { version, commitTimestamp } = await nextCommit(tx, name);
      await tx.run(`UPDATE _delta.tables SET cdf_enabled = ? WHERE name = ?`, [enabled, name]);
      // The property change itself is recorded only when CDF is on after it.
      await tx.run(`INSERT INTO _delta.commits VALUES (?, ?, ?::TIMESTAMP, 'SET TBLPROPERTIES', ?, ?)`, [name, version, commitTimestamp, enabled, table.table_id]);
      return version;
    });
  }

  /** `CREATE OR REPLACE TABLE`: versions continue, the table gets a new id and loses its rows. */
  async replaceTable(name: string): Promise<{ version: number; tableId: string }> {
    const table = await this.liveTable(name);
    const key = quoteIdent(table.key_column);
    return this.db.transaction(async (tx) => {
      const { version, commitTimestamp } = await nextCommit(tx, name);
      const tableId = randomUUID();
      await tx.run(`INSERT INTO ${table.shadow} SELECT t.*, 'delete', ${version}, '${commitTimestamp}'::TIMESTAMP FROM ${quoteIdent(name)} t ORDER BY t.${key}`);
      await tx.run(`DELETE FROM ${quoteIdent(name)}`);
      await tx.run(`UPDATE _delta.tables SET table_id = ? WHERE name = ?`, [tableId, name]);
      await tx.run(`INSERT INTO _delta.commits VALUES (?, ?, ?::TIMESTAMP, 'CREATE OR REPLACE TABLE', ?, ?)`, [name, version, commitTimestamp, table.cdf_enabled, tableId]);
      return { version, tableId };
    });
  }

  /**
   * `DROP TABLE`: later reads fail with TABLE_OR_VIEW_NOT_FOUND until the name is created again or
   * the table is undropped. Like Unity Catalog, which keeps a dropped managed table's data for a
   * while, the rows are set aside (the change feed stays where it was) so that UNDROP can restore them.
   */
  async dropTable(name: string): Promise<void> {
    const table = await this.liveTable(name);
    await this.db.transaction(async (tx) => {
      await tx.run(`CREATE OR REPLACE TABLE ${table.shadow}_dropped AS SELECT * FROM ${quoteIdent(name)}`);
      await tx.run(`DROP TABLE ${quoteIdent(name)}`);
      await tx.run(`UPDATE _delta.tables SET dropped = true WHERE name = ?`, [name]);
    });
  }

  /** `UNDROP TABLE`: brings a dropped table back with its id, history and change feed. */
  async undropTable(name: string): Promise<void> {
    const table = await this.catalogRow(name);
    if (!table?.dropped) throw engineError('TABLE_OR_VIEW_NOT_FOUND', `There is no dropped table ${name} to undrop.`, '42P01');
    await this.db.transaction(async (tx) => {
      await tx.run(`CREATE TABLE ${quoteIdent(name)} AS SELECT * FROM ${table.shadow}_dropped`);
      await tx.run(`DROP TABLE ${table.shadow}_dropped`);
      await tx.run(`UPDATE _delta.tables SET dropped = false WHERE name = ?`, [name]);
    });
  }

  /** Sets `delta.deletedFileRetentionDuration` in hours. */
  async setDeletedFileRetentionHours(name: string, hours: number): Promise<void> {
    await this.liveTable(name);
    await this.db.run(`UPDATE _delta.tables SET deleted_file_retention_hours = ? WHERE name = ?`, [hours, name]);
  }

  /** Test helper for retention: moves every commit timestamp of the table back by `hours`. */
  async ageCommits(name: string, hours: number): Promise<void> {
    await this.liveTable(name);
    await this.db.run(`UPDATE _delta.commits SET commit_timestamp = commit_timestamp - to_hours(?::BIGINT) WHERE table_name = ?`, [hours, name]);
  }

  private async catalogRow(name: string): Promise<CatalogRow | undefined> {
    const [row] = await this.db.all<CatalogRow & Record<string, unknown>>(`SELECT * FROM _delta.tables WHERE name = ?`, [name]);
    return row;
  }

  private async liveTable(name: string): Promise<CatalogRow> {
    const row = await this.catalogRow(name);
    if (!row || row.dropped) {
      throw engineError('TABLE_OR_VIEW_NOT_FOUND', `The table or view \`${name}\` cannot be found. Verify the spelling and correctness of the schema and catalog.`, '42P01');
    }
    return row;
  }
}

function engineError(errorClass: string, text: string, sqlState: string): SqlEngineError {
  return new SqlEngineError(`[${errorClass}] ${text} SQLSTATE: ${sqlState}`, errorClass, sqlState);
}

function assertVersion(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a non-negative integer, got ${value}`);
}

function splitName(name: string): [string, string] {
  const parts = name.split('.');
  return parts.length === 2 ? [parts[0]!, parts[1]!] : ['main', parts[0]!];
}

/** Next version and a commit timestamp strictly after the previous one (Delta keeps them increasing). */
async function nextCommit(tx: DuckStatements, name: string): Promise<{ version: number; commitTimestamp: string }> {
  const [row] = await tx.all<{ version: bigint; ts: string }>(
    `SELECT max(version) + 1 AS version,
            strftime(greatest(now()::TIMESTAMP, max(commit_timestamp) + INTERVAL 1 MILLISECOND), '%Y-%m-%d %H:%M:%S.%g') AS ts
     FROM _delta.commits WHERE table_name = ?`,
    [name],
  );
  return { version: Number(row!.version), commitTimestamp: row!.ts };
}

async function pickKeys(tx: DuckStatements, op: string, pick: readonly string[] | number | undefined, candidates: string, seed: number): Promise<void> {
  if (pick === undefined || pick === 0) return;
  if (typeof pick === 'number') {
    await tx.run(`INSERT INTO _pick SELECT k, '${op}' FROM (${candidates}) c(k) ORDER BY hash(k, ${Math.floor(seed)}) LIMIT ${Math.floor(pick)}`);
    return;
  }
  for (let offset = 0; offset < pick.length; offset += 500) {
    const chunk = pick.slice(offset, offset + 500);
    await tx.run(`INSERT INTO _pick VALUES ${chunk.map(() => `(?, '${op}')`).join(', ')}`, chunk as SqlParam[]);
  }
}

/** Deterministic pseudo-random value for a column, varying with key and version. */
function generatedValue(dataType: string, keyExpr: string, version: number, commitTimestamp: string): string {
  const h = `hash(${keyExpr}, ${version})`;
  switch (dataType) {
    case 'VARCHAR':
      return `['new', 'paid', 'shipped', 'returned', 'cancelled'][(${h} % 5)::INTEGER + 1]`;
    case 'DOUBLE':
      return `(${h} % 100000) / 100.0`;
    case 'BIGINT':
    case 'INTEGER':
      return `(${h} % 1000)::${dataType}`;
    case 'BOOLEAN':
      return `(${h} % 2) = 0`;
    case 'TIMESTAMP':
      return `'${commitTimestamp}'::TIMESTAMP`;
    default:
      return 'NULL';
  }
}
