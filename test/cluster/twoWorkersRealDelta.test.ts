import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import { fanInWorkflowId } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import { freePort } from '../../src/temporal/devServer';
import type { FanInSummary } from '../../src/workflows/fanIn';
import type { SourceStatus } from '../../src/workflows/messages';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema, useThriftServer, writeSparkTraffic } from '../realDelta/support';
import { ROOT, runCdf, writeConfigFile } from '../support/cli';
import { ensureClusterBinaries } from '../support/cluster/install';
import { startPostgres, type Postgres } from '../support/cluster/postgres';
import { startPrometheus, type Prometheus } from '../support/cluster/prometheus';
import { startTemporalServer, type TemporalServer } from '../support/cluster/temporalServer';
import { eventually, stopChild } from '../support/eventually';
import { fetchTrusting } from '../support/trustingFetch';
import { ensureRealDelta } from '../support/realDelta/install';
import { startThriftServer, type ThriftServer } from '../support/realDelta/thriftServer';

/*
 * The production topology as processes: the Temporal server (1.29.1, built from source) on
 * PostgreSQL, two worker processes on one task queue sharing the lakehouse (Delta tables on a Spark
 * Thrift Server, through the product's Databricks adapter) and one job launcher (a Jobs API 2.2
 * emulator process whose runs MERGE each batch into the target on the same Spark), and Prometheus
 * scraping both workers. One worker is SIGKILLed in the middle of a fan-in; the other must finish
 * it, with every changed id dispatched in exactly one batch and every batch run successfully once.
 */
interface EmulatedRun {
  runId: number;
  idempotencyToken?: string;
  jobParameters: Record<string, string>;
  code: string;
  message?: string;
  state: string;
}

