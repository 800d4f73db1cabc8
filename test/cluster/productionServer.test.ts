import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { freePort } from '../../src/temporal/devServer';
import type { FanInSummary } from '../../src/workflows/fanIn';
import type { SourceStatus } from '../../src/workflows/messages';
import { ROOT, runCdf, writeConfigFile } from '../support/cli';
import { ensureClusterBinaries } from '../support/cluster/install';
import { startPostgres, type Postgres } from '../support/cluster/postgres';
import { startPrometheus, type Prometheus } from '../support/cluster/prometheus';
import { startTemporalServer, type TemporalServer } from '../support/cluster/temporalServer';
import { eventually, stopChild } from '../support/eventually';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/*
 * The production start on a production Temporal server: the server built from source (1.29.1, the
 * compose file's version) on PostgreSQL with its schema set up by its own SQL tool, Prometheus
 * scraping the worker, and the documented start (`npm run worker`, `cdf sources apply`, `cdf
 * fan-in`) as separate processes. What differs from the dev server is what is exercised: a
 * namespace without the pipeline's search attributes, SQL visibility answering the list queries
 * on them, and metrics read back through Prometheus's own HTTP API. One worker: the local DuckDB
 * lakehouse is single-process (two workers on a shared lakehouse are not run here yet).
 */
