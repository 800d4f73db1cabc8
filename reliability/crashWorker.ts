/**
 * The worker process the crash scenario kills: the real pipeline worker (real activities, DuckDB,
 * local job runner) plus the upstream traffic writer, in one process because DuckDB allows one
 * writing process per file. It reports on stdout, one JSON line each, when it is ready, when an
 * activity starts and ends (so the harness can SIGKILL it in the middle of a chosen activity) and
 * how much traffic exists. Killed and restarted many times, it carries no state of its own: the
 * traffic target is checked against what the upstream tables already hold.
 *
 * argv: <config.json> <bundle.js> <target changes> <ops per commit> <id space>
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '@temporalio/activity';
import { NativeConnection, Runtime, type ActivityInterceptors } from '@temporalio/worker';
import { parseConfig } from '../src/config/load';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { LocalJobRunner } from '../src/jobs/local/localJobRunner';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { temporalLogger } from '../src/logging';
import { createPipelineWorker } from '../src/worker';

const [configPath, bundlePath, targetArg, opsArg, idSpaceArg] = process.argv.slice(2);
const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

function traced(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        const id = `${ctx.info.workflowExecution?.workflowId}/${ctx.info.activityId}/${ctx.info.attempt}`;
        emit({ e: 'start', type: ctx.info.activityType, id });
        try {
          return await next(input);
        } finally {
          emit({ e: 'end', id });
        }
      },
    },
  };
}

/**
 * captureRange appends to the registry, then moves the offset: after the append it reports the
 * step and holds 50 ms, so the harness can land a kill between the two writes (the retry must
 * append nothing and still move the offset).
 */
function withAppendMarker(lakehouse: LocalLakehouse): LocalLakehouse {
  const append = lakehouse.appendRangeToRegistry.bind(lakehouse);
  lakehouse.appendRangeToRegistry = async (...args) => {
    const appended = await append(...args);
    emit({ e: 'step', type: 'captureRange:appended' });
    await sleep(50);
    return appended;
  };
  return lakehouse;
}

async function main(): Promise<void> {
  const config = parseConfig(JSON.parse(readFileSync(configPath!, 'utf8')), configPath);
  Runtime.install({ logger: temporalLogger('WARN') });
  const lakehouse = withAppendMarker(await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { memoryLimitMB: config.lakehouse.local.memoryLimitMB }));
  for (const source of config.sources) await ensureDemoSourceTable(lakehouse, source);
  const runner = await LocalJobRunner.open(config.jobs.local.path, {
    processor: (runKey, batchNumber) => lakehouse.processBatch(runKey, batchNumber),
    maxConcurrentRuns: config.jobs.local.maxConcurrentRuns,
    failFirstAttemptRate: config.jobs.local.failFirstAttemptRate,
  });
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const pipeline = await createPipelineWorker({ config, connection, lakehouse, jobs: runner, workflowBundle: { codePath: bundlePath! }, activityInterceptors: [traced] });
  const running = pipeline.worker.run();
  emit({ e: 'ready', pid: process.pid });
  await writeTraffic(lakehouse, config.sources.map((s) => s.table), Number(targetArg), Number(opsArg), Number(idSpaceArg));
  await running;
}

/** Commits random inserts, updates and deletes to random sources until the feeds hold `target` changes. */
async function writeTraffic(lakehouse: LocalLakehouse, tables: string[], target: number, opsPerCommit: number, idSpace: number): Promise<void> {
  let changes = await countChanges(lakehouse, tables);
  while (changes < target) {
    const table = tables[Math.floor(Math.random() * tables.length)]!;
    const { latestVersion } = await lakehouse.engine.describe(table);
    const ops = Math.ceil(opsPerCommit * (0.5 + Math.random()));
    const spec = latestVersion === 0 ? { insert: ops, idSpace } : { insert: Math.ceil(ops * 0.5), update: Math.floor(ops * 0.35), delete: Math.floor(ops * 0.15), idSpace };
    const commit = await lakehouse.writeUpstreamCommit(table, { ...spec, seed: Math.floor(Math.random() * 1e9) });
    changes += commit.inserted + commit.updated + commit.deleted;
    emit({ e: 'traffic', changes });
    await sleep(50 + Math.random() * 150);
  }
  emit({ e: 'traffic', changes, done: true });
}

async function countChanges(lakehouse: LocalLakehouse, tables: string[]): Promise<number> {
  let total = 0;
  for (const table of tables) {
    const [row] = await lakehouse.db.all<{ shadow: string }>(`SELECT shadow FROM _delta.tables WHERE name = ?`, [table]);
    const [count] = await lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${row!.shadow} WHERE _change_type <> 'update_preimage'`);
    total += Number(count!.n);
  }
  return total;
}

main().catch((error: Error) => {
  process.stderr.write(`crash worker failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
