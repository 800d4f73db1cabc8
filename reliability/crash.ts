import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { startSourceWorkflows } from '../src/client/operations';
import { LocalJobRunner } from '../src/jobs/local/localJobRunner';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { startDevServer, freePort, type DevServer } from '../src/temporal/devServer';
import { searchAttributeFlags, ensureSearchAttributes } from '../src/temporal/searchAttributes';
import { invariant, scenarioConfig, type ScenarioContext, type ScenarioResult } from './context';
import { saveHistories } from './histories';
import { auditPipeline } from './oracle';
import { drainFanIns, waitForCatchUp } from './settle';

/**
 * The activities the harness aims its kills at, in turn. captureRange twice: once as it starts (in
 * the registry append), once between its append and its offset MERGE (the worker reports that step).
 */
const KILL_TARGETS = ['captureRange', 'captureRange:appended', 'snapshotBatches', 'runBatchAttempt', 'commitFanInRun'] as const;

export interface CrashSize {
  sources: number;
  changes: number;
  kills: number;
  serverRestarts: number;
  opsPerCommit: number;
  idSpace: number;
}

interface WorkerEvent {
  e: 'ready' | 'start' | 'step' | 'end' | 'traffic';
  type?: string;
  id?: string;
  changes?: number;
  done?: boolean;
}

/**
 * SIGKILLs the worker many times, each time in the middle of a chosen activity, while upstream
 * traffic flows; restarts the Temporal dev server (persistent SQLite) several times; then lets the
 * pipeline settle and audits every row against the source feeds.
 */
