/**
 * Many sources on one worker: lag, workflow-task timeouts, worker CPU and RSS.
 *
 *   npm run bench:sources -- [--scales 50,200,500] [--poll 5] [--rate 2] [--seconds 90]
 *
 * For each scale: a fresh Temporal dev server; one worker process (scripts/bench-sources-worker.ts:
 * the real worker with its default limits, plus the traffic writer) with that many sources polling
 * every `--poll` seconds; every source workflow started; a warm-up of three poll intervals; then
 * `--rate` commits a second to random sources for `--seconds`, and three more poll intervals to
 * settle. Lag is commit → registry row (captured_at − commit_timestamp) over every row the traffic
 * wrote; timeouts are the WorkflowTaskTimedOut events in every source workflow's history; CPU
 * (cores) and RSS are the worker process's, from /proc, over the traffic window. Prints a table
 * and writes docs/benchmarks/sources.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import { Command } from 'commander';
import { sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { parseConfig } from '../src/config/load';
import { workflowCacheSize, type Config } from '../src/config/schema';
import { Duck } from '../src/lakehouse/local/duck';
import { ensureTemporalCli } from '../src/temporal/cli';
import { startDevServer } from '../src/temporal/devServer';
import { searchAttributeFlags } from '../src/temporal/searchAttributes';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../src/workerProcessSettings';

const options = new Command()
  .option('--scales <list>', 'source counts, comma-separated', '50,200,500')
  .option('--poll <seconds>', 'capture.pollIntervalSeconds', (v) => Number(v), 5)
  .option('--rate <n>', 'upstream commits a second, over all sources', (v) => Number(v), 2)
  .option('--seconds <n>', 'length of the traffic window', (v) => Number(v), 90)
  .parse()
  .opts<{ scales: string; poll: number; rate: number; seconds: number }>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLOCK_TICKS = 100;

interface ProcessSample {
  at: number;
  cpuTicks: number;
  rssMB: number;
}

function sampleProcess(pid: number): ProcessSample | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rssKB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat (11 and 12 after the command).
    return { at: Date.now(), cpuTicks: Number(fields[11]) + Number(fields[12]), rssMB: Math.round(rssKB / 1024) };
  } catch {
    return null;
  }
}

interface ScaleResult {
  sources: number;
  pollIntervalSeconds: number;
  workflowCacheSize: number;
  commitsWritten: number;
  rowsCaptured: number;
  sourcesCaughtUp: number;
  lagMs: { p50: number; p95: number; max: number };
  workflowTaskTimeouts: number;
  workerCpuCores: { mean: number };
  workerRssMB: { peak: number; atEnd: number };
  /** At the end of the traffic, from inside the worker: RSS, the main isolate's heap, memory outside it, DuckDB's buffer manager. */
  workerMemoryAtTrafficEndMB: unknown;
}

