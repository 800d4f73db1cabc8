import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { PipelineMetrics } from '../../src/metrics/pipelineMetrics';
import { startMetricsServer } from '../../src/metrics/server';
import { freePort } from '../../src/temporal/devServer';
import type { SourceStatus } from '../../src/workflows/messages';
import { ROOT, runCdf, runProcess, writeConfigFile } from '../support/cli';
import { testConfig } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';
import { eventually } from '../support/eventually';

/**
 * `npm run worker` with `worker.metrics.port`: /healthz and a Prometheus /metrics with the
 * pipeline's metrics and the SDK's own, read over real HTTP from a real worker process and
 * checked against the status query and the fan-in's summary.
 */
describe('the worker\'s /metrics and /healthz', () => {
  let config: Config;
  let configFile: string;
  let base: string;
  let worker: ChildProcess;
  let log = '';
  const cdf = (...args: string[]) => runCdf([...args, '--config', configFile]);

  beforeAll(async () => {
    const port = await freePort();
    const plain = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }] });
    config = parseConfig({ ...plain, worker: { ...plain.worker, metrics: { port, sourceRefreshSeconds: 1 } } });
    configFile = writeConfigFile(config);
    base = `http://127.0.0.1:${port}`;
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    for (const [index, source] of config.sources.entries()) await writeRandomTraffic(lakehouse, source, { commits: 3, maxOpsPerCommit: 6, idSpace: 60, seed: 81 + index });
    await lakehouse.close();
    worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], {
      cwd: ROOT,
      env: { ...process.env, CDF_CONFIG: configFile, TEMPORAL_ADDRESS: process.env.CDF_TEST_TEMPORAL_ADDRESS },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (chunk) => (log += chunk));
    worker.stderr!.on('data', (chunk) => (log += chunk));
    await eventually(() => fetch(`${base}/healthz`).then((r) => (r.status === 200 ? true : undefined), () => undefined), 60_000, () => log);
  });

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((resolve) => worker.once('exit', resolve));
    }
  });

  it('/healthz answers 200 while the worker polls', async () => {
    const response = await fetch(`${base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok: polling\n');
  });

  it('/metrics shows each source\'s offset, lag, state and registry rows as the status query gives them', async () => {
    expect((await cdf('sources', 'apply')).code).toBe(0);
    const orders = await eventually(async () => {
      const result = await cdf('status', 'orders', '--json');
      const status = result.code === 0 ? (JSON.parse(result.stdout) as SourceStatus) : null;
      return status && status.latestVersion !== null && status.offsetVersion === status.latestVersion ? status : undefined;
    }, 60_000);
    // The gauges follow within sourceRefreshSeconds (1 s here).
    const metrics = await eventually(async () => {
      const read = await scrape(base);
      return read.get('cdf_source_offset_version{source="orders"}') === orders.offsetVersion ? read : undefined;
    }, 15_000);
    expect(metrics.get('cdf_source_latest_version{source="orders"}')).toBe(orders.latestVersion);
    expect(metrics.get('cdf_source_lag_versions{source="orders"}')).toBe(0);
    expect(metrics.get('cdf_source_lag_seconds{source="orders"}')).toBe(0);
    expect(metrics.get('cdf_source_state{source="orders",state="capturing"}')).toBe(1);
    expect(metrics.get('cdf_source_state{source="orders",state="blocked"}')).toBe(0);
    expect(metrics.get('cdf_source_registry_rows_appended_total{source="orders"}')).toBe(orders.totals.registryRowsInserted);
    expect(metrics.get('cdf_source_ranges_captured_total{source="orders"}')).toBe(orders.totals.ranges);
  });

  it('/metrics stamps each source\'s last status read, so a dashboard can tell fresh gauges from stale ones', async () => {
    const stamp = (read: Map<string, number>) => read.get('cdf_source_status_read_timestamp_seconds{source="orders"}')!;
    const before = await scrape(base);
    // Read every second here (sourceRefreshSeconds 1): two scrapes 2.5 s apart see it move.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = await scrape(base);
    expect(stamp(after)).toBeGreaterThan(stamp(before));
    expect(Date.now() / 1000 - stamp(after)).toBeLessThan(3);
    expect(after.get('cdf_source_status_read_failures_total{source="orders"}')).toBe(0);
  });

  it('when the status cannot be read, the gauges keep their values, the read timestamp stops and the failures are counted', async () => {
    const connection = await Connection.connect({ address: process.env.CDF_TEST_TEMPORAL_ADDRESS! });
    const own = parseConfig({ ...config, worker: { ...config.worker, metrics: { port: await freePort(), sourceRefreshSeconds: 1 } } });
    const metrics = new PipelineMetrics(own.sources.map((source) => source.name));
    const server = await startMetricsServer({ config: own, metrics, coreMetricsAddress: null, client: new Client({ connection, namespace: own.temporal.namespace }), ready: () => true });
    try {
      const url = `http://${server.address}`;
      const fresh = await eventually(async () => {
        const read = await scrape(url);
        return read.has('cdf_source_offset_version{source="orders"}') ? read : undefined;
      }, 15_000);
      // The connection goes away as a network or a server would: every read from now on fails.
      await connection.close();
      const failures = (atLeast: number) =>
        eventually(async () => {
          const read = await scrape(url);
          return read.get('cdf_source_status_read_failures_total{source="orders"}')! >= atLeast ? read : undefined;
        }, 15_000);
      // Taken once a read has failed: a read in flight when the connection closed may still have landed.
      const firstFailed = await failures(1);
      const stale = await failures(3);
      expect(stale.get('cdf_source_status_read_timestamp_seconds{source="orders"}')).toBe(firstFailed.get('cdf_source_status_read_timestamp_seconds{source="orders"}'));
      expect(stale.get('cdf_source_offset_version{source="orders"}')).toBe(fresh.get('cdf_source_offset_version{source="orders"}'));
      expect(stale.get('cdf_source_state{source="orders",state="capturing"}')).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('/metrics counts the fan-in\'s ids, batches and launches as its summary does', async () => {
    const result = await cdf('fan-in', '--wait', '--json');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as { changedIds: number; batches: number; batchesSucceeded: number; launches: number; durationMs: number };
    const metrics = await scrape(base);
    expect(metrics.get('cdf_fan_in_ids_dispatched_total')).toBe(summary.changedIds);
    expect(metrics.get('cdf_fan_in_batches_total')).toBe(summary.batches);
    expect(metrics.get('cdf_batch_attempts_total{outcome="succeeded"}')).toBe(summary.batchesSucceeded);
    expect(metrics.get('cdf_job_launches_total')).toBe(summary.launches);
    expect(metrics.get('cdf_fan_in_runs_committed_total')).toBe(1);
    expect(metrics.get('cdf_batch_duration_seconds_count')).toBe(summary.batchesSucceeded);
    expect(metrics.get('cdf_fan_in_duration_seconds_count')).toBe(1);
    // Timed when the commit returned; the summary when the fan-in ended, after the requeued batches' check.
    const timedMs = metrics.get('cdf_fan_in_duration_seconds_sum')! * 1000;
    expect(timedMs).toBeGreaterThan(0);
    expect(timedMs).toBeLessThanOrEqual(summary.durationMs + 500);
  });

  it('/metrics carries the SDK\'s own worker metrics, and no label holds a run key or an id', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/^temporal_\w+(\{[^}]*task_queue="[^"]+"[^}]*\})? \d/m);
    // Histogram buckets (le) aside, no label value may grow with the data: run keys, batch numbers, ids, run ids.
    const labels = [...text.matchAll(/(\w+)="([^"]*)"/g)].filter((m) => m[1] !== 'le').map((m) => `${m[1]}=${m[2]}`);
    expect(labels.filter((label) => /=(fi-|\d+$|[0-9a-f]{8}-[0-9a-f]{4}-)/.test(label))).toEqual([]);
  });

  it('serves every metric the Grafana dashboard (deploy/grafana) queries', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const served = new Set([...text.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]!));
    const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy', 'grafana', 'dashboards', 'cdf-orchestrator.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const queried = new Set(dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => [...target.expr.matchAll(/\b((?:cdf|temporal)_\w+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')))));
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((name) => !served.has(name))).toEqual([]);
  });

  it('a source whose workflow ended shows state "not running"', async () => {
    const terminated = await runTemporal(['workflow', 'terminate', '-w', `${config.temporal.workflowIdPrefix}-source-customers`, '--reason', 'test', '--address', process.env.CDF_TEST_TEMPORAL_ADDRESS!]);
    expect(terminated).toBe(0);
    const metrics = await eventually(async () => {
      const read = await scrape(base);
      return read.get('cdf_source_state{source="customers",state="not running"}') === 1 ? read : undefined;
    }, 15_000);
    expect(metrics.get('cdf_source_state{source="customers",state="capturing"}')).toBe(0);
    expect(metrics.has('cdf_source_offset_version{source="customers"}')).toBe(false);
  });
});

/** A Prometheus text page as series → value (`name{labels}` exactly as exposed). */
async function scrape(base: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (match) series.set(match[1]!, Number(match[2]));
  }
  return series;
}

async function runTemporal(args: string[]): Promise<number | null> {
  return (await runProcess(process.env.TEMPORAL_CLI_PATH!, args)).code;
}
