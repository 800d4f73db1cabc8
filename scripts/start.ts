/**
 * `npm start`: the whole pipeline on one machine. Starts (or reuses) the Temporal dev server with
 * its Web UI, runs the worker in this process, writes demo upstream traffic into the local
 * lakehouse, captures every source, runs one fan-in and prints a summary. Then keeps serving until
 * Ctrl-C; with `--once` it exits after the fan-in and prints one JSON summary as its last line.
 *
 * Stopping: the first SIGINT or SIGTERM, in any phase, shuts the worker down once (in-flight
 * activities get worker.shutdownGraceSeconds), closes the lakehouse, stops the dev server this
 * run started and prints `stopped`; a second signal exits at once. Exit code: 0 for a stop while
 * serving (its normal end), 130 (SIGINT) or 143 (SIGTERM) for a run cut short before it finished.
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { captureUntilCaughtUp, describeErrorChain, runOwnFanIn, startSourceWorkflows } from '../src/client/operations';
import { DURATION, durationMs, type Config } from '../src/config/schema';
import { ConfigError, loadConfig } from '../src/config/load';
import { DatabricksConfigError } from '../src/databricks/connection';
import { startLiveDemo, type LiveDemo } from '../src/demo/liveDemo';
import { DEMO_TRAFFIC, ensureDemoSourceTable, writeTraffic } from '../src/demo/upstream';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { openLakehouse, type Lakehouse } from '../src/lakehouse';
import { temporalLogger } from '../src/logging';
import { INTERRUPTED_EXIT_CODE, StopRequested, StopSignals } from '../src/process/stopSignals';
import { ensureTemporalCli } from '../src/temporal/cli';
import { connectClient, connectWorker, TemporalConnectionError } from '../src/temporal/connection';
import { DevServerStartAborted, findLeftDevServer, isFrontendReachable, startDevServer, type DevServer } from '../src/temporal/devServer';
import { ensureSearchAttributes, searchAttributeFlags } from '../src/temporal/searchAttributes';
import { createPipelineWorker, type PipelineWorker } from '../src/worker';
import { plural } from '../src/text';
import type { FanInSummary } from '../src/workflows/fanIn';

const options = new Command()
  .name('npm start --')
  .description('Run cdf-orchestrator end to end on the embedded default (Temporal dev server, DuckDB lakehouse, local job runner).')
  .option('--once', 'exit after the first full fan-in and print a JSON summary as the last line')
  .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
  .option('--no-traffic', 'do not write demo upstream traffic (neither at start nor while serving)')
  .option('--commits <n>', 'demo commits per source at start, after a seed commit into an empty table', (v) => positiveInt('--commits', v), DEMO_TRAFFIC.commits)
  .option('--traffic-every <duration>', 'while serving, a demo commit per source this often (e.g. 20s, 1m)', parseDuration, '20s')
  .parse()
  .opts<{ once?: boolean; config?: string; traffic: boolean; commits: number; trafficEvery: string }>();

const say = (message: string) => console.log(`[start] ${message}`);

/** What this run opened, closed once in reverse order whatever phase it stopped in. */
class Resources {
  devServer?: DevServer;
  ownsDevServer = false;
  nativeConnection?: NativeConnection;
  connection?: Connection;
  lakehouse?: Lakehouse;
  pipeline?: PipelineWorker;
  running?: Promise<void>;
  liveDemo?: LiveDemo;
  /** Still pending when a stop cut the run short: awaited and closed too. */
  openingLakehouse?: Promise<Lakehouse>;
  creatingPipeline?: Promise<PipelineWorker>;
  /** Statements of this process on the lakehouse: closing DuckDB under a running statement crashes the process. */
  private readonly lakehouseCalls = new Set<Promise<unknown>>();
  private closing?: Promise<void>;

  onLakehouse<T>(call: Promise<T>): Promise<T> {
    this.lakehouseCalls.add(call);
    const settled = () => void this.lakehouseCalls.delete(call);
    call.then(settled, settled);
    return call;
  }

