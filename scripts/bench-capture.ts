/**
 * Capture throughput on the embedded default: the same capture orchestrated (a source workflow
 * on a Temporal dev server, one worker) and direct (the lakehouse calls the capture activity
 * makes, from a plain loop, no Temporal), on the same DuckDB file.
 *
 *   npm run bench:capture -- [--sizes 1000000,5000000] [--ranges 200] [--runs 3]
 *
 * Datasets, each generated once by a child process (so its memory is not counted):
 * - `--sizes`: one source whose feed holds N change rows in two versions (0.6 N inserts, then
 *   0.2 N updates, two rows each), captured as one range;
 * - `--ranges`: one source with that many one-version commits of 5 inserts, captured with
 *   capture.maxVersionsPerRange = 1, so every range is a round trip.
 * Each run starts from an empty registry and offset. Orchestrated time is the server's, from the
 * workflow's start to the timer its finished cycle starts (describe, then every range); direct
 * time covers the same calls from a plain loop.
 * Peak RSS is this process's (worker, Temporal SDK and DuckDB together, like `npm run worker`),
 * sampled every 20 ms. Prints the medians and writes docs/benchmarks/capture.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { Command } from 'commander';
import { sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { planRanges } from '../src/workflows/ranges';
import { sourceStatusQuery, type SourceStatus } from '../src/workflows/messages';
import { ensureTemporalCli } from '../src/temporal/cli';
import { startDevServer } from '../src/temporal/devServer';
import { searchAttributeFlags } from '../src/temporal/searchAttributes';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { startWorkerOn } from '../test/support/pipeline';

const options = new Command()
  .option('--sizes <list>', 'change rows per large range, comma-separated', '1000000,5000000')
  .option('--ranges <n>', 'one-version ranges in the small-commit dataset', (v) => Number(v), 200)
  .option('--runs <n>', 'runs per measurement (the median is reported)', (v) => Number(v), 3)
  .option('--generate <file>', 'internal: write one dataset to this lakehouse file and exit')
  .option('--dataset <kind>', 'internal: rows:<N> or ranges:<N>')
  .parse()
  .opts<{ sizes: string; ranges: number; runs: number; generate?: string; dataset?: string }>();

const SOURCE = { name: 'bench', table: 'upstream.bench' };
const MEMORY_LIMIT_MB = 128;

/** The child: one dataset into a fresh lakehouse file, through the emulated Delta engine's commits. */
async function generate(file: string, dataset: string): Promise<void> {
  const config = benchConfig('127.0.0.1:1', file, 1);
  const lakehouse = await LocalLakehouse.open(file, config.tables, { memoryLimitMB: 1024 });
  await lakehouse.ensurePipelineTables();
  await ensureDemoSourceTable(lakehouse, config.sources[0]!);
  const [kind, n] = dataset.split(':') as [string, string];
  const size = Number(n);
  if (kind === 'rows') {
    await lakehouse.engine.commit(SOURCE.table, { insert: Math.round(size * 0.6), idSpace: size, seed: 1 });
    await lakehouse.engine.commit(SOURCE.table, { update: Math.round(size * 0.2), seed: 2 });
  } else {
    for (let i = 0; i < size; i++) await lakehouse.engine.commit(SOURCE.table, { insert: 5, idSpace: size * 10, seed: i + 1 });
  }
  await lakehouse.db.run('CHECKPOINT');
  await lakehouse.close();
}

function benchConfig(address: string, file: string, maxVersionsPerRange: number): Config {
  return parseConfig({
    temporal: { address, taskQueue: 'bench-capture', workflowIdPrefix: 'bench' },
    lakehouse: { local: { path: file, memoryLimitMB: MEMORY_LIMIT_MB } },
    jobs: { local: { path: `${file}.jobs` } },
    sources: [SOURCE],
    // One cycle per run: the workflow starts it; the next poll would be an hour later.
    capture: { pollIntervalSeconds: 3600, maxVersionsPerRange },
    consumerView: { enabled: false },
  });
}

interface Measured {
  ms: number;
  peakRssMB: number;
}

