/**
 * Commit → launch latency of the event-driven fan-in, on the embedded default.
 * `npm run bench:latency -- [--commits 50] [--spacing-ms 4000] [--wait-after-last-change 1] [--out commit-to-launch.json]`
 *
 * Starts its own dev server and worker, writes one commit at a time to a source (each inserting a
 * fresh uts_id), and measures from each commit's timestamp to the moment the downstream run for
 * the batch holding that id was requested. Sources poll every second; the trigger waits
 * `--wait-after-last-change` seconds (fanIn.onChange.waitAfterLastChangeSeconds, default 1) after
 * the last change. Prints p50/p95/max and writes docs/benchmarks/<--out>.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { startSourceWorkflows } from '../src/client/operations';
import { parseConfig } from '../src/config/load';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { ensureTemporalCli } from '../src/temporal/cli';
import { startDevServer } from '../src/temporal/devServer';
import { searchAttributeFlags } from '../src/temporal/searchAttributes';
import { writeWorkflowBundle } from '../src/temporal/workflowBundle';
import { startWorkerOn } from '../test/support/pipeline';

const options = new Command()
  .option('--commits <n>', 'commits to measure', (v) => Number(v), 50)
  .option('--spacing-ms <ms>', 'time between commits', (v) => Number(v), 4000)
  .option('--wait-after-last-change <s>', 'fanIn.onChange.waitAfterLastChangeSeconds', (v) => Number(v), 1)
  .option('--out <file>', 'file name under docs/benchmarks', 'commit-to-launch.json')
  .parse()
  .opts<{ commits: number; spacingMs: number; waitAfterLastChange: number; out: string }>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-bench-'));
  const server = await startDevServer({ cliPath: await ensureTemporalCli(), extraArgs: searchAttributeFlags() });
  const config = parseConfig({
    temporal: { address: server.address, taskQueue: 'bench' },
    lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
    jobs: { local: { path: join(dir, 'jobs.duckdb') } },
    sources: [{ name: 'orders', table: 'upstream.orders' }],
    capture: { pollIntervalSeconds: 1 },
    fanIn: { batchSize: 1000, jobPollIntervalSeconds: 1, onChange: { enabled: true, waitAfterLastChangeSeconds: options.waitAfterLastChange, minSecondsBetweenRuns: 0 } },
  });
  const bundlePath = join(dir, 'workflow-bundle.js');
  await writeWorkflowBundle(bundlePath);
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  await ensureDemoSourceTable(lakehouse, config.sources[0]!);
  // The same worker harness as the tests: real activities, the local runner, the bundle just built.
  const { client, jobs, stop } = await startWorkerOn(config, lakehouse, { bundlePath });
  await startSourceWorkflows(client, config);

  const commits: { utsId: string; committedAt: number }[] = [];
  for (let i = 0; i < options.commits; i++) {
    const utsId = `bench-${String(i).padStart(4, '0')}`;
    const commit = await lakehouse.writeUpstreamCommit('upstream.orders', { insert: [utsId] });
    commits.push({ utsId, committedAt: Date.parse(`${commit.commitTimestamp.replace(' ', 'T')}Z`) });
    process.stderr.write(`\r[bench] commit ${i + 1}/${options.commits}`);
    await sleep(options.spacingMs);
  }
  process.stderr.write('\n[bench] waiting for the last launches ...\n');
  const latencies: number[] = [];
  for (let attempt = 0; attempt < 60 && latencies.length < commits.length; attempt++) {
    await sleep(1000);
    const launches = new Map((await jobs.launchTimes()).map((l) => [`${l.runKey}/${l.batchNumber}`, l.queuedAt]));
    const batches = await lakehouse.db.all<{ uts_id: string; run_key: string; batch_number: number }>(`SELECT uts_id, run_key, batch_number FROM cdf.dispatch_batches`);
    const launchOf = new Map(batches.map((b) => [b.uts_id, launches.get(`${b.run_key}/${b.batch_number}`)]));
    latencies.length = 0;
    for (const commit of commits) {
      const launchedAt = launchOf.get(commit.utsId);
      if (launchedAt !== undefined) latencies.push(launchedAt - commit.committedAt);
    }
  }
  await stop();
  await server.stop();

  const sorted = [...latencies].sort((a, b) => a - b);
  const pick = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  const result = {
    measuredAt: new Date().toISOString(),
    machine: '2 cores, 24 GiB (polyglot); Temporal dev server (temporal CLI 1.5.1) on the same machine',
    commits: commits.length,
    launched: latencies.length,
    settings: { pollIntervalSeconds: 1, waitAfterLastChangeSeconds: options.waitAfterLastChange, minSecondsBetweenRuns: 0, spacingMs: options.spacingMs },
    commitToLaunchMs: { p50: pick(0.5), p95: pick(0.95), max: sorted[sorted.length - 1] ?? NaN, min: sorted[0] ?? NaN },
  };
  console.log(`commit → launch over ${result.launched}/${result.commits} commits: p50 ${result.commitToLaunchMs.p50} ms, p95 ${result.commitToLaunchMs.p95} ms, max ${result.commitToLaunchMs.max} ms`);
  const file = resolve(__dirname, '..', 'docs', 'benchmarks', options.out);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written to ${file}`);
  if (latencies.length < commits.length) process.exitCode = 1;
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
