import type { Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import { CdfSource } from '../workflows/searchAttributes';
import { captureNowUpdate, fanInStatusQuery, type CycleReport, type FanInStatus } from '../workflows/messages';
import type { FanInSummary } from '../workflows/fanIn';

/** Workflow ids that say what they are: one per source, one per fan-in run. */
export const sourceWorkflowId = (config: Config, source: string) => `${config.temporal.workflowIdPrefix}-source-${source}`;
export const fanInTriggerWorkflowId = (config: Config) => `${config.temporal.workflowIdPrefix}-fan-in-trigger`;
export const fanInWorkflowId = (config: Config, at: Date = new Date()) =>
  `${config.temporal.workflowIdPrefix}-fan-in-${at.toISOString().replace(/[:.]/g, '-')}`;

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

/** Starts one fan-in and returns at once; `handle.result()` waits for its summary. */
export async function startFanIn(client: Client, config: Config, options: { workflowId?: string } = {}) {
  return client.workflow.start('fanIn', {
    workflowId: options.workflowId ?? fanInWorkflowId(config),
    taskQueue: config.temporal.taskQueue,
    args: [{}],
    staticSummary: 'Dispatch changed ids to downstream jobs',
  });
}

/** Runs one fan-in to completion and returns its summary; `onStatus` sees its progress every second. */
export async function runFanIn(
  client: Client,
  config: Config,
  options: { workflowId?: string; onStatus?: (status: FanInStatus) => void } = {},
): Promise<FanInSummary> {
  const handle = await startFanIn(client, config, options);
  const onStatus = options.onStatus;
  const ticker = onStatus && setInterval(() => void handle.query(fanInStatusQuery).then(onStatus, () => undefined), 1000);
  try {
    return (await handle.result()) as FanInSummary;
  } finally {
    if (ticker) clearInterval(ticker);
  }
}
