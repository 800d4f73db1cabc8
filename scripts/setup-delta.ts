/**
 * Makes sure the real-Delta test tier's engine is installed (pyspark + delta-spark in a cached
 * virtual environment, the Delta jars, a TLS certificate) and prints where Spark lives. Idempotent.
 */
import { ensureRealDelta } from '../test/support/realDelta/install';

const quiet = process.argv.includes('--quiet');
try {
  const installed = ensureRealDelta((message) => console.error(`[setup:delta] ${message}`), { quiet });
  if (!quiet) console.log(installed.sparkHome);
} catch (error) {
  console.error(`[setup:delta] could not install Spark + Delta: ${(error as Error).message}`);
  process.exit(1);
}
