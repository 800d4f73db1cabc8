/**
 * `cdf`: the operator CLI. Each command is a thin layer over the Temporal client and
 * src/client/operations.ts, so it does exactly what the Web UI's dialogs and `temporal workflow …`
 * do. Exit codes: 0 done, 1 the operation failed (message says why and what to do), 2 bad usage.
 */
import { Client, Connection, WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runFanIn, sourceWorkflowId, startOrJoinFanIn, type FanInStart } from '../client/operations';
import { runBatchCommand, formatBatchTable } from './batches';
import { formatPurgeReport, runPurge } from './purge';
import { bundleVariables, formatBundleVarFlags, tablesWithoutCatalog } from '../databricks/bundleVariables';
import { BATCH_STATUSES, type BatchStatus } from '../lakehouse/port';
import type { FanInSummary } from '../workflows/fanInProgress';
import { ConfigError, loadConfig } from '../config/load';
import type { Config } from '../config/schema';
import { applyPlan, ScheduleConflictError } from '../schedules/apply';
import { plural } from '../text';
import { connectClient, TemporalConnectionError } from '../temporal/connection';
import { ensureSearchAttributes, SearchAttributesMissingError } from '../temporal/searchAttributes';
import { applySourcePlan, formatSourcePlan, isEmptySourcePlan, planSources, type RemovedAction } from '../sources/plan';
import { formatPlan, isEmptyPlan, planSchedules } from '../schedules/plan';
import { pauseSignal, replayFromVersionUpdate, resumeSignal, sourceStatusQuery, type ReplayAccepted, type SourceStatus } from '../workflows/messages';

/** The operation could not be done; the message names what and the fix. Exit code 1. */
export class OperationFailedError extends Error {
  override readonly name = 'OperationFailedError';
}

interface GlobalOptions {
  config?: string;
  json?: boolean;
}

interface Output {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** A status row: the query's answer, or `running: false` when the source's workflow is not running. */
export type SourceStatusRow = { source: string; workflowId: string; running: true } & SourceStatus;
/** `closed`: the workflow exists but has ended (terminated, failed, ...), so nothing captures the source. */
type StatusRow = SourceStatusRow | { source: string; workflowId: string; running: false; closed: { status: string; at: string | null } | null };

/** Runs the CLI on `argv` (as process.argv) and resolves to the exit code; never calls process.exit. */
export async function runCli(argv: string[], output: Output = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): Promise<number> {
  // With --json, errors are one JSON object on stderr too: {"error": {"type", "message"}, "exitCode"}.
  const json = argv.slice(2).includes('--json');
  const fail = (exitCode: number, type: string, message: string): number => {
    output.err(json ? `${JSON.stringify({ error: { type, message }, exitCode })}\n` : `cdf: ${message}\n`);
    return exitCode;
  };
  const program = buildProgram(json ? { out: output.out, err: () => undefined } : output);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    // Commander has already printed its own usage errors (unless --json); help and --version end here with code 0.
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0;
      return json ? fail(2, 'UsageError', error.message.replace(/^error: /, '')) : 2;
    }
    if (error instanceof OperationFailedError || error instanceof ConfigError || error instanceof ScheduleConflictError || error instanceof TemporalConnectionError || error instanceof SearchAttributesMissingError) return fail(1, error.name, error.message);
    return fail(1, (error as Error).name ?? 'Error', json ? (error as Error).message : ((error as Error).stack ?? String(error)));
  }
}