/** Runs `work` while sampling this process's RSS. */
async function measured(work: () => Promise<number | void>): Promise<Measured> {
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const started = performance.now();
  const reported = await work();
  const ms = typeof reported === 'number' ? reported : performance.now() - started;
  clearInterval(sampler);
  return { ms: Math.round(ms), peakRssMB: Math.round(Math.max(peak, process.memoryUsage().rss) / 2 ** 20) };
}

async function resetCapture(lakehouse: LocalLakehouse, config: Config): Promise<void> {
  await lakehouse.db.run(`DELETE FROM ${config.tables.registry}`);
  await lakehouse.db.run(`DELETE FROM ${config.tables.offsets}`);
  await lakehouse.db.run('CHECKPOINT');
}

/** Every call the capture makes for one cycle, from a plain loop. */
async function captureDirect(lakehouse: LocalLakehouse, config: Config): Promise<void> {
  const source = config.sources[0]!;
  const described = await lakehouse.describeSource(source);
  const offset = await lakehouse.readOffset(source.name);
  for (const range of planRanges(offset ? offset.lastVersion + 1 : 0, described.latestVersion, config.capture.maxVersionsPerRange)) {
    const appended = await lakehouse.appendRangeToRegistry(source, range, described.tableId);
    await lakehouse.mergeOffset({ source: source.name, table: source.table, tableId: described.tableId, version: range.toVersion, commitTimestamp: appended.toVersionCommitTimestamp, replayGeneration: offset?.replayGeneration ?? 0 });
  }
}

/**
 * Server time from the workflow's start to the timer of its next poll, which the cycle's last
 * workflow task starts: the whole cycle as the server saw it, dispatch of the first task included.
 * (The cycle's own durationMs is workflow time, which stands still while local activities run in
 * one workflow task.)
 */
