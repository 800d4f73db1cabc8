import { ApplicationFailure, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities, PurgeReport } from '../activities';
import { PURGED_TABLES, purgeCutoffOf, type PurgeCounts, type PurgedTable } from '../lakehouse/port';

const settings = proxyActivities<Activities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 5 } });

export interface PurgeInput {
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
}

const COUNTED: Record<PurgedTable, Exclude<keyof PurgeCounts, 'optimized'>> = {
  registry: 'registryRows',
  changedIds: 'changedIdsRows',
  batches: 'batchRows',
  batchStates: 'batchStates',
  fanInRuns: 'fanInRuns',
};

/**
 * The retention purge (`cdf purge`, the `schedules.purge` schedule): per table, in the order the
 * invariants need (see PURGED_TABLES), counts what the worker's `retention` settings let go, then
 * deletes it; then compacts the tables. Returns what it deleted, which shows as the workflow's
 * result and in the schedule's recent actions.
 */
export async function purge(input: PurgeInput = {}): Promise<PurgeReport> {
  if (typeof input !== 'object' || input === null || (input.dryRun !== undefined && typeof input.dryRun !== 'boolean')) {
    throw ApplicationFailure.nonRetryable('expected {} or {"dryRun": true}', 'InvalidPurgeInput');
  }
  const dryRun = input.dryRun ?? false;
  const plan = await settings.planPurge({ asOf: new Date().toISOString() });
  const sql = proxyActivities<Activities>({
    startToCloseTimeout: `${plan.activityTimeoutSeconds} seconds`,
    heartbeatTimeout: `${plan.heartbeatTimeoutSeconds} seconds`,
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
  });
  const counts: PurgeCounts = { registryRows: 0, changedIdsRows: 0, batchRows: 0, batchStates: 0, fanInRuns: 0, optimized: [] };
  for (const [index, table] of PURGED_TABLES.entries()) {
    setCurrentDetails(`${dryRun ? 'Counting' : 'Purging'} ${table} (${index + 1} of ${PURGED_TABLES.length})`);
    const request = { table, before: purgeCutoffOf(table, plan.cutoffs) };
    const counted = await sql.countExpiredRows(request);
    // The count stands for a delete whose answer was lost (its retry deletes nothing more).
    counts[COUNTED[table]] = dryRun || counted === 0 ? counted : Math.max(counted, await sql.deleteExpiredRows(request));
  }
  if (!dryRun) {
    setCurrentDetails('Compacting the purged tables');
    for (const table of PURGED_TABLES) {
      const compacted = await sql.compactPurgedTable({ table });
      if (compacted) counts.optimized.push(compacted);
    }
  }
  const report: PurgeReport = { ...counts, dryRun, asOf: plan.asOf, cutoffs: plan.cutoffs, retention: plan.retention };
  setCurrentDetails(`${dryRun ? 'Would delete' : 'Deleted'}: ${describePurge(report)}`);
  return report;
}

/** "12 registry rows, 0 changed-ids rows, 3 batches (30 ids), 2 fan-in windows". */
export function describePurge(report: PurgeReport): string {
  return `${report.registryRows} registry rows, ${report.changedIdsRows} changed-ids rows, ${report.batchStates} batches (${report.batchRows} ids), ${report.fanInRuns} fan-in windows`;
}
