import { PermanentError, TransientError } from '../errors';

/**
 * An error as a SQL engine reports it: Databricks (and the local engine, which imitates it) put the
 * error class in brackets at the start of the message and the SQLSTATE at its end.
 */
export class SqlEngineError extends Error {
  override readonly name = 'SqlEngineError';
  constructor(
    message: string,
    readonly errorClass?: string,
    readonly sqlState?: string,
  ) {
    super(message);
  }
}

/** Thrown when a table's identity no longer matches the one stored with its offset. */
export const TABLE_REPLACED = 'CDF_TABLE_REPLACED';

/** Thrown when a range holds a replace, truncate, restore or CDF-off commit. */
export const INCREMENTAL_READ_BROKEN = 'CDF_INCREMENTAL_READ_BROKEN';

const RESYNC =
  'Replay the source from a readable version (signal replayFromVersion with {"fromVersion": N}) and resync the changes in between from a snapshot.';

const VACUUMED = `Files for the range were vacuumed. ${RESYNC} Raise delta.deletedFileRetentionDuration or capture more often.`;

/**
 * Permanent only while reading a source's change feed: open-source Delta 4 raises
 * FAILED_READ_FILE.FILE_NOT_EXIST (KD001) for a vacuumed range, but Spark raises the same class
 * for a stale file listing of any table (its message suggests REFRESH TABLE), which a retry cures.
 */
const FEED_READ_REMEDIES: ReadonlyArray<readonly [RegExp, string]> = [[/^FAILED_READ_FILE\.FILE_NOT_EXIST$/, VACUUMED]];

const PERMANENT_REMEDIES: ReadonlyArray<readonly [RegExp, string]> = [
  [/^DELTA_CDC_START_VERSION_AFTER_LATEST$/, `The stored offset is past the table's latest version: the table was probably dropped and re-created. ${RESYNC}`],
  [/^DELTA_MISSING_CHANGE_DATA$/, `Change data was not recorded for part of the range. Enable delta.enableChangeDataFeed on the table, then ${RESYNC.charAt(0).toLowerCase()}${RESYNC.slice(1)}`],
  [/^DELTA_VERSION_NOT_FOUND$|^DELTA_LOG_FILE_NOT_FOUND$|^DELTA_TRUNCATED_TRANSACTION_LOG$/, `The versions after the offset are no longer in the transaction log (log retention). ${RESYNC} Raise delta.logRetentionDuration or capture more often.`],
  // Databricks documents DELTA_CHANGE_DATA_FILE_NOT_FOUND; open-source Delta's FAILED_READ_FILE.FILE_NOT_EXIST is in FEED_READ_REMEDIES.
  [/^DELTA_FILE_NOT_FOUND_DETAILED$|^DBR_FILE_NOT_EXIST$|^DELTA_CHANGE_DATA_FILE_NOT_FOUND$/, VACUUMED],
  // Log files before a checkpoint were removed (log retention, or by hand).
  [/^DELTA_EMPTY_DIRECTORY$/, `The transaction log no longer holds the versions of the range (log retention). ${RESYNC} Raise delta.logRetentionDuration or capture more often.`],
  [/BEYOND_DELETED_FILE_RETENTION_DURATION$/, `The offset is older than delta.deletedFileRetentionDuration. ${RESYNC} Raise the retention or capture more often.`],
  [/^DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_/, 'A non-additive schema change lies inside the range. Replay from the version of the schema change (the downstream job must accept the new schema).'],
  [/^DELTA_INVALID_CDC_RANGE$/, 'The requested range is empty or reversed; this is a bug in range planning: report it.'],
  [new RegExp(`^${TABLE_REPLACED}$`), `The table was replaced (its table id changed). ${RESYNC}`],
  [new RegExp(`^${INCREMENTAL_READ_BROKEN}$`), `A commit in the range replaced, truncated, overwrote or restored the table, or turned CDF off. ${RESYNC}`],
  [/^TABLE_OR_VIEW_NOT_FOUND$|^DELTA_TABLE_NOT_FOUND$/, 'The table does not exist (dropped, renamed or never created). Restore it or remove the source from the config.'],
  [/^INSUFFICIENT_PERMISSIONS$|^PERMISSION_DENIED$/, 'The principal lacks a privilege: grant SELECT on the source and MODIFY on the pipeline tables.'],
];

const TRANSIENT_CLASSES = /^DELTA_CONCURRENT_|^DELTA_METADATA_CHANGED$|^DELTA_PROTOCOL_CHANGED$/;
const TRANSIENT_SQLSTATES = new Set(['2D521', '40001', '08000', '08001', '08003', '08006']);