async function measureScale(cliPath: string, bundlePath: string, sources: number): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), `cdf-bench-sources-${sources}-`));
  const server = await startDevServer({ cliPath, extraArgs: searchAttributeFlags(), logFile: join(dir, 'dev-server.log') });
  let child: ChildProcess | null = null;
  try {
    const config: Config = parseConfig({
      temporal: { address: server.address, taskQueue: `bench-sources-${sources}`, workflowIdPrefix: 'bench' },
      lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
      jobs: { local: { path: join(dir, 'jobs.duckdb') } },
      sources: Array.from({ length: sources }, (_, i) => ({ name: `s${i + 1}`, table: `upstream.s${i + 1}` })),
      capture: { pollIntervalSeconds: options.poll },
      consumerView: { enabled: false },
    });
    const configPath = join(dir, 'config.json');
    writeFileSync(configPath, JSON.stringify(config));
    // Started as `npm run worker` starts a worker: its V8 flag and malloc setting.
    const worker = spawn(process.execPath, [...WORKER_NODE_FLAGS, '--import', 'tsx', join(__dirname, 'bench-sources-worker.ts'), configPath, bundlePath, String(options.rate), String(options.seconds)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, ...WORKER_ENV },
    });
    child = worker;
    const events: Record<string, unknown>[] = [];
    createInterface({ input: worker.stdout! }).on('line', (line) => {
      if (line.startsWith('{"e":')) events.push(JSON.parse(line) as Record<string, unknown>);
    });
    const waitFor = async (e: string, timeoutMs: number) => {
      for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
        const found = events.find((event) => event.e === e);
        if (found) return found;
        if (worker.exitCode !== null) throw new Error(`the bench worker exited with ${worker.exitCode}`);
      }
      throw new Error(`the bench worker did not report ${e} within ${timeoutMs / 1000} s`);
    };
    await waitFor('ready', 300_000);
    const connection = await Connection.connect({ address: server.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    process.stderr.write(`[bench] ${sources} sources: starting their workflows ...\n`);
    await startSourceWorkflows(client, config);
    await sleep(3 * options.poll * 1000);

    process.stderr.write(`[bench] ${sources} sources: traffic for ${options.seconds} s ...\n`);
    const samples: ProcessSample[] = [];
    const sampler = setInterval(() => {
      const sample = sampleProcess(worker.pid!);
      if (sample) samples.push(sample);
    }, 1000);
    const trafficStartedAt = new Date();
    worker.stdin!.write('traffic\n');
    const done = await waitFor('traffic-done', (options.seconds + 120) * 1000);
    clearInterval(sampler);
    await sleep(3 * options.poll * 1000);
    const atEnd = sampleProcess(worker.pid!);

    process.stderr.write(`[bench] ${sources} sources: reading histories ...\n`);
    let timeouts = 0;
    const ids = config.sources.map((s) => sourceWorkflowId(config, s.name));
    for (let i = 0; i < ids.length; i += 20) {
      const histories = await Promise.all(ids.slice(i, i + 20).map((id) => client.workflow.getHandle(id).fetchHistory()));
      for (const history of histories) timeouts += (history.events ?? []).filter((event) => event.workflowTaskTimedOutEventAttributes).length;
    }
    for (const id of ids) await client.workflow.getHandle(id).terminate('benchmark done').catch(() => undefined);
    await connection.close();
    const exited = new Promise((resolveExit) => worker.once('exit', resolveExit));
    worker.kill('SIGTERM');
    await exited;
    child = null;

    const db = await Duck.open(config.lakehouse.local.path);
    const [lag] = await db.all<{ p50: number; p95: number; max: number; n: bigint }>(
      `SELECT quantile_cont(ms, 0.5) AS p50, quantile_cont(ms, 0.95) AS p95, max(ms) AS max, count(*) AS n
       FROM (SELECT (epoch_ms(captured_at) - epoch_ms(commit_timestamp))::DOUBLE AS ms FROM ${config.tables.registry} WHERE commit_timestamp >= ?::TIMESTAMP)`,
      [trafficStartedAt.toISOString()],
    );
    const [caughtUp] = await db.all<{ n: bigint }>(
      `SELECT count(*) AS n FROM ${config.tables.offsets} o JOIN (SELECT table_name, max(version) AS latest FROM _delta.commits GROUP BY table_name) c ON c.table_name = o.source_table WHERE o.last_version = c.latest`,
    );
    await db.close();
    const cpuSeconds = samples.length > 1 ? (samples.at(-1)!.cpuTicks - samples[0]!.cpuTicks) / CLOCK_TICKS : 0;
    const wallSeconds = samples.length > 1 ? (samples.at(-1)!.at - samples[0]!.at) / 1000 : 1;
    return {
      sources,
      pollIntervalSeconds: options.poll,
      workflowCacheSize: workflowCacheSize(sources, config.worker.maxCachedWorkflows),
      commitsWritten: Number(done.commits),
      rowsCaptured: Number(lag!.n),
      sourcesCaughtUp: Number(caughtUp!.n),
      lagMs: { p50: Math.round(lag!.p50), p95: Math.round(lag!.p95), max: Math.round(lag!.max) },
      workflowTaskTimeouts: timeouts,
      workerCpuCores: { mean: Math.round((cpuSeconds / wallSeconds) * 100) / 100 },
      workerRssMB: { peak: Math.max(...samples.map((s) => s.rssMB)), atEnd: atEnd?.rssMB ?? NaN },
      workerMemoryAtTrafficEndMB: done.memoryMB,
    };
  } finally {
    child?.kill('SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const cliPath = await ensureTemporalCli();
  const bundleDir = mkdtempSync(join(tmpdir(), 'cdf-bench-bundle-'));
  const bundlePath = join(bundleDir, 'workflow-bundle.js');
  await writeWorkflowBundle(bundlePath);
  const results: ScaleResult[] = [];
  try {
    for (const scale of options.scales.split(',').map(Number)) {
      const result = await measureScale(cliPath, bundlePath, scale);
      results.push(result);
      console.log(
        `${String(scale).padStart(4)} sources @ ${options.poll} s: lag p50 ${result.lagMs.p50} ms, p95 ${result.lagMs.p95} ms, max ${result.lagMs.max} ms; ` +
          `${result.workflowTaskTimeouts} workflow-task timeouts; worker ${result.workerCpuCores.mean} cores, RSS peak ${result.workerRssMB.peak} MB; ` +
          `${result.sourcesCaughtUp}/${scale} sources caught up, ${result.rowsCaptured} rows from ${result.commitsWritten} commits`,
      );
    }
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
  }
  const summary = {
    measuredAt: new Date().toISOString(),
    machine: '2 cores, 24 GiB (polyglot); Temporal dev server (temporal CLI 1.5.1, SQLite in memory) on the same machine as the worker',
    settings: { pollIntervalSeconds: options.poll, commitsPerSecond: options.rate, trafficSeconds: options.seconds, worker: 'defaults (cache sized from the sources)', lakehouse: 'embedded DuckDB, memoryLimitMB 128' },
    targets: { sources: 500, lagP95Ms: 2 * options.poll * 1000, workflowTaskTimeouts: 0, workerRssMB: 600 },
    results,
  };
  const file = resolve(__dirname, '..', 'docs', 'benchmarks', 'sources.json');
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`written to ${file}`);
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
