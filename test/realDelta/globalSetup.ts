import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRealDelta } from '../support/realDelta/install';
import { startThriftServer, type ThriftServer } from '../support/realDelta/thriftServer';
import temporalGlobalSetup from '../support/globalSetup';

const WORK_DIR = join(__dirname, '..', '..', 'test-artifacts', 'real-delta');

/**
 * Installs (cached) and starts one Spark Thrift Server with Delta for the tier, and the Temporal
 * dev server and workflow bundle the main suite uses; test files find them through CDF_TEST_*
 * variables. A server that cannot start fails the run: this tier is never skipped.
 */
export default async function globalSetup(): Promise<void> {
  const say = (message: string) => process.stderr.write(`[real-delta] ${message}\n`);
  say('the real-Delta tier runs: Spark + open-source Delta Lake behind a Thrift server, through @databricks/sql');
  const installation = ensureRealDelta(say, { quiet: true });
  rmSync(WORK_DIR, { recursive: true, force: true });
  mkdirSync(WORK_DIR, { recursive: true });
  const server = await startThriftServer({ installation, workDir: WORK_DIR, progress: say });
  process.env.CDF_TEST_DELTA_HOST = `${server.host}:${server.port}`;
  process.env.CDF_TEST_DELTA_HTTP_PATH = server.httpPath;
  process.env.CDF_TEST_DELTA_CERT = server.certificatePem;
  process.env.CDF_TEST_DELTA_WAREHOUSE = server.warehouseDir;
  (globalThis as { __cdfThriftServer?: ThriftServer }).__cdfThriftServer = server;
  await temporalGlobalSetup();
}
