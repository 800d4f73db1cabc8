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
 * Asks a source to capture now, repeatedly, until its offset reaches the latest version it saw
 * (a long backlog can take several cycles) or it reports itself blocked.
 */
export async function captureUntilCaughtUp(client: Client, config: Config, source: string, onCycle: (report: CycleReport) => void = () => undefined): Promise<CycleReport> {
  const handle = client.workflow.getHandle(sourceWorkflowId(config, source));
  for (;;) {
    const report = await handle.executeUpdate(captureNowUpdate, { args: [{}] });
    onCycle(report);
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
 * sees its progress every second, `onStart` whether it was started or joined.
 */
export async function runFanIn(
  client: Client,
  config: Config,
  options: { onStatus?: (status: FanInStatus) => void; onStart?: (start: FanInStart) => void } = {},
): Promise<FanInSummary> {
  const start = await startOrJoinFanIn(client, config);
  options.onStart?.(start);
  const onStatus = options.onStatus;
  let finished = false;
  // A query in flight when the result arrives is dropped: its status would be printed after the result.
  const ticker = onStatus && setInterval(() => void start.handle.query(fanInStatusQuery).then((status) => finished || onStatus(status), () => undefined), 1000);
  try {
    return (await start.handle.result()) as FanInSummary;
  } finally {
    finished = true;
    if (ticker) clearInterval(ticker);
  }
}
