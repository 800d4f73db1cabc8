/**
 * The worker process of `npm run bench:fanin`: the real pipeline worker (real activities, the
 * local lakehouse, the local job runner) whose downstream job does nothing, so the benchmark
 * measures the orchestration of a 10M-id fan-in, not a demo MERGE. Reads the config file and the
 * pre-built workflow bundle named on its command line; prints "ready" once polling; stops on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { parseConfig } from '../src/config/load';
import { LocalJobRunner } from '../src/jobs/local/localJobRunner';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { createPipelineWorker } from '../src/worker';

async function main(): Promise<void> {
  const [configFile, bundlePath] = process.argv.slice(2);
  const config = parseConfig(JSON.parse(readFileSync(configFile!, 'utf8')));
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { memoryLimitMB: config.lakehouse.local.memoryLimitMB });
  const jobs = await LocalJobRunner.open(config.jobs.local.path, { processor: async () => undefined, maxConcurrentRuns: config.jobs.local.maxConcurrentRuns, failFirstAttemptRate: 0 });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const pipeline = await createPipelineWorker({ config, connection, lakehouse, jobs, workflowBundle: { codePath: bundlePath! } });
  const running = pipeline.worker.run();
  process.stdout.write('ready\n');
  // Where the memory is, every 20 s: the V8 heap, memory held outside it (Temporal core, DuckDB), and DuckDB's own account.
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  const reportMemory = () => {
    if (process.env.CDF_BENCH_FORCE_GC) (globalThis as { gc?: () => void }).gc?.();
    void lakehouse.db.all<{ bytes: bigint }>(`SELECT sum(memory_usage_bytes) AS bytes FROM duckdb_memory()`).then(([duck]) => {
      const m = process.memoryUsage();
      process.stderr.write(`[bench:fanin worker] rss ${mb(m.rss)} MB, V8 heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} MB, external ${mb(m.external)} MB, DuckDB ${mb(Number(duck?.bytes ?? 0))} MB\n`);
    }, () => undefined);
  };
  reportMemory();
  const report = setInterval(reportMemory, 20_000);
  running.finally(() => clearInterval(report)).catch(() => undefined);
  await running;
  await jobs.close();
  await lakehouse.close();
  await connection.close();
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