  close(): Promise<void> {
    this.closing ??= this.closeAll();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    const attempt = async (what: string, step: () => Promise<unknown>) => {
      try {
        await step();
      } catch (error) {
        say(`while stopping, ${what} failed: ${(error as Error).message}`);
      }
    };
    if (this.liveDemo) await attempt('stopping the demo traffic', () => this.liveDemo!.stop());
    this.pipeline ??= await this.creatingPipeline?.catch(() => undefined);
    this.lakehouse ??= await this.openingLakehouse?.catch(() => undefined);
    // A worker created after the stop was asked for holds the connection until it has run and shut down.
    if (this.pipeline?.worker.getState() === 'INITIALIZED') this.running = this.pipeline.worker.run();
    if (this.pipeline && this.pipeline.worker.getState() === 'RUNNING') this.pipeline.worker.shutdown();
    if (this.running) await attempt('the worker', () => this.running!);
    if (this.pipeline) await attempt('closing the job runner', () => this.pipeline!.closeAdapters());
    // A demo write stops at its next commit (it watches the abort signal); a count ends by itself.
    if (this.lakehouseCalls.size) await attempt('waiting for the statements in flight', () => Promise.allSettled([...this.lakehouseCalls]));
    if (this.lakehouse) await attempt('closing the lakehouse', () => this.lakehouse!.close());
    if (this.nativeConnection) await attempt('closing the worker connection', () => this.nativeConnection!.close());
    if (this.devServer && this.ownsDevServer) await attempt('stopping the dev server', () => this.devServer!.stop());
    // Closed last: a client request that a stop could not cancel (one already between two retries)
    // is retried on a timer, and a retry on a closed connection throws outside any await. While
    // the connection is open it just fails again; the process exits right after this.
    if (this.connection) await attempt('closing the client connection', () => this.connection!.close());
  }
}