describe('two workers on a PostgreSQL-backed Temporal server and real Delta, one killed in a fan-in', () => {
  const say = (message: string) => process.stderr.write(`[cluster] ${message}\n`);
  const schema = uniqueSchema('cluster');
  const sources = ['orders', 'customers', 'shipments'].map((name) => ({ name, table: `${schema}_up.${name}` }));
  let thrift: ThriftServer;
  let postgres: Postgres;
  let temporal: TemporalServer;
  let prometheus: Prometheus;
  let emulator: ChildProcess;
  let emulatorUrl: string;
  const workers: { child: ChildProcess; metricsPort: number; log: string }[] = [];
  let config: Config;
  let dir: string | undefined;
  let configFile: string;
  let spark: Spark;
  let env: NodeJS.ProcessEnv;
  let summary: FanInSummary;
  let killedAfterSucceeded = 0;
  let victim = 0;
  const cdf = (...args: string[]) => runCdf([...args, '--config', configFile], { TEMPORAL_ADDRESS: temporal.address });
  let emulatorFetch: typeof fetch;
  const emulatedRuns = async () => (await (await emulatorFetch(`${emulatorUrl}/fake/runs`)).json()) as EmulatedRun[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cdf-cluster2-'));
    chmodSync(dir, 0o755);
    const installation = ensureRealDelta(say, { quiet: true });
    thrift = await startThriftServer({ installation, workDir: join(dir, 'spark'), progress: say });
    useThriftServer(thrift);
    const binaries = ensureClusterBinaries(say);
    postgres = await startPostgres({ bin: binaries.postgresBin, dir: join(dir, 'postgres'), progress: say });
    temporal = await startTemporalServer({ server: binaries.temporalServer, sqlTool: binaries.temporalSqlTool, postgres, dir: join(dir, 'temporal'), progress: say });

    config = realDeltaConfig(schema, sources, {
      temporal: { address: temporal.address, taskQueue: 'cdf-cluster-delta' },
      capture: { maxVersionsPerRange: 3, pollIntervalSeconds: 3600 },
      fanIn: { batchSize: 5, concurrency: 2, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1 },
      worker: { shutdownGraceSeconds: 5, heartbeatTimeoutSeconds: 5, metrics: { port: 1, sourceRefreshSeconds: 1 } },
    });
    configFile = writeConfigFile(config);
    spark = new Spark(config);
    const lakehouse = realDeltaLakehouse(config);
    await lakehouse.ensurePipelineTables(); // once, before two workers would race to create them
    await lakehouse.close();
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    for (const [index, source] of sources.entries()) await writeSparkTraffic(spark, config, source.table, 7000 + index);

    const deltaEnv = { CDF_TEST_DELTA_HOST: `${thrift.host}:${thrift.port}`, CDF_TEST_DELTA_HTTP_PATH: thrift.httpPath, CDF_TEST_DELTA_CERT: thrift.certificatePem, CDF_TEST_DELTA_WAREHOUSE: thrift.warehouseDir, TZ: 'UTC' };
    emulator = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'support', 'cluster', 'jobsEmulator.ts')], { cwd: ROOT, env: { ...process.env, ...deltaEnv, CDF_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'inherit'] });
    const announced = JSON.parse(await new Promise<string>((resolve, reject) => {
      createInterface({ input: emulator.stdout! }).once('line', resolve);
      emulator.once('exit', (code) => reject(new Error(`the Jobs API emulator exited (${code})`)));
    })) as { url: string; caFile: string; pat: string; jobId: number };
    emulatorUrl = announced.url;
    emulatorFetch = fetchTrusting(announced.caFile);
    env = { ...process.env, ...deltaEnv, TEMPORAL_ADDRESS: temporal.address, CDF_TEST_JOBS_URL: announced.url, CDF_TEST_JOBS_CA_FILE: announced.caFile, CDF_TEST_JOBS_PAT: announced.pat, CDF_TEST_JOBS_JOB_ID: String(announced.jobId) };
    for (let i = 0; i < 2; i++) {
      const metricsPort = await freePort();
      const file = writeConfigFile({ ...config, worker: { ...config.worker, metrics: { ...config.worker.metrics, port: metricsPort } } });
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'support', 'cluster', 'realDeltaWorker.ts')], { cwd: ROOT, env: { ...env, CDF_CONFIG: file }, stdio: ['ignore', 'pipe', 'pipe'] });
      const worker = { child, metricsPort, log: '' };
      child.stdout!.on('data', (chunk) => (worker.log += chunk));
      child.stderr!.on('data', (chunk) => (worker.log += chunk));
      workers.push(worker);
    }
    for (const worker of workers) {
      await eventually(() => fetch(`http://127.0.0.1:${worker.metricsPort}/healthz`).then((r) => (r.ok ? true : undefined), () => undefined), 120_000, () => worker.log);
    }
    prometheus = await startPrometheus({ binary: binaries.prometheus, dir: join(dir, 'prometheus'), jobs: { 'cdf-worker': workers.map((w) => `127.0.0.1:${w.metricsPort}`) } });
    say('topology up: PostgreSQL, Temporal server, Spark Thrift Server, Jobs API emulator, two workers, Prometheus');
  }, 1_200_000);

  afterAll(async () => {
    // Each stop on its own: one that fails must not leave the others running.
    const stops: (() => unknown)[] = [
      ...workers.map(({ child }) => () => stopChild(child, 'SIGKILL')),
      () => emulator && stopChild(emulator, 'SIGTERM'),
      () => prometheus?.stop(),
      () => spark?.close(),
      () => temporal?.stop(),
      () => postgres?.stop(),
      () => thrift?.stop(),
      // The servers' data and logs, about 90 MB a run; CDF_KEEP_TEST_DIRS=1 keeps them to read.
      () => dir && !process.env.CDF_KEEP_TEST_DIRS && rmSync(dir, { recursive: true, force: true }),
    ];
    const failures: unknown[] = [];
    for (const stop of stops) await Promise.resolve().then(stop).catch((error: unknown) => failures.push(error));
    if (failures.length > 0) throw failures[0];
  });

  it('cdf sources apply starts the sources, and the two workers capture every change Spark reads from the feeds', async () => {
    const applied = await cdf('sources', 'apply');
    expect(applied.code).toBe(0);
    for (const source of sources) {
      const latest = await spark.latestVersion(source.table);
      await eventually(async () => {
        const result = await cdf('status', source.name, '--json');
        const status = result.code === 0 ? (JSON.parse(result.stdout) as SourceStatus) : null;
        return status?.offsetVersion === latest ? status : undefined;
      }, 180_000);
    }
    const expected = new Set<string>();
    for (const source of sources) {
      for (const row of await spark.sql(`SELECT DISTINCT uts_id, _commit_version AS v FROM table_changes('${source.table}', 1, ${await spark.latestVersion(source.table)}) WHERE uts_id IS NOT NULL`)) {
        expected.add(`${source.name}|${row.uts_id}|${row.v}`);
      }
    }
    const registered = (await spark.sql(`SELECT source, uts_id, commit_version FROM ${config.tables.registry}`)).map((r) => `${r.source}|${r.uts_id}|${r.commit_version}`);
    expect(registered.length).toBe(expected.size);
    expect(new Set(registered)).toEqual(expected);
  });

  it('a fan-in survives the SIGKILL of one worker in its middle: the other finishes it', async () => {
    const started = await cdf('fan-in');
    expect(started.code).toBe(0);
    const connection = await Connection.connect({ address: temporal.address });
    try {
      const handle = new Client({ connection }).workflow.getHandle(fanInWorkflowId(config));
      // Killed once some batches ran and before all did: the worker running one of the fan-in's activities right then.
      [victim, killedAfterSucceeded] = await eventually(async () => {
        const succeeded = (await emulatedRuns()).filter((run) => run.state === 'TERMINATED' && run.code === 'SUCCESS').length;
        if (succeeded < 2) return undefined;
        const identities = ((await handle.describe()).raw.pendingActivities ?? []).map((activity) => activity.lastWorkerIdentity ?? '');
        const index = workers.findIndex((worker) => identities.some((identity) => identity.startsWith(`${worker.child.pid}@`)));
        return index >= 0 ? ([index, succeeded] as const) : undefined;
      }, 180_000);
      workers[victim]!.child.kill('SIGKILL');
      say(`worker ${victim + 1} killed while running a fan-in activity, after ${killedAfterSucceeded} successful batch runs`);
      summary = await handle.result();
    } finally {
      await connection.close();
    }
    expect(summary).toMatchObject({ outcome: 'dispatched', committed: true, batchesParked: 0 });
    expect(summary.batchesSucceeded).toBe(summary.batches);
    expect(killedAfterSucceeded).toBeLessThan(summary.batches);
    expect(workers[1 - victim]!.child.exitCode).toBeNull();
  });

  it('dispatched every changed id in exactly one batch, and ran every batch successfully exactly once', async () => {
    // Two batches' MERGEs into the one target can conflict on open-source Delta (no row-level
    // concurrency); the loser's run fails and the batch is relaunched, which is the recovery
    // under test, not a second success.
    const changed = (await spark.sql(`SELECT DISTINCT uts_id FROM ${config.tables.registry}`)).map((r) => r.uts_id as string).sort();
    const batched = await spark.sql(`SELECT uts_id, count(*) AS n FROM ${config.tables.batches} WHERE run_key = '${summary.runKey}' GROUP BY uts_id`);
    expect(batched.map((r) => r.uts_id as string).sort()).toEqual(changed);
    expect(batched.filter((r) => Number(r.n) !== 1)).toEqual([]);
    expect(summary.changedIds).toBe(changed.length);

    const runs = (await emulatedRuns()).filter((run) => run.jobParameters.cdf_run_key === summary.runKey);
    const successes = new Map<string, number>();
    for (const run of runs.filter((r) => r.code === 'SUCCESS')) successes.set(run.jobParameters.cdf_batch_number!, (successes.get(run.jobParameters.cdf_batch_number!) ?? 0) + 1);
    expect([...successes.keys()].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: summary.batches }, (_, i) => i + 1));
    expect([...successes.values()].every((n) => n === 1)).toBe(true);
    for (const failed of runs.filter((r) => r.code !== 'SUCCESS')) expect(`${failed.code}: ${failed.message}`).toMatch(/^RUN_EXECUTION_ERROR: Workload failed: .*(DELTA_CONCURRENT|Concurrent|conflict)/i);
  });

  it('leaves the target equal to the master for every dispatched id', async () => {
    const cols = 'uts_id, display_name, score';
    expect(await spark.sql(`SELECT ${cols} FROM ${config.tables.target} ORDER BY uts_id`)).toEqual(await spark.sql(`SELECT ${cols} FROM ${config.tables.master} ORDER BY uts_id`));
  });

  it('Prometheus shows the killed worker down, the other up, and the source gauges and capture counts of the oracle', async () => {
    const query = (promql: string) => prometheus.query(promql);
    const up = await eventually(async () => {
      const series = await query('up{job="cdf-worker"}');
      return series.length === 2 && series.some((s) => s.value === 0) ? series : undefined;
    }, 30_000);
    expect(Object.fromEntries(up.map((s) => [s.metric.instance, s.value]))).toEqual({ [`127.0.0.1:${workers[victim]!.metricsPort}`]: 0, [`127.0.0.1:${workers[1 - victim]!.metricsPort}`]: 1 });
    for (const source of sources) {
      const latest = await spark.latestVersion(source.table);
      expect((await query(`max by (source) (cdf_source_offset_version{source="${source.name}"})`)).map((s) => s.value)).toEqual([latest]);
      // Each worker counts what it captured; the killed one's series stay in Prometheus's history.
      const rows = Number((await spark.sql(`SELECT count(*) AS n FROM ${config.tables.registry} WHERE source = '${source.name}'`))[0]!.n);
      expect((await query(`sum(max_over_time(cdf_source_registry_rows_appended_total{source="${source.name}"}[30m]))`)).map((s) => s.value)).toEqual([rows]);
    }
  });
});
