/**
 * Makes sure the cluster tier's binaries are installed: PostgreSQL and Prometheus from Debian's
 * packages, and the Temporal server and its SQL tool built with `go install` into a cache shared
 * by every clone on this machine. Idempotent: installs only what is missing.
 */
import { ensureClusterBinaries } from '../test/support/cluster/install';

try {
  const binaries = ensureClusterBinaries((message) => console.error(`[setup:cluster] ${message}`));
  if (!process.argv.includes('--quiet')) console.log(JSON.stringify(binaries, null, 2));
} catch (error) {
  console.error(`[setup:cluster] could not install the cluster tier's binaries: ${(error as Error).message}`);
  process.exit(1);
}
