/**
 * `npm run traffic -- --source orders --commits 5 --inserts 100 --updates 50 --deletes 10`
 * Writes upstream traffic into the local lakehouse: commits of random inserts, updates and
 * deletes on a configured source (created if missing); the sources capture it on their next
 * cycle. DuckDB lets one process write the file: while `npm start` (or a worker) holds it, the
 * commits are handed to that worker through Temporal (the demoTraffic workflow) instead.
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomUUID } from 'node:crypto';
import { ActivityFailure, ApplicationFailure, Client, Connection, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { DemoCommit, DemoTrafficRequest } from '../src/activities/demoTraffic';
import { ConfigError, loadConfig } from '../src/config/load';
import { connectClient } from '../src/temporal/connection';
import type { Config } from '../src/config/schema';
import { DEMO_TRAFFIC, ensureDemoSourceTable, writeTraffic } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';

const count = (flag: string) => (value: string) => {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${flag} must be a whole number ≥ 0, got "${value}"`);
  return parsed;
};

const options = new Command()
  .name('npm run traffic --')
  .description('Write random upstream commits to a source table of the local lakehouse.')
  .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
  .option('--source <name>', 'source name from the config (default: every source)')
  .option('--commits <n>', 'commits per source', count('--commits'), DEMO_TRAFFIC.commits)
  .option('--inserts <n>', 'new ids per commit', count('--inserts'), DEMO_TRAFFIC.insertsPerCommit)
  .option('--updates <n>', 'updated ids per commit', count('--updates'), DEMO_TRAFFIC.updatesPerCommit)
  .option('--deletes <n>', 'deleted ids per commit', count('--deletes'), DEMO_TRAFFIC.deletesPerCommit)
  .option('--id-space <n>', 'ids are drawn from u000000000 … u(n-1)', count('--id-space'), DEMO_TRAFFIC.idSpace)
  .option('--seed <n>', 'random seed', count('--seed'), Date.now() % 1_000_000)
  .parse()
  .opts<{ config?: string; source?: string; commits: number; inserts: number; updates: number; deletes: number; idSpace: number; seed: number }>();

async function main(): Promise<void> {
  const config = loadConfig({ file: options.config });
  if (config.lakehouse.target !== 'local') throw new Error('traffic writes to the local lakehouse only (lakehouse.target: local)');
  const sources = config.sources.filter((s) => !options.source || s.name === options.source);
  if (sources.length === 0) throw new Error(`--source "${options.source}" is not in the config (known: ${config.sources.map((s) => s.name).join(', ')})`);
  const plan = { commits: options.commits, insertsPerCommit: options.inserts, updatesPerCommit: options.updates, deletesPerCommit: options.deletes, idSpace: options.idSpace, seed: options.seed };
  const print = (c: DemoCommit) => console.log(`${c.table} v${c.version}: +${c.inserted} ~${c.updated} -${c.deleted}`);
  let lakehouse: LocalLakehouse;
  try {
    lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  } catch (error) {
    const holder = /Conflicting lock is held in .*\(PID (\d+)\)/.exec((error as Error).message);
    if (!holder) throw error;
    console.log(`[traffic] ${config.lakehouse.local.path} is held by process ${holder[1]} (npm start or a worker): handing the commits to its worker through Temporal ...`);
    for (const commit of await handToWorker(config, { sources: sources.map((s) => s.name), plan }, holder[1]!)) print(commit);
    return;
  }
  try {
    await lakehouse.ensurePipelineTables();
    for (const source of sources) {
      await ensureDemoSourceTable(lakehouse, source);
      await writeTraffic(lakehouse, source, { seedRows: 0, ...plan }, (commit) => print({ ...commit, table: source.table }));
    }
  } finally {
    await lakehouse.close();
  }
}

/** Runs the demoTraffic workflow on the config's task queue: the worker holding the file writes the commits. */
async function handToWorker(config: Config, request: DemoTrafficRequest, holder: string): Promise<DemoCommit[]> {
  let connection: Connection;
  try {
    connection = await connectClient(config, { connectTimeout: '5s' });
  } catch (error) {
    throw new Error(
      `the lakehouse file is held by process ${holder}, and Temporal cannot be reached to hand the commits to its worker (${(error as Error).message}); stop that process (Ctrl-C in npm start) and run this again`,
    );
  }
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    if (!(await hasPollers(client, config))) {
      throw new Error(
        `the lakehouse file is held by process ${holder}, but no worker polls task queue ${config.temporal.taskQueue} on ${config.temporal.address} to hand the commits to: ` +
          'if that process is npm start or a worker, it is not connected to this Temporal server (check temporal.address and temporal.taskQueue); otherwise stop it and run this again. Nothing was written',
      );
    }
    const workflowId = `${config.temporal.workflowIdPrefix}-demo-traffic-${randomUUID().slice(0, 8)}`;
    try {
      return await client.workflow.execute('demoTraffic', {
        workflowId,
        taskQueue: config.temporal.taskQueue,
        args: [request],
        // Longer than the activity's schedule-to-start plus start-to-close, so the activity's own timeout says what happened.
        workflowExecutionTimeout: '7 minutes',
      });
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      throw new Error(describeHandOffFailure(error, workflowId));
    }
  } finally {
    await connection.close();
  }
}

async function hasPollers(client: Client, config: Config): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: config.temporal.namespace,
    taskQueue: { name: config.temporal.taskQueue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  // The server lists a poller for minutes after its worker stopped: count only recent polls (a live worker polls at least every minute).
  const recent = Date.now() - 70_000;
  return (pollers ?? []).some((poller) => poller.lastAccessTime && Number(poller.lastAccessTime.seconds ?? 0) * 1000 >= recent);
}

const REFUSED_BEFORE_WRITING = new Set(['UnknownSource', 'DemoTrafficNotLocal']);

function hasActivityFailure(error: Error): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) if (e instanceof ActivityFailure) return true;
  return false;
}

/** The innermost cause says what went wrong; whether anything was written depends on where it stopped. */
function describeHandOffFailure(error: WorkflowFailedError, workflowId: string): string {
  let cause: Error = error;
  while (cause.cause instanceof Error) cause = cause.cause;
  if (cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_START') {
    return `no worker took the commits within 30 s (is the worker busy or stopping?); nothing was written (workflow ${workflowId})`;
  }
  // Refused before writing: the activity checks these first.
  if (cause instanceof ApplicationFailure && REFUSED_BEFORE_WRITING.has(cause.type ?? '')) return `the worker refused the commits: ${cause.message}; nothing was written (workflow ${workflowId})`;
  // The workflow timed out without its activity ever starting (no live worker took its task).
  if (!hasActivityFailure(error)) return `no worker ran the hand-off (${cause.message}); nothing was written (workflow ${workflowId})`;
  return `the worker did not finish writing the commits (${cause.message}): some may have been written; the sources capture whatever was, and workflow ${workflowId} in the Web UI shows how far it went`;
}

main().catch((error: Error) => {
  console.error(error instanceof ConfigError ? error.message : `[traffic] ${error.message}`);
  process.exit(1);
});