function buildProgram(output: Output): Command {
  const program = new Command()
    .name('cdf')
    .description('Operate cdf-orchestrator: source status, replay, pause/resume, fan-in, batches, and the source workflows and schedules the config asks for.')
    .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
    .option('--json', 'print machine-readable JSON instead of text')
    .exitOverride()
    // Every subcommand's --help lists --config and --json too.
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({ writeOut: output.out, writeErr: output.err })
    .showHelpAfterError('(run with --help for usage)');
  const globals = (command: Command) => command.optsWithGlobals<GlobalOptions>();
  const print = (command: Command, json: unknown, text: string) => output.out(`${globals(command).json ? JSON.stringify(json, null, 2) : text}\n`);

  program
    .command('status')
    .description('Show offset, latest version, lag and state of one source or of all sources (the `status` query).')
    .argument('[source]', 'a source name from the config (default: all)')
    .action(async (source: string | undefined, _options, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      const names = source === undefined ? config.sources.map((s) => s.name) : [knownSource(config, source)];
      const rows = await withClient(config, (client) => Promise.all(names.map((name) => queryStatus(client, config, name))));
      print(command, source === undefined ? rows : rows[0], formatStatusTable(rows));
      const missing = rows.find((row) => !row.running);
      if (source !== undefined && missing && !missing.running) throw notRunning(missing.workflowId, source, missing.closed);
    });

  program
    .command('replay')
    .description('Capture a source again from a Delta version (the replayFromVersionSync update); the registry stays deduplicated.')
    .argument('<source>', 'a source name from the config')
    .requiredOption('--from <version>', 'first Delta version to capture again (a whole number, 0 to the latest version)', parseVersion)
    .option('--redispatch', 'also dispatch again every id changed from that version on (default: only changes not dispatched yet)')
    .option('--reason <text>', 'why, recorded with the request')
    .action(async (source: string, options: { from: number; redispatch?: boolean; reason?: string }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      knownSource(config, source);
      const workflowId = sourceWorkflowId(config, source);
      const accepted = await withClient(config, async (client) => {
        try {
          const handle = client.workflow.getHandle(workflowId);
          const answer = await handle.executeUpdate(replayFromVersionUpdate, {
            args: [{ fromVersion: options.from, ...(options.redispatch ? { redispatch: true } : {}), ...(options.reason ? { reason: options.reason } : {}) }],
          });
          return { ...answer, paused: (await handle.query(sourceStatusQuery)).paused };
        } catch (error) {
          if (error instanceof WorkflowUpdateFailedError) {
            throw new OperationFailedError(`replay of ${source} from version ${options.from} refused by ${workflowId}: ${error.cause?.message ?? error.message}`);
          }
          throw asNotRunning(error, workflowId, source);
        }
      });
      print(command, { source, workflowId, ...replayOutcome(accepted), applied: !accepted.queued }, replayText(source, accepted));
    });

  program
    .command('pause')
    .description('Stop capturing a source after the current range, until resume (the pause signal).')
    .argument('<source>', 'a source name from the config')
    .option('--reason <text>', 'shown in status while paused', 'paused with cdf pause')
    .action(async (source: string, options: { reason: string }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      knownSource(config, source);
      const workflowId = sourceWorkflowId(config, source);
      const before = await withClient(config, async (client) => {
        const row = await queryStatus(client, config, source);
        if (!row.running) throw notRunning(workflowId, source, row.closed);
        await client.workflow.getHandle(workflowId).signal(pauseSignal, { reason: options.reason }).catch((e) => Promise.reject(asNotRunning(e, workflowId, source)));
        return row.paused;
      });
      const text = before
        ? `${source}: already paused since ${before.since} (${before.reason}); the reason is now "${options.reason}". \`cdf resume ${source}\` undoes it`
        : `${source}: paused (${options.reason}) after the range in progress, if any; \`cdf resume ${source}\` undoes it`;
      print(command, { source, workflowId, paused: true, reason: options.reason, alreadyPausedSince: before?.since ?? null }, text);
    });

  program
    .command('resume')
    .description('Resume capturing a paused source and run a cycle now (the resume signal).')
    .argument('<source>', 'a source name from the config')
    .action(async (source: string, _options, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      knownSource(config, source);
      const workflowId = sourceWorkflowId(config, source);
      const wasPaused = await withClient(config, async (client) => {
        const row = await queryStatus(client, config, source);
        if (!row.running) throw notRunning(workflowId, source, row.closed);
        if (!row.paused) return false;
        await client.workflow.getHandle(workflowId).signal(resumeSignal, {}).catch((e) => Promise.reject(asNotRunning(e, workflowId, source)));
        return true;
      });
      const text = wasPaused ? `${source}: resumed; a capture cycle starts now` : `${source}: not paused, nothing to resume (\`cdf status ${source}\` shows its state)`;
      print(command, { source, workflowId, paused: false, wasPaused }, text);
    });

  program
    .command('fan-in')
    .description('Start the fan-in (or join the one running: there is never more than one): dispatch the changed ids captured so far to downstream jobs.')
    .option('--wait', 'wait for it to finish and print its summary')
    .action(async (options: { wait?: boolean }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      await withClient(config, async (client) => {
        if (!options.wait) {
          const start = await startOrJoinFanIn(client, config);
          print(command, { workflowId: start.workflowId, joined: start.joined }, describeStart(start));
          return;
        }
        try {
          let start: FanInStart | undefined;
          const summary = await runFanIn(client, config, { onStart: (s) => (start = s) });
          if (start?.joined && !globals(command).json) output.out(`${describeStart(start)}\n`);
          print(command, { ...summary, joined: start?.joined ?? false }, describeSummary(summary));
        } catch (error) {
          if (error instanceof WorkflowFailedError) throw new OperationFailedError(`the fan-in failed: ${error.cause?.message ?? error.message}`);
          throw error;
        }
      });
    });

  const batches = program.command('batches').description('Dispatch batches: list them, retry or abandon a parked, failed or launched one.');
  batches
    .command('list')
    .description('List batches of fan-in runs with their status, attempts and last run (default: parked and requeued ones).')
    .option('--status <statuses>', `comma-separated statuses: ${BATCH_STATUSES.join(', ')}, or "all"`, parseStatuses, ['parked', 'retry'] as BatchStatus[])
    .option('--run <runKey>', 'only batches of this fan-in run')
    .option('--limit <n>', 'at most this many rows (1 to 1000)', parseLimit, 100)
    .action(async (options: { status: BatchStatus[]; run?: string; limit: number }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      const result = await withClient(config, (client) =>
        runBatchCommand(client, config, { action: 'list', statuses: options.status, ...(options.run ? { runKey: options.run } : {}), limit: options.limit }),
      );
      print(command, result.batches, result.batches.length ? formatBatchTable(result.batches) : `no batches with status ${options.status.join(' or ') || 'any'}`);
    });
  batches
    .command('retry')
    .description(
      'Queue a batch for the next fan-in with fanIn.maxAttemptsPerBatch more attempts, and start (or join) a fan-in. ' +
        'parked or retry: always. failed: while no fan-in is running. launched: while no fan-in is running and once its run ended or was deleted; ' +
        'one with no recorded run stays launched with more attempts (the fan-in asks run-now with its token again). ' +
        'pending, succeeded, abandoned: refused. A refusal names the state and the next step and changes nothing.',
    )
    .argument('<runKey>', 'the fan-in run key (see `cdf batches list`)')
    .argument('<batch>', 'the batch number', parseBatchNumber)
    .option('--wait', 'wait until a fan-in has run the batch and print its new status')
    .action(async (runKey: string, batchNumber: number, options: { wait?: boolean }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      await withClient(config, async (client) => {
        const result = await runBatchCommand(client, config, { action: 'retry', runKey, batchNumber });
        if (result.refused) throw new OperationFailedError(`retry refused: ${result.refused}`);
        if (!options.wait) {
          const start = await startOrJoinFanIn(client, config);
          const queued = result.batches[0]?.status === 'launched' ? 'stays launched with more attempts (the fan-in asks run-now with its token again)' : 'queued for retry';
          print(command, { batch: result.batches[0], fanIn: { workflowId: start.workflowId, joined: start.joined } }, `batch ${batchNumber} of ${runKey} ${queued}; ${describeStart(start)}`);
          return;
        }
        // A fan-in that was already running may have passed its requeued stage: then one more runs it.
        let batch = result.batches[0]!;
        for (let fanIns = 0; fanIns < 2 && (batch.status === 'retry' || batch.status === 'launched'); fanIns++) {
          await runFanIn(client, config).catch((error: Error) => Promise.reject(new OperationFailedError(`the fan-in failed: ${(error as WorkflowFailedError).cause?.message ?? error.message}`)));
          batch = (await runBatchCommand(client, config, { action: 'show', runKey, batchNumber })).batches[0] ?? batch;
        }
        print(command, batch, `batch ${batchNumber} of ${runKey}: ${batch.status} after attempt ${batch.attempts}${batch.stateMessage ? ` (${batch.stateMessage})` : ''}`);
        if (batch.status !== 'succeeded') throw new OperationFailedError(`batch ${batchNumber} of ${runKey} is ${batch.status} after the retry: see \`cdf batches list\` and the run ${batch.runPageUrl ?? ''}`);
      });
    });
  batches
    .command('abandon')
    .description(
      'Give up on a batch: it is never launched again; its ids and your reason stay recorded. ' +
        'parked or retry: always (an attempt that starts first wins). failed: while no fan-in is running. launched: while no fan-in is running and once its run ended or was deleted; ' +
          'refused with no recorded run (run `cdf fan-in` first, which finds or fails that attempt). ' +
        'pending, succeeded, abandoned: refused. A refusal names the state and the next step and changes nothing.',
    )
    .argument('<runKey>', 'the fan-in run key (see `cdf batches list`)')
    .argument('<batch>', 'the batch number', parseBatchNumber)
    .requiredOption('--reason <text>', 'why (kept with the batch as its audit record)')
    .action(async (runKey: string, batchNumber: number, options: { reason: string }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      const result = await withClient(config, (client) => runBatchCommand(client, config, { action: 'abandon', runKey, batchNumber, reason: options.reason }));
      if (result.refused) throw new OperationFailedError(`abandon refused: ${result.refused}`);
      print(command, result.batches[0], `batch ${batchNumber} of ${runKey} abandoned (${options.reason}); its ${result.batches[0]!.ids} ids stay in the batch table`);
    });

  program
    .command('purge')
    .description('Delete what the worker\'s retention settings let go (old dispatched registry rows, finished batches, old fan-in windows) and report it; never anything undispatched, open, parked or queued.')
    .option('--dry-run', 'count what would be deleted; delete nothing')
    .action(async (options: { dryRun?: boolean }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      const report = await withClient(config, async (client) => {
        try {
          return await runPurge(client, config, { dryRun: Boolean(options.dryRun) });
        } catch (error) {
          if (error instanceof WorkflowFailedError) throw new OperationFailedError(`the purge failed: ${error.cause?.message ?? error.message}`);
          throw error;
        }
      });
      print(command, report, formatPurgeReport(report));
    });

  program
    .command('bundle-vars')
    .description('Print the --var flags for `databricks bundle deploy` (databricks/) that match this config: tables, fanIn.concurrency, warehouse.')
    .action((_options, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      const vars = bundleVariables(config);
      const partial = tablesWithoutCatalog(config);
      if (partial.length > 0 && !globals(command).json) {
        output.err(`cdf: warning: ${partial.join(', ')} name no catalog; the job resolves them in its compute's default catalog. Give catalog.schema.table names in the config you deploy with.\n`);
      }
      print(command, vars, formatBundleVarFlags(vars));
    });

  const sources = program.command('sources').description('The source workflows, kept in line with the config\'s sources.');
  sources
    .command('apply')
    .description('Start a workflow for every configured source that has none running; report (or terminate or pause) running source workflows the config no longer names; prints the plan.')
    .option('--dry-run', 'print the plan only; change nothing')
    .addOption(new Option('--removed <action>', 'what to do with running source workflows not in the config').choices(['report', 'terminate', 'pause']).default('report'))
    .action(async (options: { dryRun?: boolean; removed: RemovedAction }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      await withClient(config, async (client) => {
        const plan = await planSources(client, config);
        const apply = !options.dryRun && !isEmptySourcePlan(plan, options.removed);
        // A source workflow's start is refused while its search attributes are missing on the namespace.
        if (apply) await ensureSearchAttributes(client.connection, config.temporal.namespace);
        if (apply) await applySourcePlan(client, config, plan, options.removed);
        const footer = options.dryRun ? 'dry run: nothing changed' : apply ? 'applied' : 'nothing to change';
        print(command, { plan, removedAction: options.removed, dryRun: Boolean(options.dryRun), applied: apply }, `${formatSourcePlan(plan, options.removed)}\n${footer}`);
      });
    });

  const schedules = program.command('schedules').description('Temporal Schedules from the config\'s schedules section.');
  schedules
    .command('apply')
    .description('Create, update, pause/unpause and delete this prefix\'s schedules so that they match the config; prints the plan.')
    .option('--dry-run', 'print the plan only; change nothing')
    .action(async (options: { dryRun?: boolean }, command: Command) => {
      const config = loadConfig({ file: globals(command).config });
      await withClient(config, async (client) => {
        const plan = await planSchedules(client, config);
        const apply = !options.dryRun && plan.conflicts.length === 0 && !isEmptyPlan(plan);
        if (apply) await applyPlan(client, plan);
        const footer = options.dryRun ? 'dry run: nothing changed' : apply ? 'applied' : plan.conflicts.length > 0 ? 'not applied: resolve the conflicts above' : 'nothing to change';
        print(command, { plan, dryRun: Boolean(options.dryRun), applied: apply }, `${formatPlan(plan)}\n${footer}`);
        if (plan.conflicts.length > 0) throw new ScheduleConflictError(plan.conflicts);
      });
    });

  return program;
}

