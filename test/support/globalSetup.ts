import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { startDevServer } from '../../src/temporal/devServer';
import { writeWorkflowBundle } from '../../src/temporal/workflowBundle';
import { searchAttributeFlags } from '../../src/temporal/searchAttributes';

export const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');

/**
 * Starts one real Temporal dev server (in-memory SQLite, headless) and bundles the workflows once;
 * test files find both through environment variables.
 */
export default async function globalSetup(): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const cliPath = await ensureTemporalCli((message) => process.stderr.write(`[test setup] ${message}\n`));
  const server = await startDevServer({ cliPath, logFile: join(ARTIFACTS, 'temporal-dev-server.log'), extraArgs: searchAttributeFlags() });
  const bundlePath = join(ARTIFACTS, 'workflow-bundle.js');
  await writeWorkflowBundle(bundlePath);
  process.env.TEMPORAL_CLI_PATH = cliPath;
  process.env.CDF_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.CDF_TEST_WORKFLOW_BUNDLE = bundlePath;
  (globalThis as { __cdfDevServer?: typeof server }).__cdfDevServer = server;
}