export async function crashScenario(ctx: ScenarioContext, size: CrashSize, cliPath: string): Promise<ScenarioResult> {
  const dir = join(ctx.workDir, 'crash');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const startServer = () =>
    startDevServer({ cliPath, port, dbFile: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal-dev-server.log'), extraArgs: searchAttributeFlags() });
  let server: DevServer = await startServer();
  const config = scenarioConfig(ctx, 'crash', {
    temporal: { address: server.address },
    sources: Array.from({ length: size.sources }, (_, i) => ({ name: `s${i + 1}`, table: `upstream.s${i + 1}` })),
    capture: { maxVersionsPerRange: 3, pollIntervalSeconds: 1 },
    fanIn: { batchSize: 2000, concurrency: 4, jobPollIntervalSeconds: 1, onChange: { enabled: true, waitAfterLastChangeSeconds: 1, minSecondsBetweenRuns: 2 } },
    worker: { shutdownGraceSeconds: 2, heartbeatTimeoutSeconds: 2, activityTimeoutSeconds: 300 },
  });
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  await ensureSearchAttributes(connection, config.temporal.namespace);

  const workerLogFile = join(dir, 'worker.log');
  const logFile = join(dir, 'worker-output.log');
  const log = createWriteStream(logFile, { flags: 'a' });
  const inFlight = new Map<string, string>();
  const killsByActivity: Record<string, number> = {};
  let traffic = { changes: 0, done: false };
  let child: ChildProcess | null = null;
  let ready = false;
  // The kill fires from the event handler the moment the armed activity type starts (plus a random
  // few milliseconds): short activities start and end between two polls of a loop.
  let armed: string | null = null;
  let struck: string | null = null;

  // Each worker life writes up to its share of the traffic, so that changes keep arriving until the last kill.
  const trafficShare = (lives: number) => Math.min(size.changes, Math.ceil((lives / size.kills) * size.changes));
  const spawnWorker = async (trafficTarget: number) => {
    inFlight.clear();
    ready = false;
    const worker = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'crashWorker.ts'), configPath, ctx.bundlePath, String(trafficTarget), String(size.opsPerCommit), String(size.idSpace)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The worker's JSON log gets a file of its own; what it prints otherwise goes to worker-output.log.
      env: { ...process.env, CDF_LOG_FILE: workerLogFile },
    });
    worker.stderr!.pipe(log, { end: false });
    let buffered = '';
    worker.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        // The SDK's core writes its own warnings to stdout too; those go to the log.
        if (!line.startsWith('{"e":')) {
          log.write(`${line}\n`);
          continue;
        }
        const event = JSON.parse(line) as WorkerEvent;
        if (event.e === 'ready') ready = true;
        else if (event.e === 'step' && armed && event.type === armed) {
          struck = armed;
          armed = null;
          worker.kill('SIGKILL');
        } else if (event.e === 'start') {
          inFlight.set(event.id!, event.type!);
          if (armed && event.type === armed) {
            struck = armed;
            armed = null;
            setTimeout(() => worker.kill('SIGKILL'), Math.random() * 40);
          }
        }
        else if (event.e === 'end') inFlight.delete(event.id!);
        else if (event.e === 'traffic') traffic = { changes: event.changes!, done: Boolean(event.done) };
      }
    });
    child = worker;
    for (let waited = 0; !ready; waited += 100) {
      if (worker.exitCode !== null) throw new Error(`the crash worker exited with ${worker.exitCode} before it was ready; see ${logFile}`);
      if (waited > 120_000) throw new Error(`the crash worker was not ready after 2 minutes; see ${logFile}`);
      await sleep(100);
    }
  };
  const killWorker = async (signal: NodeJS.Signals) => {
    const worker = child!;
    const exited = worker.exitCode !== null || worker.signalCode !== null ? Promise.resolve() : new Promise((resolve) => worker.once('exit', resolve));
    worker.kill(signal);
    await exited;
    child = null;
  };

  await spawnWorker(trafficShare(1));
  await startSourceWorkflows(client, config);
  const restartAfter = new Set(Array.from({ length: size.serverRestarts }, (_, i) => Math.floor(((i + 1) * size.kills) / (size.serverRestarts + 1))));
  let kills = 0;
  let serverRestarts = 0;
  const started = Date.now();
  try {
    while (kills < size.kills) {
      if (!child) await spawnWorker(trafficShare(kills + 1));
      const target = KILL_TARGETS[kills % KILL_TARGETS.length]!;
      // Aim at the target activity; if it does not come within the wait, kill whatever is running.
      struck = null;
      armed = target;
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !struck) await sleep(5);
      armed = null;
      const phase = struck ?? [...inFlight.values()][0] ?? 'between activities';
      await killWorker('SIGKILL');
      kills += 1;
      killsByActivity[phase] = (killsByActivity[phase] ?? 0) + 1;
      if (kills % 10 === 0) ctx.progress(`crash: ${kills}/${size.kills} kills, ${traffic.changes} changes written, ${serverRestarts} server restarts, ${Math.round((Date.now() - started) / 1000)} s`);
      if (restartAfter.has(kills)) {
        // The server goes down while the worker is starting up again: both must find each other.
        await spawnWorker(trafficShare(kills + 1));
        await server.stop();
        await sleep(1000);
        server = await startServer();
        serverRestarts += 1;
        ctx.progress(`crash: dev server restarted (${serverRestarts}/${size.serverRestarts})`);
      }
    }
    if (!child) await spawnWorker(size.changes);
    while (!(traffic.done && traffic.changes >= size.changes)) await sleep(500);
    ctx.progress(`crash: traffic done (${traffic.changes} changes); waiting for every source to catch up`);
    await waitForCatchUp(client, config);
    // The trigger may still be dispatching; fan-ins until one finds nothing open and nothing new.
    await drainFanIns(client, config);
    await killWorker('SIGTERM');
  } finally {
    if (child) await killWorker('SIGKILL');
  }

  const histories = await saveHistories(client, config.temporal.taskQueue, join(dir, 'histories'));
  for await (const execution of client.workflow.list({ query: `TaskQueue = "${config.temporal.taskQueue}" AND ExecutionStatus = "Running"` })) {
    await client.workflow.getHandle(execution.workflowId).terminate('crash scenario finished').catch(() => undefined);
  }
  await connection.close();
  await server.stop();
  log.end();

  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  const runner = await LocalJobRunner.open(config.jobs.local.path, { processor: async () => undefined, maxConcurrentRuns: 1, failFirstAttemptRate: 0 });
  try {
    const audit = await auditPipeline(config, lakehouse, runner);
    return {
      name: 'crash',
      figures: {
        sources: size.sources,
        workerKills: kills,
        killsByActivity,
        serverRestarts,
        durationSeconds: Math.round((Date.now() - started) / 1000),
        histories: { workflows: histories.workflows, events: histories.events, workflowTaskTimeouts: histories.workflowTaskTimeouts, activityTimeouts: histories.activityTimeouts },
        ...withoutInvariants(audit),
      },
      invariants: [
        invariant(`the worker was SIGKILLed ${size.kills} times in the middle of activities`, kills >= size.kills, JSON.stringify(killsByActivity)),
        invariant(`the dev server was restarted ${size.serverRestarts} times on its SQLite file`, serverRestarts >= size.serverRestarts, `${serverRestarts} restarts`),
        ...audit.invariants,
      ],
      taskQueues: [],
      logFiles: [logFile, workerLogFile, join(dir, 'temporal-dev-server.log'), ...histories.files],
    };
  } finally {
    await runner.close();
    await lakehouse.close();
  }
}

function withoutInvariants<T extends { invariants: unknown }>(value: T): Omit<T, 'invariants'> {
  const { invariants: _omit, ...rest } = value;
  return rest;
}