async function main(): Promise<number> {
  const config = loadConfig({ file: options.config });
  const r = new Resources();
  const stop = new StopSignals({
    onStop: (signal) => say(`${signal}: stopping (in-flight activities get up to ${config.worker.shutdownGraceSeconds} s; ${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again stops at once) ...`),
    onForce: (signal) => {
      say(`${signal} again: stopping at once, without draining`);
      if (r.ownsDevServer) r.devServer?.terminate();
      process.exit(INTERRUPTED_EXIT_CODE[signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT']);
    },
  });
  let serving = false;
  try {
    await run(config, r, stop, () => (serving = true));
    await r.close();
    return 0;
  } catch (error) {
    await r.close();
    if (error instanceof StopRequested || error instanceof DevServerStartAborted) {
      const signal = stop.signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
      say('stopped');
      return serving ? 0 : INTERRUPTED_EXIT_CODE[signal];
    }
    throw error;
  } finally {
    stop.dispose();
  }
}

async function run(config: Config, r: Resources, stop: StopSignals, onServing: () => void): Promise<void> {
  const uiUrl = await startOrReuseDevServer(config, r, stop);
  const workflowsUrl = `${uiUrl}/namespaces/${config.temporal.namespace}/workflows`;
  say(`Temporal Web UI: ${workflowsUrl}`);

  // Signals are handled by StopSignals, so the worker is shut down once, by Resources.close.
  // The SDK core's own log lines (connection retries, ...) go to the JSON log on stderr, not raw onto this output.
  Runtime.install({ logger: temporalLogger('WARN'), shutdownSignals: [], telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } } });
  r.nativeConnection = await stop.race(connectWorker(config));
  r.connection = await stop.race(connectClient(config));
  const client = new Client({ connection: r.connection, namespace: config.temporal.namespace });
  await stop.race(ensureSearchAttributes(r.connection, config.temporal.namespace));
  const lakehouse = (r.lakehouse = await stop.race((r.openingLakehouse = openLakehouse(config))));
  await stop.race(r.onLakehouse(lakehouse.ensurePipelineTables()));
  // Counted before the worker runs: source workflows left running by an earlier run capture as soon as it does.
  const registryBefore = (await stop.race(r.onLakehouse(lakehouse.tableCounts()))).registryRows;
  say('bundling workflows and starting the worker ...');
  // The first fan-in is run below, once every source has caught up; event-driven fan-ins
  // (fanIn.onChange) start when serving, so a fan-in triggered half-way through does not split it.
  // The capture activities read this object on every cycle.
  const workerConfig = structuredClone(config);
  workerConfig.fanIn.onChange.enabled = false;
  r.pipeline = await stop.race((r.creatingPipeline = createPipelineWorker({ config: workerConfig, connection: r.nativeConnection, lakehouse })));
  r.running = r.pipeline.worker.run();
  // A worker that stops by itself (a fatal error) ends the run like a stop request would.
  const workerEnded = r.running.then(() => {
    throw new Error('the worker stopped by itself; see the log above');
  });
  workerEnded.catch(() => undefined);
  const step = <T>(promise: Promise<T>) => stop.race(Promise.race([promise, workerEnded]));

  if (lakehouse instanceof LocalLakehouse && options.traffic) {
    for (const source of config.sources) {
      await step(r.onLakehouse(ensureDemoSourceTable(lakehouse, source)));
      // Seeds differ per source so that sources overlap in some ids but not all.
      const seed = DEMO_TRAFFIC.seed + config.sources.indexOf(source);
      const commits = await step(r.onLakehouse(writeTraffic(lakehouse, source, { ...DEMO_TRAFFIC, commits: options.commits, seed }, undefined, stop.abortSignal)));
      say(`upstream ${source.table}: ${describeCommits(commits, options.commits)}, now at version ${commits.at(-1)?.version ?? '?'}`);
    }
  }

  await step(startSourceWorkflows(client, config));
  for (const source of config.sources) {
    // A stop cancels the calls that wait on the pipeline (see Resources.closeAll for what it cannot).
    const report = await step(captureUntilCaughtUp(client, config, source.name, { signal: stop.abortSignal }));
    if (report.blocked) say(`capture ${source.name}: BLOCKED at version ${report.offsetVersion ?? 'none'}: ${report.blocked.type}: ${report.blocked.remedy}`);
    else say(`capture ${source.name}: caught up at version ${report.offsetVersion} of ${report.latestVersion}`);
  }
  const registryAfter = (await step(r.onLakehouse(lakehouse.tableCounts()))).registryRows;
  const changesCaptured = registryAfter - registryBefore;
  say(`capture: ${plural(changesCaptured, 'registry row')} inserted by this run (the registry holds ${registryAfter.toLocaleString('en-US')})`);

  say('fan-in: refreshing the changed-ids view and dispatching batches ...');
  let lastLine = '';
  const progress = (line: string) => {
    if (line !== lastLine) say((lastLine = line));
  };
  // Status reads are sampled once a second: the last one may come before a batch parks, so each fan-in's final line is its summary's.
  const finalLine = (fanIn: FanInSummary) =>
    progress(`fan-in ${fanIn.runKey}: done, ${fanIn.batchesSucceeded} of ${plural(fanIn.batches, 'batch', 'batches')} done, 0 running, ${describeParked(parkedOf(fanIn))}`);
  const fanIns = await step(
    runOwnFanIn(client, config, {
      signal: stop.abortSignal,
      onStatus: (status) =>
        progress(`fan-in ${status.runKey ?? ''}: ${status.phase}, ${status.batchesSucceeded} of ${plural(status.batches, 'batch', 'batches')} done, ${status.batchesRunning} running, ${describeParked(status.batchesParked)}`),
      onJoined: (start) =>
        say(`fan-in: one was already running (${start.workflowId}; started before this run captured, e.g. by a run that was killed): joining it until it ends, then running this run's own`),
      onJoinedEnd: (outcome) => {
        if (outcome instanceof Error) say(`fan-in joined: failed (${describeErrorChain(outcome.cause ?? outcome)}); this run's own fan-in resumes its run`);
        else finalLine(outcome);
      },
    }),
  );
  finalLine(fanIns.own);
  const dispatched = [...(fanIns.joined ? [fanIns.joined] : []), fanIns.own];
  const total = (field: 'changedIds' | 'batches' | 'batchesSucceeded' | 'launches') => dispatched.reduce((sum, fanIn) => sum + fanIn[field], 0);
  const counts = await step(r.onLakehouse(lakehouse.tableCounts()));
  const summary = {
    sources: config.sources.length,
    changesCaptured,
    registryRows: counts.registryRows,
    changedIds: total('changedIds'),
    batches: total('batches'),
    batchesSucceeded: total('batchesSucceeded'),
    parkedBatches: dispatched.reduce((sum, fanIn) => sum + parkedOf(fanIn), 0),
    targetRows: counts.targetRows,
    launches: total('launches'),
    runKey: fanIns.own.runKey,
    /** The fan-in that was already running and was waited for first; its counts are in the totals. */
    joinedRunKey: fanIns.joined?.runKey ?? null,
    ui: workflowsUrl,
  };
  const joinedNote = fanIns.joined ? ` (with the fan-in it joined, ${fanIns.joined.runKey})` : '';
  say(
    `done: ${plural(summary.changedIds, 'changed id')} in ${plural(summary.batches, 'batch', 'batches')}${joinedNote} ` +
      `(${summary.batchesSucceeded} succeeded, ${describeParked(summary.parkedBatches)}), target holds ${plural(summary.targetRows, 'row')}`,
  );

  if (options.once) {
    await r.close();
    console.log(JSON.stringify(summary));
    return;
  }
  onServing();
  workerConfig.fanIn.onChange.enabled = config.fanIn.onChange.enabled;
  const trafficEveryMs = options.traffic && lakehouse instanceof LocalLakehouse ? durationMs(options.trafficEvery) : null;
  r.liveDemo = startLiveDemo({ client, config, lakehouse, trafficEveryMs, say });
  const traffic = trafficEveryMs === null ? 'no demo traffic' : `a demo commit per source every ${options.trafficEvery}`;
  const dispatch = config.fanIn.onChange.enabled
    ? 'each capture starts a fan-in a few seconds later (fanIn.onChange)'
    : 'fanIn.onChange is off, so run a fan-in with `bin/cdf fan-in` (or put it on a schedule)';
  say(`serving: ${traffic}; sources poll every ${config.capture.pollIntervalSeconds} s; ${dispatch}. Ctrl-C stops.`);
  await step(r.running);
}

