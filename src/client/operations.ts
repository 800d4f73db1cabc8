import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  isGrpcServiceError,
  WorkflowFailedError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../config/schema';
import { CdfSource } from '../workflows/searchAttributes';
import { captureNowUpdate, fanInStatusQuery, pollNowSignal, sourceStatusQuery, type CycleReport, type FanInStatus } from '../workflows/messages';
import type { FanInSummary } from '../workflows/fanIn';

/**
 * Workflow ids that say what they are: one per source, and one for every fan-in: Temporal runs at
 * most one execution per id, which is what keeps fan-ins from dispatching at the same time.
 */
export const sourceWorkflowId = (config: Config, source: string) => `${config.temporal.workflowIdPrefix}-source-${source}`;
export const fanInTriggerWorkflowId = (config: Config) => `${config.temporal.workflowIdPrefix}-fan-in-trigger`;
export const fanInWorkflowId = (config: Config) => `${config.temporal.workflowIdPrefix}-fan-in`;

/** Starts the long-lived ingest workflow of every configured source; existing ones are kept. */
export async function startSourceWorkflows(client: Client, config: Config): Promise<void> {
  for (const source of config.sources) {
    await client.workflow.start('sourceIngest', {
      workflowId: sourceWorkflowId(config, source.name),
      taskQueue: config.temporal.taskQueue,
      args: [{ source: source.name }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `CDF capture of ${source.table}`,
      typedSearchAttributes: [{ key: CdfSource, value: source.name }],
    });
  }
}

/**
 * `call` with its requests cancelled when `signal` aborts. A stop must not leave a request pending:
 * the client retries one that fails once the server is gone, on a timer, outside any await, and on
 * a closed connection that retry throws. The client cancels on the abort event only, so no request
 * is started once the signal has aborted. Each call gets a signal of its own: the client adds a
 * listener per request and never removes it, which on a long-lived signal (a run's stop signal,
 * a status query every second) would pile up.
 */
async function cancellable<T>(client: Client, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
  if (!signal) return call();
  if (signal.aborted) throw new Error('stopped before the request was sent');
  const own = new AbortController();
  const abort = () => own.abort();
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await client.withAbortSignal(own.signal, call);
  } finally {
    signal.removeEventListener('abort', abort);
  }
}

/**
 * gRPC codes of an update the server lost or refused while the workflow was busy: UNAVAILABLE
 * ("workflow update was aborted", after the client's own retries), FAILED_PRECONDITION
 * (WorkflowNotReady: the workflow task that carried the update failed, e.g. on a worker that died
 * or went wrong mid-task; or too many updates in flight), ABORTED, RESOURCE_EXHAUSTED.
 */
const LOST_UPDATE_CODES = new Set([14, 9, 10, 8]);
/** Failures the server itself puts on an update it accepted but could not finish (the run closed or continued as new). */
const LOST_UPDATE_FAILURES = new Set(['AcceptedUpdateCompletedWorkflow', 'UnprocessedUpdate']);

/** True for an update that was lost or refused while the workflow was busy: sending it again can succeed. */
export function isLostUpdate(error: unknown): boolean {
  if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return isGrpcServiceError(error.cause) && error.cause.code === 4; // DEADLINE_EXCEEDED, not a cancel
  if (error instanceof WorkflowUpdateFailedError) return error.cause instanceof ApplicationFailure && LOST_UPDATE_FAILURES.has(error.cause.type ?? '');
  if (error instanceof ServiceError) return isGrpcServiceError(error.cause) && LOST_UPDATE_CODES.has(error.cause.code);
  return false;
}

/** `ServiceError: Workflow Update failed ← Error: 9 FAILED_PRECONDITION: …`: an error with its causes, for a message. */
export function describeErrorChain(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error && parts.length < 5; e = e.cause) parts.push(`${e.name}: ${e.message}`);
  return parts.length ? parts.join(' ← ') : String(error);
}

/** No capture cycle of a source could be confirmed: its update kept failing and its status did not show it caught up. */
export class CaptureNotConfirmedError extends Error {
  constructor(
    readonly source: string,
    readonly workflowId: string,
    reason: string,
    cause: unknown,
  ) {
    super(
      `${source}: no capture cycle could be confirmed: ${reason}; the captureNow update failed with ${describeErrorChain(cause)}. ` +
        `The workflow ${workflowId} goes on by itself: see \`bin/cdf status ${source}\` and the worker's log, then run this again.`,
      { cause },
    );
    this.name = 'CaptureNotConfirmedError';
  }
}