/** Connects, runs `action`, and always closes the connection so the process can end. */
async function withClient<T>(config: Config, action: (client: Client) => Promise<T>): Promise<T> {
  const connection = await connectClient(config, { connectTimeout: '5s' });
  try {
    return await action(new Client({ connection, namespace: config.temporal.namespace }));
  } finally {
    await connection.close();
  }
}

function describeStart(start: FanInStart): string {
  return start.joined
    ? `joined the fan-in already running (${start.workflowId}); there is only ever one, and changes captured after it opened its window wait for the next one`
    : `started fan-in ${start.workflowId}`;
}

function describeSummary(summary: FanInSummary): string {
  const requeued = summary.requeued.succeeded + summary.requeued.parked;
  const parked = summary.batchesParked + summary.requeued.parked;
  if (summary.outcome === 'nothing to dispatch') return `fan-in ${summary.runKey}: nothing to dispatch`;
  return (
    `fan-in ${summary.runKey}: ${plural(summary.changedIds, 'changed id')} from ${plural(summary.sources, 'source')} in ${plural(summary.batches, 'batch', 'batches')}: ` +
    `${summary.batchesSucceeded} succeeded, ${summary.batchesParked} parked${requeued ? `; ${plural(requeued, 'requeued batch', 'requeued batches')}: ${summary.requeued.succeeded} succeeded, ${summary.requeued.parked} parked again` : ''}; ` +
    `${summary.committed ? 'window committed' : 'window not committed'}` +
    (parked ? '. Parked batches: `cdf batches list`, then `cdf batches retry|abandon <runKey> <batch>`' : '')
  );
}

