/**
 * `npm run reliability`: the reliability suite. Sets up its environment (token values to hunt
 * for, a log file) before anything from src/ is loaded, then hands over to suite.ts.
 *
 *   CDF_RELIABILITY_SIZE=ci   (default) reduced sizes, inside CI's time budget
 *   CDF_RELIABILITY_SIZE=full the sizes the committed report was made with
 *   CDF_RELIABILITY_REPORT    where the JSON report goes (default: test-artifacts/ for ci, docs/ for full)
 *   CDF_RELIABILITY_ONLY      comma-separated scenario names to run only those (a post-mortem)
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const workDir = mkdtempSync(join(tmpdir(), 'cdf-reliability-'));
// Token values the workers hold in their environment, as a Databricks deployment would; the
// suite proves that none of them reaches a history, a log line or the report.
process.env.DATABRICKS_TOKEN = `dapi${randomBytes(16).toString('hex')}`;
process.env.DATABRICKS_CLIENT_SECRET = `dose${randomBytes(16).toString('hex')}`;
process.env.CDF_LOG_FILE = join(workDir, 'suite.log');
process.env.LOG_LEVEL = process.env.LOG_LEVEL ?? 'info';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runSuite } = require('./suite') as typeof import('./suite');
runSuite(workDir).then(
  (ok) => {
    // A failed run keeps its data files, logs and histories for a post-mortem.
    if (ok) rmSync(workDir, { recursive: true, force: true });
    else process.stderr.write(`[reliability] kept ${workDir} (data files, logs, histories)\n`);
    process.exit(ok ? 0 : 1);
  },
  (error: Error) => {
    process.stderr.write(`reliability suite failed to run: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