/** Older runtimes raise start-past-latest as an IllegalArgumentException without an error class. */
const LEGACY_START_AFTER_LATEST = /Start version cannot be greater than the latest version of the table/i;
/** Failures of the connection rather than the statement: safe to retry once the statement is idempotent. */
const TRANSIENT_TEXT: ReadonlyArray<readonly [RegExp, string]> = [
  [/session (was )?(closed|expired)|invalid sessionhandle/i, 'SESSION_EXPIRED'],
  [/\bHTTP (429|502|503|504)\b|too many requests|REQUEST_LIMIT_EXCEEDED|TEMPORARILY_UNAVAILABLE/i, 'SERVICE_UNAVAILABLE'],
  [/ECONNRESET|ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN|socket hang up|premature close/i, 'CONNECTION_LOST'],
];

/**
 * The local lakehouse's DuckDB ran out of its memory limit, under a type and message that say
 * what to change: a statement that does not fit fails the same way on every attempt.
 */
const LOCAL_OUT_OF_MEMORY = /Out of Memory Error:[^\n]*/;
const LOCAL_OUT_OF_MEMORY_REMEDY =
  'The local lakehouse (DuckDB) ran out of memory: raise lakehouse.local.memoryLimitMB in the config (index pages of large demo tables cannot spill to disk) and restart the worker.';

/**
 * Reads the `[ERROR_CLASS]` or `[ERROR_CLASS.SUBCLASS]` prefix and the `SQLSTATE: xxxxx` suffix.
 * `errorClass` is the class alone; `qualifiedClass` keeps the subclass, which some classes need
 * (`FAILED_READ_FILE.FILE_NOT_EXIST` is a vacuumed file, other `FAILED_READ_FILE`s are not).
 */
export function parseEngineMessage(message: string): { errorClass?: string; qualifiedClass?: string; sqlState?: string } {
  const match = /\[(_?[A-Z][A-Z0-9_]+)(\.[A-Z0-9_]+)?\]/.exec(message);
  const sqlState = /SQLSTATE:?\s*([0-9A-Z]{5})/.exec(message)?.[1];
  return { errorClass: match?.[1], qualifiedClass: match ? `${match[1]}${match[2] ?? ''}` : undefined, sqlState };
}

/**
 * Maps any error out of a lakehouse adapter to transient or permanent. Unknown errors count as
 * transient: Temporal retries them with backoff and the last failure stays visible in the UI.
 */
export function classifyLakehouseError(error: unknown, context: { readsChangeFeed?: boolean } = {}): TransientError | PermanentError {
  if (error instanceof PermanentError || error instanceof TransientError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const parsed = parseEngineMessage(message);
  const errorClass = (error instanceof SqlEngineError && error.errorClass) || parsed.errorClass || (LEGACY_START_AFTER_LATEST.test(message) ? 'DELTA_CDC_START_VERSION_AFTER_LATEST' : undefined);
  const sqlState = (error instanceof SqlEngineError && error.sqlState) || parsed.sqlState;
  if (errorClass) {
    const qualified = parsed.errorClass === errorClass ? (parsed.qualifiedClass ?? errorClass) : errorClass;
    for (const [pattern, remedy] of [...(context.readsChangeFeed ? FEED_READ_REMEDIES : []), ...PERMANENT_REMEDIES]) {
      if (pattern.test(qualified)) return new PermanentError(qualified, message, remedy, { cause: error });
      if (pattern.test(errorClass)) return new PermanentError(errorClass, message, remedy, { cause: error });
    }
    if (TRANSIENT_CLASSES.test(errorClass)) return new TransientError(errorClass, message, { cause: error });
  }
  if (sqlState && TRANSIENT_SQLSTATES.has(sqlState)) return new TransientError(errorClass ?? `SQLSTATE_${sqlState}`, message, { cause: error });
  const outOfMemory = LOCAL_OUT_OF_MEMORY.exec(message)?.[0];
  // Retried (a concurrent statement may have held the memory), but a statement that does not fit blocks in the end.
  if (outOfMemory) return new TransientError('LOCAL_OUT_OF_MEMORY', `${outOfMemory} ${LOCAL_OUT_OF_MEMORY_REMEDY}`, { cause: error, recognised: false, remedy: LOCAL_OUT_OF_MEMORY_REMEDY });
  for (const [pattern, type] of TRANSIENT_TEXT) {
    if (pattern.test(message)) return new TransientError(type, message, { cause: error });
  }
  return new TransientError(errorClass ?? 'UNCLASSIFIED', message, { cause: error, recognised: false });
}
