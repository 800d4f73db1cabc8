/**
 * The worker process of `npm run bench:sources`: the real pipeline worker (real activities, the
 * embedded lakehouse) plus the upstream traffic writer, in one process because DuckDB lets one
 * process write the file. Creates every source table, reports `{"e":"ready"}` on stdout, and on
 * a `traffic` line on stdin writes `rate` commits a second to random sources for `seconds`, then
 * reports `{"e":"traffic-done","commits":N}`. Stops on SIGTERM like `npm run worker`.
 *
 * argv: <config.json> <bundle.js> <commits per second> <seconds>
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { parseConfig } from '../src/config/load';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { LocalJobRunner } from '../src/jobs/local/localJobRunner';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { temporalLogger } from '../src/logging';
import { createPipelineWorker } from '../src/worker';

const [configPath, bundlePath, rateArg, secondsArg] = process.argv.slice(2);
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

async function main(): Promise<void> {
  const config = parseConfig(JSON.parse(readFileSync(configPath!, 'utf8')), configPath);
  Runtime.install({ logger: temporalLogger('WARN') });
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { memoryLimitMB: config.lakehouse.local.memoryLimitMB });
  for (const source of config.sources) await ensureDemoSourceTable(lakehouse, source);
  const jobs = await LocalJobRunner.open(config.jobs.local.path, { processor: (runKey, batch) => lakehouse.processBatch(runKey, batch), maxConcurrentRuns: 1, failFirstAttemptRate: 0 });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const pipeline = await createPipelineWorker({ config, connection, lakehouse, jobs, workflowBundle: { codePath: bundlePath! } });
  const running = pipeline.worker.run();
  const stop = () => pipeline.worker.shutdown();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  emit({ e: 'ready', pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'traffic') void writeTraffic(lakehouse, config.sources.map((s) => s.table), Number(rateArg), Number(secondsArg));
  });
  await running;
  lines.close();
  await jobs.close();
  await lakehouse.close();
  await connection.close();
}

/** `rate` commits a second (5 rows each: inserts, updates, deletes) to random sources, evenly spaced. */
async function writeTraffic(lakehouse: LocalLakehouse, tables: string[], rate: number, seconds: number): Promise<void> {
  const started = Date.now();
  let commits = 0;
  while (Date.now() - started < seconds * 1000) {
    const table = tables[Math.floor(Math.random() * tables.length)]!;
    const { latestVersion } = await lakehouse.engine.describe(table);
    const spec = latestVersion === 0 ? { insert: 5, idSpace: 100_000 } : { insert: 3, update: 1, delete: 1, idSpace: 100_000 };
    await lakehouse.writeUpstreamCommit(table, { ...spec, seed: Math.floor(Math.random() * 1e9) });
    commits += 1;
    const due = started + (commits * 1000) / rate;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  const memory = process.memoryUsage();
  const [duck] = await lakehouse.db.all<{ bytes: bigint }>(`SELECT sum(memory_usage_bytes) AS bytes FROM duckdb_memory()`);
  const mb = (bytes: number | bigint) => Math.round(Number(bytes) / 2 ** 20);
  // Where the resident memory is, for the report: the main isolate's heap, buffers outside it, DuckDB's buffer manager.
  emit({ e: 'traffic-done', commits, memoryMB: { rss: mb(memory.rss), mainHeapUsed: mb(memory.heapUsed), external: mb(memory.external), duckdb: mb(duck?.bytes ?? 0) } });
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
