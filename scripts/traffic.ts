/**
 * `npm run traffic -- --source orders --commits 5 --inserts 100 --updates 50 --deletes 10`
 * Writes upstream traffic into the local lakehouse: commits of random inserts, updates and
 * deletes on a configured source (created if missing). DuckDB lets one process write a file, so
 * run it while `npm start` is not running; the sources capture it on their next cycle.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../src/config/load';
import { DEMO_TRAFFIC, ensureDemoSourceTable, writeTraffic } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';

const count = (flag: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${flag} must be a whole number ≥ 0, got "${value}"`);
  return parsed;
};

const options = new Command()
  .name('npm run traffic --')
  .description('Write random upstream commits to a source table of the local lakehouse.')
  .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
  .option('--source <name>', 'source name from the config (default: every source)')
  .option('--commits <n>', 'commits per source', count('--commits'), DEMO_TRAFFIC.commits)
  .option('--inserts <n>', 'new ids per commit', count('--inserts'), DEMO_TRAFFIC.insertsPerCommit)
  .option('--updates <n>', 'updated ids per commit', count('--updates'), DEMO_TRAFFIC.updatesPerCommit)
  .option('--deletes <n>', 'deleted ids per commit', count('--deletes'), DEMO_TRAFFIC.deletesPerCommit)
  .option('--id-space <n>', 'ids are drawn from u000000000 … u(n-1)', count('--id-space'), DEMO_TRAFFIC.idSpace)
  .option('--seed <n>', 'random seed', count('--seed'), Date.now() % 1_000_000)
  .parse()
  .opts<{ config?: string; source?: string; commits: number; inserts: number; updates: number; deletes: number; idSpace: number; seed: number }>();

async function main(): Promise<void> {
  const config = loadConfig({ file: options.config });
  if (config.lakehouse.target !== 'local') throw new Error('traffic writes to the local lakehouse only (lakehouse.target: local)');
  const sources = config.sources.filter((s) => !options.source || s.name === options.source);
  if (sources.length === 0) throw new Error(`--source "${options.source}" is not in the config (known: ${config.sources.map((s) => s.name).join(', ')})`);
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  try {
    await lakehouse.ensurePipelineTables();
    for (const source of sources) {
      await ensureDemoSourceTable(lakehouse, source);
      await writeTraffic(
        lakehouse,
        source,
        { seedRows: 0, commits: options.commits, insertsPerCommit: options.inserts, updatesPerCommit: options.updates, deletesPerCommit: options.deletes, idSpace: options.idSpace, seed: options.seed },
        (commit) => console.log(`${source.table} v${commit.version}: +${commit.inserted} ~${commit.updated} -${commit.deleted}`),
      );
    }
  } finally {
    await lakehouse.close();
  }
}

main().catch((error: Error) => {
  console.error(error instanceof ConfigError ? error.message : `[traffic] ${error.message}`);
  process.exit(1);
});
