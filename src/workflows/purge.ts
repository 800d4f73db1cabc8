import { ApplicationFailure, proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities, PurgeReport } from '../activities';

const retention = proxyActivities<Activities>({
  // A purge of a large registry is one DELETE per table plus OPTIMIZE: give it the SQL activities' room.
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
});

export interface PurgeInput {
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
}

/**
 * The retention purge (`cdf purge`, the `schedules.purge` schedule): deletes what the worker's
 * `retention` settings let go and returns what it deleted, which shows as the workflow's result
 * and in the schedule's recent actions.
 */
export async function purge(input: PurgeInput = {}): Promise<PurgeReport> {
  if (typeof input !== 'object' || input === null || (input.dryRun !== undefined && typeof input.dryRun !== 'boolean')) {
    throw ApplicationFailure.nonRetryable('expected {} or {"dryRun": true}', 'InvalidPurgeInput');
  }
  const dryRun = input.dryRun ?? false;
  setCurrentDetails(dryRun ? 'Counting what the retention settings would delete (dry run)' : 'Deleting what the retention settings let go');
  const report = await retention.purgeExpired({ dryRun, asOf: new Date().toISOString() });
  setCurrentDetails(`${dryRun ? 'Would delete' : 'Deleted'}: ${describePurge(report)}`);
  return report;
}

/** "12 registry rows, 0 changed-ids rows, 3 batches (30 ids), 2 fan-in windows". */
export function describePurge(report: PurgeReport): string {
  return `${report.registryRows} registry rows, ${report.changedIdsRows} changed-ids rows, ${report.batchStates} batches (${report.batchRows} ids), ${report.fanInRuns} fan-in windows`;
}
