/**
 * `npm run docs:lag-graph`: docs/prometheus-source-lag.png, Prometheus's own graph of
 * `cdf_source_lag_versions` during a traffic burst, on the cluster tier's topology (the Temporal
 * server on PostgreSQL, a worker with metrics, Prometheus scraping it). Sources poll every 20 s
 * while a commit lands on each source every 2 s for a minute, so the lag climbs between captures
 * and drops at each one, then settles at 0 when the burst ends.
 */
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { chromium } from 'playwright-core';
import { parseConfig } from '../src/config/load';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { freePort } from '../src/temporal/devServer';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { ROOT, runCdf, writeConfigFile } from '../test/support/cli';
import { ensureClusterBinaries } from '../test/support/cluster/install';
import { startPostgres } from '../test/support/cluster/postgres';
import { startPrometheus } from '../test/support/cluster/prometheus';
import { startTemporalServer } from '../test/support/cluster/temporalServer';
import { eventually } from '../test/support/eventually';
const CHROMIUM_PATH = '/usr/bin/chromium'; // installed by scripts/setup-browser.ts

const say = (message: string) => console.error(`[docs:lag-graph] ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const binaries = ensureClusterBinaries(say);
  const dir = mkdtempSync(join(tmpdir(), 'cdf-lag-graph-'));
  chmodSync(dir, 0o755);
  const postgres = await startPostgres({ bin: binaries.postgresBin, dir: join(dir, 'postgres'), progress: say });
  const stops: (() => Promise<void> | void)[] = [() => postgres.stop()];
  try {
    const temporal = await startTemporalServer({ server: binaries.temporalServer, sqlTool: binaries.temporalSqlTool, postgres, dir: join(dir, 'temporal'), progress: say });
    stops.unshift(() => temporal.stop());
    const metricsPort = await freePort();
    const config = parseConfig({
      temporal: { address: temporal.address, taskQueue: 'cdf-lag-graph' },
      lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
      jobs: { local: { path: join(dir, 'jobs.duckdb') } },
      capture: { pollIntervalSeconds: 20 },
      worker: { metrics: { port: metricsPort, sourceRefreshSeconds: 1 } },
      sources: [
        { name: 'orders', table: 'upstream.orders' },
        { name: 'customers', table: 'upstream.customers' },
      ],
    });
    const configFile = writeConfigFile(config);
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    for (const source of config.sources) await ensureDemoSourceTable(lakehouse, source);
    await lakehouse.close();
    const worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env: { ...process.env, CDF_CONFIG: configFile, TEMPORAL_ADDRESS: temporal.address }, stdio: 'ignore' });
    stops.unshift(() => void worker.kill('SIGTERM'));
    const prometheus = await startPrometheus({ binary: binaries.prometheus, dir: join(dir, 'prometheus'), jobs: { 'cdf-worker': [`127.0.0.1:${metricsPort}`] } });
    stops.unshift(() => prometheus.stop());
    await eventually(() => fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 120_000);
    const applied = await runCdf(['sources', 'apply', '--config', configFile], { TEMPORAL_ADDRESS: temporal.address });
    if (applied.code !== 0) throw new Error(`cdf sources apply failed: ${applied.stderr}`);

    say('burst: a commit on each source every 2 s for 60 s, through the worker that holds the lakehouse');
    await sleep(20_000);
    const connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection });
    for (let i = 0; i < 30; i++) {
      await client.workflow.execute('demoTraffic', {
        workflowId: `lag-graph-traffic-${i}`,
        taskQueue: config.temporal.taskQueue,
        args: [{ plan: { commits: 1, insertsPerCommit: 20, updatesPerCommit: 10, deletesPerCommit: 2, idSpace: 5000, seed: i } }],
      });
      await sleep(2000);
    }
    await connection.close();
    say('burst over: waiting for the sources to catch up');
    await sleep(45_000);

    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    const file = join(ROOT, 'docs', 'prometheus-source-lag.png');
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 760 } });
      const expr = encodeURIComponent('cdf_source_lag_versions');
      await page.goto(`${prometheus.url}/classic/graph?g0.expr=${expr}&g0.tab=0&g0.range_input=3m`);
      await page.waitForSelector('.graph_area svg, .graph svg', { timeout: 30_000 });
      await sleep(1500);
      await page.screenshot({ path: file, fullPage: true });
    } finally {
      await browser.close();
    }
    say(`wrote ${file}`);
  } finally {
    for (const stop of stops) await stop();
  }
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    console.error(`[docs:lag-graph] failed: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
