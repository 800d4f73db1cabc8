/**
 * A fan-in of any size: `npm run bench:fanin -- [--ids 10000000] [--sources 5] [--concurrency 50]`.
 *
 * Fills the registry of a fresh local lakehouse with `--ids` distinct changed ids over `--sources`
 * sources (rows written straight into the registry, as capture would have left them: this measures
 * the fan-in, not capture), starts a dev server and the real worker in a process of its own (local
 * runner, no-op downstream job, the default batch size), runs one fan-in to completion, checks
 * that every id landed in exactly one batch and every batch succeeded, and reports wall time, the
 * largest history of any of the fan-in's executions (events and bytes), the largest payload and
 * the worker's peak RSS. Prints the figures and writes docs/benchmarks/fan-in-scale.json.
 * The worker prints where its memory is every 20 s; CDF_BENCH_FORCE_GC=1 runs it with --expose-gc
 * and collects before each report (to tell garbage from what is held).
 */
import { spawn } from 'node:child_process';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../src/workerProcessSettings';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { Command } from 'commander';
import { fanInWorkflowId, runFanIn } from '../src/client/operations';
import { configSchema } from '../src/config/schema';
import { parseConfig } from '../src/config/load';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { quoteIdent } from '../src/lakehouse/local/duck';
import { ensureTemporalCli } from '../src/temporal/cli';
import { startDevServer } from '../src/temporal/devServer';
import { searchAttributeFlags } from '../src/temporal/searchAttributes';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { payloadSizes } from '../test/support/history';

const options = new Command()
  .option('--ids <n>', 'distinct changed ids to dispatch', (v) => Number(v), 10_000_000)
  .option('--sources <n>', 'sources the ids are spread over', (v) => Number(v), 5)
  .option('--concurrency <n>', 'fanIn.concurrency (downstream runs in flight)', (v) => Number(v), 50)
  .option('--duckdb-memory-mb <n>', 'lakehouse.local.memoryLimitMB (default: the config default)', (v) => Number(v))
  .option('--out <file>', 'where to write the figures', resolve(__dirname, '..', 'docs', 'benchmarks', 'fan-in-scale.json'))
  .parse()
  .opts<{ ids: number; sources: number; concurrency: number; duckdbMemoryMb?: number; out: string }>();

