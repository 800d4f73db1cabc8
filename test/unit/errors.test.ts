import { PermanentError, TransientError } from '../../src/errors';
import { SqlEngineError, TABLE_REPLACED, classifyLakehouseError, parseEngineMessage } from '../../src/lakehouse/errors';

/** An error shaped like the Databricks SQL driver's: `[ERROR_CLASS] text SQLSTATE: xxxxx`. */
function databricksError(errorClass: string, text: string, sqlState: string): Error {
  return new Error(`[${errorClass}] ${text} SQLSTATE: ${sqlState}`);
}

function expectTransient(error: unknown, type: string): TransientError {
  const classified = classifyLakehouseError(error);
  expect(classified).toBeInstanceOf(TransientError);
  expect(classified.type).toBe(type);
  return classified as TransientError;
}

function expectPermanentWithRemedy(error: unknown, type: string): PermanentError {
  const classified = classifyLakehouseError(error);
  expect(classified).toBeInstanceOf(PermanentError);
  expect(classified.type).toBe(type);
  expect((classified as PermanentError).remedy.trim()).not.toBe('');
  return classified as PermanentError;
}

describe('parseEngineMessage', () => {
  it('reads the error class with and without its subclass, and the SQLSTATE', () => {
    const message = '[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Transaction conflict detected. SQLSTATE: 2D521';
    expect(parseEngineMessage(message)).toEqual({ errorClass: 'DELTA_CONCURRENT_APPEND', qualifiedClass: 'DELTA_CONCURRENT_APPEND.WITHOUT_HINT', sqlState: '2D521' });
  });

  it('does not mistake a bracketed version list in the text for an error class', () => {
    const message = 'Cannot time travel Delta table to version 3. Available versions: [5, 9].';
    expect(parseEngineMessage(message)).toEqual({ errorClass: undefined, sqlState: undefined });
  });
});

describe('classifyLakehouseError: transient', () => {
  it('classifies a concurrent append with a bracketed subclass as transient under the base class', () => {
    const error = databricksError(
      'DELTA_CONCURRENT_APPEND.WITHOUT_HINT',
      'Transaction conflict detected. A concurrent WRITE added data to table cdf.change_registry. Please retry the operation.',
      '2D521',
    );
    expectTransient(error, 'DELTA_CONCURRENT_APPEND');
  });

  it('classifies a concurrent delete-read conflict as transient', () => {
    const error = databricksError('DELTA_CONCURRENT_DELETE_READ', 'Transaction conflict detected. A concurrent operation deleted a file read by this operation.', '2D521');
    expectTransient(error, 'DELTA_CONCURRENT_DELETE_READ');
  });

  it('classifies a concurrent metadata change as transient', () => {
    const error = databricksError('DELTA_METADATA_CHANGED', 'MetadataChangedException: The metadata of the Delta table has been changed by a concurrent update.', '2D521');
    expectTransient(error, 'DELTA_METADATA_CHANGED');
  });

  it('classifies a message with only a transaction-conflict SQLSTATE as transient', () => {
    expectTransient(new Error('Transaction conflict detected. SQLSTATE: 2D521'), 'SQLSTATE_2D521');
  });

  it('classifies an unknown error as transient UNCLASSIFIED, and as unrecognised', () => {
    expect(expectTransient(new Error('something nobody planned for'), 'UNCLASSIFIED').recognised).toBe(false);
  });

  it('classifies a dropped connection as transient CONNECTION_LOST', () => {
    expectTransient(new Error('socket hang up'), 'CONNECTION_LOST');
  });

  it('classifies an expired session as transient SESSION_EXPIRED', () => {
    expectTransient(new Error('The session was closed or has expired'), 'SESSION_EXPIRED');
  });

  it('classifies a thrown non-Error value as transient UNCLASSIFIED', () => {
    expectTransient('something odd', 'UNCLASSIFIED');
  });

  it('keeps the original error as the cause', () => {
    const original = databricksError('DELTA_CONCURRENT_APPEND', 'conflict', '2D521');
    expect(classifyLakehouseError(original).cause).toBe(original);
  });

  it('returns an already classified error unchanged', () => {
    const already = new TransientError('DELTA_CONCURRENT_APPEND', 'conflict');
    expect(classifyLakehouseError(already)).toBe(already);
  });
});