/** Sends of one captureNow that the server lost, before falling back to watching the status (1 + 2 + 4 s apart). */
const CAPTURE_UPDATE_ATTEMPTS = 4;
/** The fallback gives up after this long without a cycle completing or the offset moving. */
const FALLBACK_IDLE_LIMIT_MS = 120_000;

/**
 * Asks a source to capture now, repeatedly, until its offset reaches the latest version it saw
 * (a long backlog can take several cycles) or it reports itself blocked. An update the server
 * loses or refuses while the workflow's tasks are retried (a worker died mid-task) is sent again
 * with a backoff, under the same update id so that one the server did accept is not run twice;
 * after that, a pollNow signal and the status query show when the offset has caught up.
 * `signal` cancels it; CaptureNotConfirmedError says why it could not confirm a cycle.
 */
export async function captureUntilCaughtUp(
  client: Client,
  config: Config,
  source: string,
  options: { onCycle?: (report: CycleReport) => void; signal?: AbortSignal } = {},
): Promise<CycleReport> {
  const workflowId = sourceWorkflowId(config, source);
  const handle = client.workflow.getHandle(workflowId);
  for (;;) {
    const updateId = randomUUID();
    let report: CycleReport | undefined;
    for (let attempt = 1; !report; attempt++) {
      try {
        report = await cancellable(client, options.signal, () => handle.executeUpdate(captureNowUpdate, { args: [{}], updateId }));
      } catch (error) {
        if (!isLostUpdate(error) || options.signal?.aborted) throw error;
        if (attempt >= CAPTURE_UPDATE_ATTEMPTS) return waitForOffset(client, handle, source, workflowId, error, options);
        await sleep(1000 * 2 ** (attempt - 1), undefined, { signal: options.signal });
      }
    }
    options.onCycle?.(report);
    if (report.blocked || report.latestVersion === null || report.offsetVersion === report.latestVersion) return report;
  }
}

/**
 * The fallback when captureNow cannot get through: a pollNow signal (recorded in the history at
 * once, so it is not lost with a workflow task) starts a cycle, and the status query shows its
 * report once the offset reached the latest version (or blocked). A cycle already running when
 * the first signal arrived may have read the latest version before the caller's commits, so the
 * answer is the second cycle completed since: pollNow is sent again once the first has completed,
 * and the second starts after it.
 */
async function waitForOffset(
  client: Client,
  handle: WorkflowHandle,
  source: string,
  workflowId: string,
  updateError: unknown,
  options: { onCycle?: (report: CycleReport) => void; signal?: AbortSignal },
): Promise<CycleReport> {
  const status = () => cancellable(client, options.signal, () => handle.query(sourceStatusQuery));
  let before: number | null = null;
  /** pollNow signals sent: the first starts a cycle; the second, once a cycle has completed, one that surely began after the first. */
  let signalled = 0;
  let progress = { cycles: -1, offset: null as number | null, at: Date.now() };
  for (;;) {
    try {
      before ??= (await status()).cyclesCompleted;
      if (signalled === 0) await cancellable(client, options.signal, () => handle.signal(pollNowSignal, {}));
      signalled = Math.max(signalled, 1);
      const now = await status();
      if (signalled === 1 && now.cyclesCompleted > before) {
        await cancellable(client, options.signal, () => handle.signal(pollNowSignal, {}));
        signalled = 2;
      }
      const report = now.lastCycle;
      if (now.cyclesCompleted > before + 1 && report && (now.blocked || report.latestVersion === null || report.offsetVersion === report.latestVersion)) {
        options.onCycle?.(report);
        return report;
      }
      if (now.cyclesCompleted !== progress.cycles || now.offsetVersion !== progress.offset) progress = { cycles: now.cyclesCompleted, offset: now.offsetVersion, at: Date.now() };
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // A query also fails while the workflow's task is retried: it counts as no progress.
    }
    if (Date.now() - progress.at > FALLBACK_IDLE_LIMIT_MS) {
      throw new CaptureNotConfirmedError(source, workflowId, `its status showed no cycle completing and no offset moving for ${FALLBACK_IDLE_LIMIT_MS / 1000} s`, updateError);
    }
    await sleep(1000, undefined, { signal: options.signal });
  }
}