/** Reuses a server that answers at the address (one this machine runs, or one an earlier run left), else starts one. */
async function startOrReuseDevServer(config: Config, r: Resources, stop: StopSignals): Promise<string> {
  const dataDir = resolve(config.lakehouse.local.path, '..');
  const dbFile = resolve(dataDir, 'temporal.sqlite');
  const pidFile = resolve(dataDir, 'temporal-dev-server.pid');
  const uiUrl = `http://${config.temporal.address.split(':')[0]}:${config.temporal.uiPort}`;
  if (await isFrontendReachable(config.temporal.address)) {
    const left = findLeftDevServer(pidFile, config.temporal.address, dbFile);
    if (left) {
      // An earlier `npm start` was killed before it could stop its server: adopt it, stop it at the end.
      r.devServer = left;
      r.ownsDevServer = true;
      say(`reusing the dev server an earlier run left on ${config.temporal.address} (pid ${left.pid}, same data file ${dbFile}); this run stops it when it stops`);
    } else {
      say(`using the Temporal server already at ${config.temporal.address} (not started by this run, so it is left running)`);
    }
    return uiUrl;
  }
  const cliPath = await stop.race(ensureTemporalCli(say));
  say(`starting the Temporal dev server on ${config.temporal.address} (history in ${dbFile}, log in ${resolve(dataDir, 'temporal-server.log')}) ...`);
  r.devServer = await startDevServer({
    cliPath,
    ip: config.temporal.address.split(':')[0],
    port: Number(config.temporal.address.split(':').pop()),
    uiPort: config.temporal.uiPort,
    dbFile,
    namespace: config.temporal.namespace,
    logFile: resolve(dataDir, 'temporal-server.log'),
    extraArgs: searchAttributeFlags(),
    ownProcessGroup: true,
    pidFile,
    signal: stop.abortSignal,
  });
  r.ownsDevServer = true;
  return r.devServer.uiUrl ?? uiUrl;
}

/** Parked by a fan-in: its own run's batches and requeued ones that parked again. */
const parkedOf = (fanIn: FanInSummary) => fanIn.batchesParked + fanIn.requeued.parked;

/** `0 parked`, or `2 parked — see: bin/cdf batches list --status parked` (where an operator retries or abandons them). */
function describeParked(parked: number): string {
  return parked === 0 ? '0 parked' : `${parked} parked — see: bin/cdf batches list --status parked`;
}

/** `a seed commit (1,500 rows) and 4 commits (820 row changes)`: the seed is written only into an empty table. */
function describeCommits(commits: { inserted: number; updated: number; deleted: number }[], requested: number): string {
  const rows = (list: typeof commits) => list.reduce((sum, c) => sum + c.inserted + c.updated + c.deleted, 0);
  const seed = commits.length > requested ? commits.slice(0, 1) : [];
  const rest = commits.slice(seed.length);
  const written = `${plural(rest.length, 'commit')} (${plural(rows(rest), 'row change')})`;
  return seed.length ? `a seed commit (${plural(rows(seed), 'row')}) and ${written}` : written;
}

function parseDuration(value: string): string {
  if (!DURATION.test(value) || durationMs(value) === 0) throw new InvalidArgumentError(`--traffic-every must be a duration such as 20s or 1m, got "${value}"`);
  // Node's timers take at most 2^31-1 ms (24.8 days) and fire at once beyond it.
  if (durationMs(value) > 2_147_483_647) throw new InvalidArgumentError(`--traffic-every must be at most 24d (a timer's limit), got "${value}"; --no-traffic writes none at all`);
  return value;
}

function positiveInt(flag: string, value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${flag} must be a whole number ≥ 0, got "${value}"`);
  return parsed;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    // The cause is what says what went wrong (a client error's own message is often generic: "Workflow Update failed").
    const cause = error.cause ? `\n[start] cause: ${describeErrorChain(error.cause)}` : '';
    console.error(error instanceof ConfigError || error instanceof DatabricksConfigError || error instanceof TemporalConnectionError ? error.message : `[start] failed: ${error.stack ?? error.message}${cause}`);
    process.exit(1);
  },
);