describe('classifyLakehouseError: permanent, with a remedy', () => {
  it('classifies missing change data as permanent', () => {
    const error = databricksError(
      'DELTA_MISSING_CHANGE_DATA',
      'Error getting change data for range [0 , 5] as change data was not recorded for version [2].',
      'KD002',
    );
    expectPermanentWithRemedy(error, 'DELTA_MISSING_CHANGE_DATA');
  });

  it('classifies a version missing from the log as permanent', () => {
    const error = databricksError('DELTA_VERSION_NOT_FOUND', 'Cannot time travel Delta table to version 3. Available versions: [5, 9].', '22003');
    expectPermanentWithRemedy(error, 'DELTA_VERSION_NOT_FOUND');
  });

  it('classifies a vacuumed file as permanent', () => {
    const error = databricksError('DELTA_FILE_NOT_FOUND_DETAILED', 'File _change_data/cdc-00000.parquet referenced in the transaction log cannot be found.', '42K03');
    expectPermanentWithRemedy(error, 'DELTA_FILE_NOT_FOUND_DETAILED');
  });

  it('classifies time travel beyond the deleted file retention as permanent', () => {
    const error = databricksError(
      'DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION',
      'Cannot time travel beyond delta.deletedFileRetentionDuration (168 HOURS) set on the table.',
      '0AKDC',
    );
    expectPermanentWithRemedy(error, 'DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION');
  });

  it('classifies an incompatible schema change inside the range as permanent', () => {
    const error = databricksError(
      'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE',
      'Retrieving table changes between version 2 and 8 failed because of an incompatible schema change.',
      '0AKDC',
    );
    expectPermanentWithRemedy(error, 'DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE');
  });

  it('classifies a start version after the latest as permanent', () => {
    const error = databricksError('DELTA_CDC_START_VERSION_AFTER_LATEST', 'Start version 12 for change data feed exceeds the latest table version 3.', '22003');
    expectPermanentWithRemedy(error, 'DELTA_CDC_START_VERSION_AFTER_LATEST');
  });

  it('classifies a missing table as permanent', () => {
    const error = databricksError('TABLE_OR_VIEW_NOT_FOUND', 'The table or view `upstream`.`orders` cannot be found.', '42P01');
    expectPermanentWithRemedy(error, 'TABLE_OR_VIEW_NOT_FOUND');
  });

  it('classifies missing permissions as permanent', () => {
    const error = databricksError('INSUFFICIENT_PERMISSIONS', 'Insufficient privileges: User does not have SELECT on Table upstream.orders.', '42501');
    expectPermanentWithRemedy(error, 'INSUFFICIENT_PERMISSIONS');
  });

  it('classifies a replaced table as permanent', () => {
    const error = new SqlEngineError(`[${TABLE_REPLACED}] table upstream.orders now has a different table id`, TABLE_REPLACED);
    expectPermanentWithRemedy(error, 'CDF_TABLE_REPLACED');
  });

  it('prefers the error class carried by a SqlEngineError over the message text', () => {
    const error = new SqlEngineError('the driver lost the bracketed prefix', 'DELTA_VERSION_NOT_FOUND', '22003');
    expectPermanentWithRemedy(error, 'DELTA_VERSION_NOT_FOUND');
  });
});

describe('the local lakehouse running out of memory', () => {
  it('is retried under LOCAL_OUT_OF_MEMORY but as unrecognised, so it blocks in the end, naming the setting to raise', async () => {
    const { Duck } = await import('../../src/lakehouse/local/duck');
    const db = await Duck.open(':memory:', { memoryLimitMB: 64 });
    try {
      // Index pages cannot spill: a primary key over 3M strings does not fit in 64 MB.
      await db.run(`CREATE TABLE t (k VARCHAR PRIMARY KEY)`);
      const error = await db.run(`INSERT INTO t SELECT 'key-' || lpad(i::VARCHAR, 12, '0') FROM range(3000000) r(i)`).then(() => undefined, (e: unknown) => e);
      expect(String((error as Error).message)).toMatch(/^Out of Memory Error/);
      const classified = expectTransient(error, 'LOCAL_OUT_OF_MEMORY');
      expect(classified.recognised).toBe(false);
      expect(classified.remedy).toMatch(/lakehouse\.local\.memoryLimitMB/);
      expect(classified.message).toMatch(/^Out of Memory Error: .*raise lakehouse\.local\.memoryLimitMB/);
      expect(classified.message).not.toContain('\n');
    } finally {
      await db.close();
    }
  });
});