const say = (text: string) => process.stderr.write(`[bench:fanin] ${text}\n`);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-bench-fanin-'));
  const defaultBatchSize = configSchema.parse({ sources: [{ name: 'x', table: 'a.b' }] }).fanIn.batchSize;
  const server = await startDevServer({ cliPath: await ensureTemporalCli(), extraArgs: searchAttributeFlags() });
  const config = parseConfig({
    temporal: { address: server.address, taskQueue: 'bench-fanin', workflowIdPrefix: 'bench' },
    lakehouse: { local: { path: join(dir, 'lakehouse.duckdb'), ...(options.duckdbMemoryMb ? { memoryLimitMB: options.duckdbMemoryMb } : {}) } },
    jobs: { local: { path: join(dir, 'jobs.duckdb'), maxConcurrentRuns: options.concurrency } },
    sources: Array.from({ length: options.sources }, (_, i) => ({ name: `s${i + 1}`, table: `upstream.t${i + 1}` })),
    fanIn: { concurrency: options.concurrency, jobPollIntervalSeconds: 1 },
    worker: { maxConcurrentActivities: options.concurrency + 4 },
  });
  try {
    say(`filling the registry with ${options.ids.toLocaleString('en-US')} changed ids over ${options.sources} sources ...`);
    const fillStarted = Date.now();
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    const perSource = Math.ceil(options.ids / options.sources);
    for (let s = 0; s < options.sources; s++) {
      const from = s * perSource;
      const to = Math.min(options.ids, from + perSource);
      // Ten commit versions per source; ids are distinct across sources, so the fan-in dispatches exactly --ids.
      await lakehouse.db.run(
        `INSERT INTO ${quoteIdent(config.tables.registry)} (source, table_id, uts_id, change_type, commit_version, commit_timestamp, extra, captured_at)
         SELECT ?, ?, printf('u%010d', i), 'insert', 1 + (i % 10), now()::TIMESTAMP, NULL, now()::TIMESTAMP FROM range(?, ?) r(i)`,
        [`s${s + 1}`, `bench-table-s${s + 1}`, from, to],
      );
      say(`  source s${s + 1}: ${(to - from).toLocaleString('en-US')} ids`);
    }
    await lakehouse.close();
    say(`registry filled in ${((Date.now() - fillStarted) / 1000).toFixed(1)} s`);

    const bundlePath = join(dir, 'workflow-bundle.js');
    await writeWorkflowBundle(bundlePath);
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const worker = spawn(process.execPath, [...WORKER_NODE_FLAGS, ...(process.env.CDF_BENCH_FORCE_GC ? ['--expose-gc'] : []), '--import', 'tsx', resolve(__dirname, 'bench-fanin-worker.ts'), configFile, bundlePath], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...WORKER_ENV } });
    await new Promise<void>((ready, failed) => {
      createInterface({ input: worker.stdout! }).on('line', (line) => line === 'ready' && ready());
      worker.once('exit', (code) => failed(new Error(`the worker exited with code ${code} before it was ready`)));
    });
    const peakRss = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${worker.pid}/status`, 'utf8'))?.[1] ?? NaN) * 1024;

    const connection = await Connection.connect({ address: config.temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    say(`fan-in of ${options.ids.toLocaleString('en-US')} ids at batch size ${defaultBatchSize}, ${options.concurrency} runs in flight ...`);
    const started = Date.now();
    let lastSaid = 0;
    const summary = await runFanIn(client, config, {
      onStatus: (status) => {
        if (Date.now() - lastSaid < 10_000) return;
        lastSaid = Date.now();
        say(`  ${status.phase}: ${status.batchesSucceeded.toLocaleString('en-US')}/${status.batches.toLocaleString('en-US')} batches, execution ${status.execution}, ${((Date.now() - started) / 1000).toFixed(0)} s, worker peak RSS ${(peakRss() / 2 ** 20).toFixed(0)} MB`);
      },
    });
    const wallSeconds = (Date.now() - started) / 1000;
    const workerPeakRssBytes = peakRss();

    say('reading every execution\'s history ...');
    const executions: { runId: string; events: number; bytes: number; maxPayloadBytes: number }[] = [];
    for await (const execution of client.workflow.list({ query: `WorkflowId = "${fanInWorkflowId(config)}"` })) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      executions.push({
        runId: execution.runId,
        events: history.events?.length ?? 0,
        bytes: temporal.api.history.v1.History.encode(history).finish().length,
        maxPayloadBytes: Math.max(0, ...payloadSizes(history)),
      });
    }
    worker.kill('SIGTERM');
    await new Promise((done) => worker.once('exit', done));
    await connection.close();

    // The oracle: straight from the tables, not from the fan-in's own counts.
    const check = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    const [batchRows] = await check.db.all<{ ids: bigint; distinct_ids: bigint }>(
      `SELECT count(*) AS ids, count(DISTINCT uts_id) AS distinct_ids FROM ${quoteIdent(config.tables.batches)} WHERE run_key = ?`,
      [summary.runKey],
    );
    const states = await check.batchStatusCounts(summary.runKey);
    await check.close();

    const result = {
      measuredAt: new Date().toISOString(),
      machine: '2 cores (polyglot), dev server in memory, worker in its own process',
      settings: {
        batchSize: defaultBatchSize,
        concurrency: options.concurrency,
        sources: options.sources,
        jobPollIntervalSeconds: 1,
        duckdbMemoryLimitMB: config.lakehouse.local.memoryLimitMB,
        downstreamJob: 'no-op (local runner)',
      },
      changedIds: summary.changedIds,
      batches: summary.batches,
      batchesSucceeded: states.succeeded ?? 0,
      idsInBatchTable: Number(batchRows!.ids),
      distinctIdsInBatchTable: Number(batchRows!.distinct_ids),
      committed: summary.committed,
      wallSeconds: Math.round(wallSeconds),
      batchesPerSecond: Math.round((summary.batches / wallSeconds) * 10) / 10,
      executions: executions.length,
      largestHistory: { events: Math.max(...executions.map((e) => e.events)), bytes: Math.max(...executions.map((e) => e.bytes)) },
      largestPayloadBytes: Math.max(...executions.map((e) => e.maxPayloadBytes)),
      workerPeakRssMB: Math.round(workerPeakRssBytes / 2 ** 20),
      targets: { largestHistoryEvents: 10_000, workerPeakRssMB: 500, largestPayloadBytes: 64 * 1024 },
    };
    const met =
      result.committed &&
      result.distinctIdsInBatchTable === options.ids &&
      result.idsInBatchTable === options.ids &&
      result.batchesSucceeded === result.batches &&
      result.largestHistory.events <= result.targets.largestHistoryEvents &&
      result.largestPayloadBytes <= result.targets.largestPayloadBytes &&
      result.workerPeakRssMB <= result.targets.workerPeakRssMB;
    console.log(JSON.stringify({ ...result, targetsMet: met }, null, 2));
    writeFileSync(options.out, `${JSON.stringify({ ...result, targetsMet: met }, null, 2)}\n`);
    say(`written to ${options.out}${met ? '' : ' — TARGETS NOT MET'}`);
    if (!met) process.exitCode = 1;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