describe('the pipeline on a Temporal server backed by PostgreSQL, scraped by Prometheus', () => {
  const say = (message: string) => process.stderr.write(`[cluster] ${message}\n`);
  let postgres: Postgres;
  let temporal: TemporalServer;
  let prometheus: Prometheus;
  let worker: ChildProcess;
  let config: Config;
  let dir: string | undefined;
  let configFile: string;
  let log = '';
  const written: WrittenChange[] = [];
  const cdf = (...args: string[]) => runCdf([...args, '--config', configFile], { TEMPORAL_ADDRESS: temporal.address });

  beforeAll(async () => {
    const binaries = ensureClusterBinaries(say);
    dir = mkdtempSync(join(tmpdir(), 'cdf-cluster-'));
    chmodSync(dir, 0o755); // PostgreSQL runs as the postgres user and must reach its folder
    postgres = await startPostgres({ bin: binaries.postgresBin, dir: join(dir, 'postgres'), progress: say });
    temporal = await startTemporalServer({ server: binaries.temporalServer, sqlTool: binaries.temporalSqlTool, postgres, dir: join(dir, 'temporal'), progress: say });
    const metricsPort = await freePort();
    config = parseConfig({
      temporal: { address: temporal.address, taskQueue: 'cdf-cluster' },
      lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
      jobs: { local: { path: join(dir, 'jobs.duckdb') } },
      capture: { pollIntervalSeconds: 2 },
      fanIn: { batchSize: 25, jobPollIntervalSeconds: 1 },
      worker: { metrics: { port: metricsPort, sourceRefreshSeconds: 1 } },
      sources: [
        { name: 'orders', table: 'upstream.orders' },
        { name: 'customers', table: 'upstream.customers' },
      ],
    });
    configFile = writeConfigFile(config);
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    for (const [index, source] of config.sources.entries()) written.push(...(await writeRandomTraffic(lakehouse, source, { commits: 4, maxOpsPerCommit: 12, idSpace: 80, seed: 301 + index })));
    await lakehouse.close();
    worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env: { ...process.env, CDF_CONFIG: configFile, TEMPORAL_ADDRESS: temporal.address }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (chunk) => (log += chunk));
    worker.stderr!.on('data', (chunk) => (log += chunk));
    prometheus = await startPrometheus({ binary: binaries.prometheus, dir: join(dir, 'prometheus'), jobs: { 'cdf-worker': [`127.0.0.1:${metricsPort}`], temporal: [temporal.metricsAddress] } });
    await eventually(() => fetch(`http://127.0.0.1:${metricsPort}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 120_000, () => log);
  }, 900_000);

  afterAll(async () => {
    try {
      if (worker) await stopChild(worker, 'SIGTERM');
      await prometheus?.stop();
      await temporal?.stop();
      postgres?.stop();
    } finally {
      // The servers' data and logs, about 70 MB a run; CDF_KEEP_TEST_DIRS=1 keeps them to read.
      if (dir && !process.env.CDF_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the worker registers the search attributes the fresh namespace lacks', async () => {
    expect(log).toContain('"msg":"search attributes registered"');
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(['CdfSource', 'CdfState', 'CdfLastVersion', 'CdfFanInOutcome', 'CdfDispatchedIds', 'CdfParkedBatches']));
    } finally {
      await connection.close();
    }
  });

  it('cdf sources apply starts both sources, which capture every change the traffic wrote', async () => {
    const applied = await cdf('sources', 'apply');
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    for (const source of config.sources) {
      const status = await eventually(async () => {
        const result = await cdf('status', source.name, '--json');
        const parsed = result.code === 0 ? (JSON.parse(result.stdout) as SourceStatus) : null;
        return parsed && parsed.latestVersion !== null && parsed.offsetVersion === parsed.latestVersion ? parsed : undefined;
      }, 90_000, () => log);
      // One registry row per (id, version) written: the traffic writes each id at most once per commit.
      const mine = written.filter((w) => w.source === source.name);
      expect(status.offsetVersion).toBe(Math.max(...mine.map((w) => w.version)));
      expect(status.totals.registryRowsInserted).toBe(new Set(mine.map((w) => `${w.utsId}|${w.version}`)).size);
    }
  });

  it('SQL visibility finds each source workflow by its CdfSource search attribute', async () => {
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const client = new Client({ connection });
      for (const source of config.sources) {
        const found = await eventually(async () => {
          const ids: string[] = [];
          for await (const execution of client.workflow.list({ query: `CdfSource = "${source.name}" AND ExecutionStatus = "Running"` })) ids.push(execution.workflowId);
          return ids.length > 0 ? ids : undefined;
        }, 30_000);
        expect(found).toEqual([`cdf-source-${source.name}`]);
      }
    } finally {
      await connection.close();
    }
  });

  it('a fan-in dispatches every changed id once, and Prometheus\'s API gives the counts the oracle expects', async () => {
    const result = await cdf('fan-in', '--wait', '--json');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as FanInSummary;
    const changedIds = new Set(written.map((w) => w.utsId)).size;
    expect(summary).toMatchObject({ changedIds, batches: Math.ceil(changedIds / 25), batchesParked: 0, committed: true });

    const value = async (promql: string) => (await prometheus.query(promql)).map((series) => series.value);
    // A scrape taken mid-fan-in (ids snapshotted, launches still running) is a valid sample: wait
    // for one taken after the last launch rather than for the first counter to reach its value.
    await eventually(async () => ((await value('sum(cdf_job_launches_total)'))[0] === summary.batches ? true : undefined), 30_000);
    expect(await value('sum(cdf_fan_in_ids_dispatched_total)')).toEqual([changedIds]);
    expect(await value('sum(cdf_fan_in_batches_total)')).toEqual([summary.batches]);
    for (const source of config.sources) {
      const rows = written.filter((w) => w.source === source.name).length;
      const latest = Math.max(...written.filter((w) => w.source === source.name).map((w) => w.version));
      expect(await value(`sum(cdf_source_registry_rows_appended_total{source="${source.name}"})`)).toEqual([rows]);
      expect(await value(`max by (source) (cdf_source_offset_version{source="${source.name}"})`)).toEqual([latest]);
      expect(await value(`max by (source) (cdf_source_lag_versions{source="${source.name}"})`)).toEqual([0]);
    }
    // The SDK's own metrics come through the same scrape, and the server's own through its endpoint.
    expect((await prometheus.query('temporal_worker_start_total')).length).toBeGreaterThan(0);
    const serverUp = await eventually(async () => {
      const series = await prometheus.query('up{job="temporal"}');
      return series.length > 0 ? series.map((s) => s.value) : undefined;
    }, 15_000);
    expect(serverUp).toEqual([1]);
  });
});