function parseStatuses(value: string): BatchStatus[] {
  if (value === 'all') return [];
  const statuses = value.split(',').map((s) => s.trim());
  const unknown = statuses.filter((s) => !(BATCH_STATUSES as readonly string[]).includes(s));
  if (unknown.length) throw new InvalidArgumentError(`unknown status ${unknown.join(', ')}: use ${BATCH_STATUSES.join(', ')} or all`);
  return statuses as BatchStatus[];
}

function parseLimit(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) throw new InvalidArgumentError('must be a whole number from 1 to 1000, e.g. --limit 50');
  return Number(value);
}

function parseBatchNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) throw new InvalidArgumentError('must be a batch number, a whole number from 1');
  return Number(value);
}

function parseVersion(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('must be a whole number of 0 or more (a Delta version), e.g. --from 12');
  }
  return Number(value);
}

function knownSource(config: Config, source: string): string {
  if (config.sources.some((s) => s.name === source)) return source;
  throw new OperationFailedError(`source ${source} is not in the config (known: ${config.sources.map((s) => s.name).join(', ')}): check the name or add it to sources`);
}

/** A closed workflow still answers queries (from its history), so its state is read first: it says `not running`. */
async function queryStatus(client: Client, config: Config, source: string): Promise<StatusRow> {
  const workflowId = sourceWorkflowId(config, source);
  const handle = client.workflow.getHandle(workflowId);
  try {
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') {
      return { source, workflowId, running: false, closed: { status: description.status.name, at: description.closeTime?.toISOString() ?? null } };
    }
    return { ...(await handle.query(sourceStatusQuery)), source, workflowId, running: true };
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return { source, workflowId, running: false, closed: null };
    throw error;
  }
}

