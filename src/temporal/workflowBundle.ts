import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode } from '@temporalio/worker';

/**
 * Bundles src/workflows once and writes it to `path`, so that many workers (a test run's, the
 * reliability suite's) load the file instead of each running webpack. Only warnings are printed.
 */
export async function writeWorkflowBundle(path: string): Promise<void> {
  const bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: quietBundleLogger });
  writeFileSync(path, bundle.code);
}

const quietBundleLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => process.stderr.write(`[bundle] ${message}\n`),
  error: (message: string) => process.stderr.write(`[bundle] ${message}\n`),
};
