import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PermanentError } from '../../src/errors';
import { classifyLakehouseError } from '../../src/lakehouse/errors';
import { toEngineError } from '../../src/lakehouse/databricks/sqlRunner';

/**
 * The messages open-source Delta 4.0.1 raised for each broken change feed, recorded by the
 * real-Delta tier (test/realDelta/failureModes.test.ts, CDF_RECORD_DELTA_ERRORS=1). The Thrift
 * server puts them in `errorMessage`, as a Databricks warehouse does when `displayMessage` is empty.
 */
const fixtures = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'real-delta-errors.json'), 'utf8')) as Record<string, { message: string; expectedType: string }>;

describe('the classifier on the real engine\'s messages', () => {
  it.each(Object.entries(fixtures))('%s is permanent, with a remedy', (_name, { message, expectedType }) => {
    const driverError = Object.assign(new Error('The operation failed due to an error'), { response: { displayMessage: null, errorMessage: message } });
    const classified = classifyLakehouseError(toEngineError(driverError));
    expect(classified).toBeInstanceOf(PermanentError);
    expect(classified.type).toBe(expectedType);
    expect((classified as PermanentError).remedy.length).toBeGreaterThan(20);
  });
});