function describeClosed(closed: { status: string; at: string | null } | null): string {
  return closed ? `${closed.status.toLowerCase()}${closed.at ? ` at ${closed.at}` : ''}` : 'no such workflow';
}

function notRunning(workflowId: string, source: string, closed: { status: string; at: string | null } | null = null): OperationFailedError {
  return new OperationFailedError(
    `the workflow of source ${source} (${workflowId}) is not running (${describeClosed(closed)}): start it again with \`cdf sources apply\` (npm start also starts every source that is not running)`,
  );
}

function asNotRunning(error: unknown, workflowId: string, source: string): unknown {
  return error instanceof WorkflowNotFoundError ? notRunning(workflowId, source) : error;
}

/** One line per source: state, offset, latest version, lag and what an operator should know. */
export function formatStatusTable(rows: StatusRow[]): string {
  const table = [['SOURCE', 'STATE', 'OFFSET', 'LATEST', 'LAG', 'LAG_S', 'CYCLES', 'NOTE']];
  for (const row of rows) {
    if (!row.running) {
      table.push([row.source, 'not running', '-', '-', '-', '-', '-', `${row.workflowId}: ${describeClosed(row.closed)}`]);
      continue;
    }
    const state = row.paused ? 'paused' : row.blocked ? 'blocked' : row.retrying ? 'retrying' : 'capturing';
    const note = row.paused
      ? `paused: ${row.paused.reason}`
      : row.blocked
        ? `${row.blocked.type}: ${row.blocked.remedy}`
        : row.retrying
          ? `${row.retrying.type} (${row.retrying.attempts} attempts since ${row.retrying.since}): ${row.retrying.message.slice(0, 200)}`
          : row.pendingReplay
          ? `replay from ${row.pendingReplay.fromVersion} pending`
          : row.lastRejected
            ? `last rejected ${row.lastRejected.handler} at ${row.lastRejected.at}: ${row.lastRejected.reason}`
            : '';
    const text = (value: number | null) => (value === null ? '-' : String(value));
    table.push([row.source, state, text(row.offsetVersion), text(row.latestVersion), text(row.lagVersions), text(row.lagSeconds), String(row.cyclesCompleted), note]);
  }
  const widths = table[0]!.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
  return table.map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n');
}

