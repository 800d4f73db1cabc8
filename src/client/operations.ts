import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { Config } from '../config/schema';
import { CdfSource } from '../workflows/searchAttributes';
import { captureNowUpdate, fanInStatusQuery, type CycleReport, type FanInStatus } from '../workflows/messages';
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
 * Asks a source to capture now, repeatedly, until its offset reaches the latest version it saw
 * (a long backlog can take several cycles) or it reports itself blocked. `signal` cancels it.
 */
export async function captureUntilCaughtUp(
  client: Client,
  config: Config,
  source: string,
  options: { onCycle?: (report: CycleReport) => void; signal?: AbortSignal } = {},
): Promise<CycleReport> {
  const handle = client.workflow.getHandle(sourceWorkflowId(config, source));
  for (;;) {
    const report = await cancellable(client, options.signal, () => handle.executeUpdate(captureNowUpdate, { args: [{}] }));
    options.onCycle?.(report);
    if (report.blocked || report.latestVersion === null || report.offsetVersion === report.latestVersion) return report;
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
