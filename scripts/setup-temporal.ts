/**
 * Makes sure a Temporal CLI (dev server + Web UI) is available and prints its path.
 * Finds $TEMPORAL_CLI_PATH, PATH, the cache or Go's bin dir; otherwise installs it. Idempotent.
 */
import { ensureTemporalCli } from '../src/temporal/cli';

const quiet = process.argv.includes('--quiet');
ensureTemporalCli((message) => {
  if (!quiet || !message.startsWith('temporal CLI: ')) console.error(`[setup] ${message}`);
})
  .then((path) => {
    if (!quiet) console.log(path);
  })
  .catch((error: Error) => {
    console.error(`[setup] could not provide the Temporal CLI: ${error.message}`);
    console.error('[setup] install it yourself (https://docs.temporal.io/cli) and set TEMPORAL_CLI_PATH');
    process.exit(1);
  });