function cycleWallMs(history: temporal.api.history.v1.IHistory): number {
  const events = history.events ?? [];
  const at = (event: temporal.api.history.v1.IHistoryEvent | undefined) => {
    if (!event?.eventTime) throw new Error('an event without a time in the cycle\'s history');
    return Number(event.eventTime.seconds) * 1000 + (event.eventTime.nanos ?? 0) / 1e6;
  };
  return at(events.find((e) => e.timerStartedEventAttributes)) - at(events[0]);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface DatasetResult {
  dataset: string;
  changeRows: number;
  ranges: number;
  registryRows: number;
  direct: { medianMs: number; runsMs: number[]; peakRssMB: number };
  orchestrated: { medianMs: number; runsMs: number[]; peakRssMB: number };
  ratio: number;
  rowsPerSecondOrchestrated: number;
  overheadPerRangeMs: number;
}

async function measureDataset(address: string, bundlePath: string, dir: string, dataset: string): Promise<DatasetResult> {
  const file = join(dir, `${dataset.replace(':', '-')}.duckdb`);
  process.stderr.write(`[bench] generating ${dataset} ...\n`);
  const child = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--generate', file, '--dataset', dataset], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (child.status !== 0) throw new Error(`generating ${dataset} failed (exit ${child.status})`);
  const config = benchConfig(address, file, dataset.startsWith('ranges') ? 1 : 100);
  const lakehouse = await LocalLakehouse.open(file, config.tables, { memoryLimitMB: MEMORY_LIMIT_MB });
  const feed = await lakehouse.engine.changesRelation(SOURCE.table, 0, (await lakehouse.engine.describe(SOURCE.table)).latestVersion);
  const [{ n: changeRows }] = (await lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${feed.sql}`)) as [{ n: bigint }];
  const pipeline = await startWorkerOn(config, lakehouse, { bundlePath });
  const handle = pipeline.client.workflow.getHandle(sourceWorkflowId(config, SOURCE.name));
  const direct: Measured[] = [];
  const orchestrated: Measured[] = [];
  let ranges = 0;
  let registryRows = 0;
  try {
    for (let run = 1; run <= options.runs; run++) {
      await resetCapture(lakehouse, config);
      direct.push(await measured(() => captureDirect(lakehouse, config)));
      await resetCapture(lakehouse, config);
      orchestrated.push(
        await measured(async () => {
          await startSourceWorkflows(pipeline.client, config);
          for (;;) {
            const status: SourceStatus = await handle.query(sourceStatusQuery);
            if (status.lastCycle) {
              if (status.lastCycle.blocked) throw new Error(`the capture blocked: ${status.lastCycle.blocked.message}`);
              ranges = status.lastCycle.ranges;
              registryRows = status.lastCycle.registryRowsInserted;
              return cycleWallMs(await handle.fetchHistory());
            }
            await sleep(50);
          }
        }),
      );
      await handle.terminate('benchmark run done');
      process.stderr.write(`[bench] ${dataset} run ${run}/${options.runs}: direct ${direct.at(-1)!.ms} ms, orchestrated ${orchestrated.at(-1)!.ms} ms\n`);
    }
  } finally {
    await pipeline.stop();
    rmSync(file, { force: true });
  }
  const directMs = median(direct.map((m) => m.ms));
  const orchestratedMs = median(orchestrated.map((m) => m.ms));
  return {
    dataset,
    changeRows: Number(changeRows),
    ranges,
    registryRows,
    direct: { medianMs: directMs, runsMs: direct.map((m) => m.ms), peakRssMB: Math.max(...direct.map((m) => m.peakRssMB)) },
    orchestrated: { medianMs: orchestratedMs, runsMs: orchestrated.map((m) => m.ms), peakRssMB: Math.max(...orchestrated.map((m) => m.peakRssMB)) },
    ratio: Math.round((orchestratedMs / directMs) * 100) / 100,
    rowsPerSecondOrchestrated: Math.round(Number(changeRows) / (orchestratedMs / 1000)),
    overheadPerRangeMs: Math.round(((orchestratedMs - directMs) / Math.max(1, ranges)) * 10) / 10,
  };
}

async function main(): Promise<void> {
  if (options.generate) return generate(options.generate, options.dataset!);
  const dir = mkdtempSync(join(tmpdir(), 'cdf-bench-capture-'));
  const server = await startDevServer({ cliPath: await ensureTemporalCli(), extraArgs: searchAttributeFlags() });
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeWorkflowBundle(bundlePath);
  const results: DatasetResult[] = [];
  try {
    for (const dataset of [`ranges:${options.ranges}`, ...options.sizes.split(',').map((n) => `rows:${Number(n)}`)]) {
      results.push(await measureDataset(server.address, bundlePath, dir, dataset));
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const small = results.find((r) => r.dataset.startsWith('ranges'))!;
  const sizes = results.filter((r) => r.dataset.startsWith('rows'));
  const [first, largest] = [sizes[0], sizes.at(-1)];
  const summary = {
    measuredAt: new Date().toISOString(),
    machine: '2 cores, 24 GiB (polyglot); Temporal dev server (temporal CLI 1.5.1) and the worker on the same machine',
    settings: { runs: options.runs, memoryLimitMB: MEMORY_LIMIT_MB, engine: 'embedded DuckDB (local Delta emulation)' },
    targets: { ratioAt1M: 1.1, overheadPerRangeMs: 50, largestOverFirst: 5.5 },
    perRangeOverheadMs: small.overheadPerRangeMs,
    largestOverFirst: first && largest && first !== largest ? Math.round((largest.orchestrated.medianMs / first.orchestrated.medianMs) * 100) / 100 : null,
    results,
  };
  for (const r of results) {
    console.log(
      `${r.dataset.padEnd(14)} ${String(r.changeRows).padStart(8)} change rows, ${String(r.ranges).padStart(3)} range(s): direct ${r.direct.medianMs} ms, orchestrated ${r.orchestrated.medianMs} ms, ratio ${r.ratio}, ` +
        `${r.rowsPerSecondOrchestrated} rows/s, overhead ${r.overheadPerRangeMs} ms/range, peak RSS ${r.orchestrated.peakRssMB} MB`,
    );
  }
  if (summary.largestOverFirst !== null) console.log(`largest ÷ first size (orchestrated): ${summary.largestOverFirst}`);
  const file = resolve(__dirname, '..', 'docs', 'benchmarks', 'capture.json');
  writeFileSync(file, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`written to ${file}`);
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
