import type { Client } from '@temporalio/client';
import type { PurgeReport } from '../activities';
import type { Config } from '../config/schema';
import type { PurgeInput } from '../workflows/purge';

/** Runs the retention purge as the short `purge` workflow (it stays in the workflow list as the record) and returns its report. */
export async function runPurge(client: Client, config: Config, input: PurgeInput): Promise<PurgeReport> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return client.workflow.execute('purge', {
    workflowId: `${config.temporal.workflowIdPrefix}-purge-${input.dryRun ? 'dry-run-' : ''}${stamp}`,
    taskQueue: config.temporal.taskQueue,
    args: [input],
    staticSummary: input.dryRun ? 'Retention purge, dry run' : 'Retention purge',
  }) as Promise<PurgeReport>;
}

/** What was (or would be) deleted, table by table, with the cutoffs it used. */
export function formatPurgeReport(report: PurgeReport): string {
  const { cutoffs, retention } = report;
  const rows: [string, string][] = [
    [`registry rows dispatched and changed before ${cutoffs.registryBefore} (${retention.registryDays} days)`, String(report.registryRows)],
    ['changed-ids rows whose every change went with them', String(report.changedIdsRows)],
    [`batches succeeded before ${cutoffs.batchesBefore} (${retention.batchDays} days)`, `${report.batchStates} (${report.batchRows} ids)`],
    [`fan-in windows committed before ${cutoffs.fanInRunsBefore} (${retention.fanInRunDays} days)`, String(report.fanInRuns)],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [
    report.dryRun ? 'dry run: nothing was deleted; a purge now would delete' : 'deleted',
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
    '  kept: every change not dispatched yet, open runs, batches pending, failed, parked, queued for retry or abandoned, and each source\'s latest fan-in window',
  ];
  if (report.optimized.length > 0) lines.push(`  optimized: ${report.optimized.join(', ')}`);
  return lines.join('\n');
}