export interface FanInStart {
  handle: WorkflowHandle;
  workflowId: string;
  /** True when a fan-in was already running: this request joined it instead of starting one. */
  joined: boolean;
}

/**
 * Starts the fan-in, or joins the one already running (every way of starting a fan-in goes
 * through this one workflow id). A joined fan-in opened its window before this request, so
 * changes captured since wait for the next fan-in.
 */
export async function startOrJoinFanIn(client: Client, config: Config): Promise<FanInStart> {
  const workflowId = fanInWorkflowId(config);
  try {
    const handle = await client.workflow.start('fanIn', {
      workflowId,
      taskQueue: config.temporal.taskQueue,
      args: [{}],
      workflowIdConflictPolicy: 'FAIL',
      staticSummary: 'Dispatch changed ids to downstream jobs',
    });
    return { handle, workflowId, joined: false };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    return { handle: client.workflow.getHandle(workflowId), workflowId, joined: true };
  }
}

/**
 * Runs one fan-in to completion (or joins the running one) and returns its summary; `onStatus`
 * sees its progress every second, `onStart` whether it was started or joined. `signal` stops the
 * waiting (the fan-in itself goes on).
 */
export async function runFanIn(
  client: Client,
  config: Config,
  options: { onStatus?: (status: FanInStatus) => void; onStart?: (start: FanInStart) => void; signal?: AbortSignal } = {},
): Promise<FanInSummary> {
  const { signal, onStatus } = options;
  const start = await cancellable(client, signal, () => startOrJoinFanIn(client, config));
  options.onStart?.(start);
  let finished = false;
  // A query in flight when the result arrives is dropped: its status would be printed after the result.
  const query = () => void cancellable(client, signal, () => start.handle.query(fanInStatusQuery)).then((status) => finished || onStatus!(status), () => undefined);
  const ticker = onStatus && setInterval(query, 1000);
  try {
    return (await cancellable(client, signal, () => start.handle.result())) as FanInSummary;
  } finally {
    finished = true;
    if (ticker) clearInterval(ticker);
  }
}

/** What runOwnFanIn dispatched: the fan-in that covers the call, and the one it joined and waited for first. */
export interface OwnFanInReport {
  /** A fan-in that opened its window after the call began (this call's own, or one started after the joined one ended). */
  own: FanInSummary;
  /** The fan-in that was already running when the call began, if any and if it succeeded. */
  joined: FanInSummary | null;
}

/**
 * Dispatches everything captured before the call. A fan-in already running may have opened its
 * window before the capture (a trigger's, a schedule's, or one a killed run left), so it is
 * joined to its end (`onJoined` sees it start, `onJoinedEnd` its summary or failure) and then a
 * fan-in is started: Temporal runs one at a time, so the one that then runs, started or joined,
 * began after the joined one ended and covers what was captured. `signal` stops the waiting.
 */
export async function runOwnFanIn(
  client: Client,
  config: Config,
  options: {
    onStatus?: (status: FanInStatus) => void;
    onJoined?: (start: FanInStart) => void;
    onJoinedEnd?: (outcome: FanInSummary | Error) => void;
    signal?: AbortSignal;
  } = {},
): Promise<OwnFanInReport> {
  let joinedRunning: FanInStart | undefined;
  const onStart = (start: FanInStart) => {
    if (!start.joined) return;
    joinedRunning = start;
    options.onJoined?.(start);
  };
  let first: FanInSummary;
  try {
    first = await runFanIn(client, config, { onStatus: options.onStatus, signal: options.signal, onStart });
  } catch (error) {
    // A joined fan-in that failed leaves its run open: the next fan-in resumes it.
    if (!joinedRunning || !(error instanceof WorkflowFailedError)) throw error;
    options.onJoinedEnd?.(error);
    return { own: await runFanIn(client, config, { onStatus: options.onStatus, signal: options.signal }), joined: null };
  }
  if (!joinedRunning) return { own: first, joined: null };
  options.onJoinedEnd?.(first);
  return { own: await runFanIn(client, config, { onStatus: options.onStatus, signal: options.signal }), joined: first };
}
