import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentError, TransientError } from '../../src/errors';
import { classifyLakehouseError } from '../../src/lakehouse/errors';
import { toEngineError } from '../../src/lakehouse/databricks/sqlRunner';

/**
 * The messages open-source Delta 4.0.1 raised for each broken change feed, recorded by the
 * real-Delta tier (test/realDelta/failureModes.test.ts, CDF_RECORD_DELTA_ERRORS=1). The Thrift
 * server puts them in `errorMessage`, as a Databricks warehouse does when `displayMessage` is empty.
 */
const fixtures = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'real-delta-errors.json'), 'utf8')) as Record<string, { message: string; expectedType: string }>;

/** The remedy each class must carry: the operator's next step, not a generic one. */
const REMEDY_OF: Record<string, RegExp> = {
  'FAILED_READ_FILE.FILE_NOT_EXIST': /vacuumed[\s\S]*deletedFileRetentionDuration/,
  DELTA_MISSING_CHANGE_DATA: /Enable delta\.enableChangeDataFeed/,
  DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_DATA_SCHEMA: /schema change[\s\S]*Replay from the version of the schema change/,
  DELTA_CDC_START_VERSION_AFTER_LATEST: /dropped and re-created/,
  DELTA_EMPTY_DIRECTORY: /logRetentionDuration/,
  TABLE_OR_VIEW_NOT_FOUND: /Restore it or remove the source/,
};

describe('the classifier on the real engine\'s messages', () => {
  it.each(Object.entries(fixtures))('%s is permanent, with a remedy', (_name, { message, expectedType }) => {
    const driverError = Object.assign(new Error('The operation failed due to an error'), { response: { displayMessage: null, errorMessage: message } });
    const classified = classifyLakehouseError(toEngineError(driverError), { readsChangeFeed: true });
    expect(classified).toBeInstanceOf(PermanentError);
    expect(classified.type).toBe(expectedType);
    expect((classified as PermanentError).remedy).toMatch(REMEDY_OF[expectedType]!);
  });
});

describe('a missing file outside a change-feed read', () => {
  it('is retried as unrecognised, not blocked as a vacuumed range: Spark raises the same class for a stale file listing', () => {
    const { message } = fixtures.vacuumedRange!;
    const driverError = Object.assign(new Error('The operation failed due to an error'), { response: { displayMessage: null, errorMessage: message } });
    const classified = classifyLakehouseError(toEngineError(driverError));
    expect(classified).toBeInstanceOf(TransientError);
    expect(classified.type).toBe('FAILED_READ_FILE');
    expect((classified as TransientError).recognised).toBe(false);
  });
});
