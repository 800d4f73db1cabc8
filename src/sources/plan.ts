import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { sourceWorkflowId, startSourceWorkflows } from '../client/operations';
import type { Config } from '../config/schema';
import { pauseSignal } from '../workflows/messages';
import { CdfSource } from '../workflows/searchAttributes';

/**
 * `cdf sources apply`: the running source workflows follow the config's `sources`, the way
 * `cdf schedules apply` keeps the schedules in line. A source workflow is long-lived and durable,
 * so applying only starts what is missing; one the config no longer names is reported, and
 * terminated or paused only when asked.
 */
export interface SourcePlan {
  /** Configured sources without a running workflow: never started, or ended (terminated, failed ...). */
  start: { source: string; workflowId: string; table: string; previously: string | null }[];
  /** Configured sources whose workflow runs. */
  running: { source: string; workflowId: string }[];
  /** Running source workflows of this prefix and task queue that the config no longer names. */
  removed: { workflowId: string; source: string | null }[];
}

export type RemovedAction = 'report' | 'terminate' | 'pause';

export async function planSources(client: Client, config: Config): Promise<SourcePlan> {
  const plan: SourcePlan = { start: [], running: [], removed: [] };
  for (const source of config.sources) {
    const workflowId = sourceWorkflowId(config, source.name);
    const status = await workflowStatus(client, workflowId);
    if (status === 'RUNNING') plan.running.push({ source: source.name, workflowId });
    else plan.start.push({ source: source.name, workflowId, table: source.table, previously: status });
  }
  const configured = new Set(config.sources.map((source) => sourceWorkflowId(config, source.name)));
  const prefix = sourceWorkflowId(config, '');
  const query = `WorkflowType = "sourceIngest" AND ExecutionStatus = "Running" AND TaskQueue = "${config.temporal.taskQueue}"`;
  for await (const execution of client.workflow.list({ query })) {
    if (!execution.workflowId.startsWith(prefix) || configured.has(execution.workflowId)) continue;
    plan.removed.push({ workflowId: execution.workflowId, source: execution.typedSearchAttributes.get(CdfSource) ?? null });
  }
  plan.removed.sort((a, b) => a.workflowId.localeCompare(b.workflowId));
  return plan;
}

/** Starts the missing source workflows, and terminates or pauses the removed ones when asked. */
export async function applySourcePlan(client: Client, config: Config, plan: SourcePlan, removed: RemovedAction): Promise<void> {
  const missing = new Set(plan.start.map((s) => s.source));
  await startSourceWorkflows(client, { ...config, sources: config.sources.filter((source) => missing.has(source.name)) });
  for (const { workflowId } of plan.removed) {
    const handle = client.workflow.getHandle(workflowId);
    if (removed === 'terminate') await handle.terminate('removed from the config (cdf sources apply --removed terminate)');
    if (removed === 'pause') await handle.signal(pauseSignal, { reason: 'removed from the config (cdf sources apply --removed pause)' });
  }
}

export function isEmptySourcePlan(plan: SourcePlan, removed: RemovedAction): boolean {
  return plan.start.length === 0 && (removed === 'report' || plan.removed.length === 0);
}

export function formatSourcePlan(plan: SourcePlan, removed: RemovedAction): string {
  const width = Math.max(0, ...[...plan.start, ...plan.running, ...plan.removed].map((row) => row.workflowId.length));
  const row = (action: string, workflowId: string, note: string) => `${action.padEnd(10)}${workflowId.padEnd(width + 2)}${note}`.trimEnd();
  const lines = [
    ...plan.start.map((s) => row('start', s.workflowId, `${s.source}: ${s.table}${s.previously ? ` (its last run ended ${s.previously.toLowerCase()})` : ''}`)),
    ...plan.running.map((s) => row('running', s.workflowId, s.source)),
    ...plan.removed.map((s) =>
      row(
        removed === 'report' ? 'removed' : removed,
        s.workflowId,
        removed === 'report'
          ? 'still running, not in the config: left as it is (--removed terminate ends it, --removed pause pauses it)'
          : `not in the config${s.source ? ` (source ${s.source})` : ''}`,
      ),
    ),
  ];
  return lines.length ? lines.join('\n') : 'no sources in the config and no source workflows running';
}

async function workflowStatus(client: Client, workflowId: string): Promise<string | null> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return null;
    throw error;
  }
}