if (require.main === module) {
  void runCli(process.argv).then((code) => {
    process.exitCode = code;
  });
}

/** What the replay command reports, as JSON. */
function replayOutcome(accepted: ReplayAccepted & { paused: SourceStatus['paused'] }) {
  const { fromVersion, requestedFromVersion, redispatch, redispatchFromVersion, redispatchMarked, requestsMerged, previousOffset } = accepted;
  return { fromVersion, requestedFromVersion, redispatch, redispatchFromVersion, redispatchMarked, requestsMerged, previousOffset };
}

/**
 * What the replay command says: the replay that was applied (merged with requests that arrived
 * before it ran, if any), and what the next fan-in dispatches, as it is, not as asked.
 */
function replayText(source: string, accepted: ReplayAccepted & { paused: SourceStatus['paused'] }): string {
  const merged =
    accepted.requestsMerged > 1
      ? ` (merged with ${accepted.requestsMerged - 1} other request${accepted.requestsMerged > 2 ? 's' : ''} that arrived before it ran; you asked for version ${accepted.requestedFromVersion})`
      : '';
  const from = `version ${accepted.redispatchFromVersion}`;
  const dispatch = !accepted.redispatch
    ? 'the next fan-in dispatches what was not dispatched yet'
    : accepted.queued
      ? `the ids changed from ${from} on are dispatched again if any of them had been`
      : accepted.redispatchMarked
        ? `the next fan-in dispatches every id changed from ${from} on again`
        : `nothing from ${from} on had been dispatched yet, so nothing is dispatched twice: the next fan-in dispatches it once`;
  if (accepted.queued) {
    return `${source}: replay from version ${accepted.fromVersion}${merged} accepted (offset ${accepted.previousOffset ?? 'none'}), but the source is paused (${accepted.paused?.reason ?? 'paused'}): it is applied when you resume it (\`cdf resume ${source}\`); ${dispatch}`;
  }
  return `${source}: replay from version ${accepted.fromVersion}${merged} applied (offset was ${accepted.previousOffset ?? 'none'}); capture from version ${accepted.fromVersion} runs now; ${dispatch}`;
}
