import type { Config } from '../config/schema';
import type { Lakehouse, PurgeCounts, PurgeCutoffs } from '../lakehouse/port';

export interface RetentionDeps {
  config: Config;
  lakehouse: Lakehouse;
}

export interface PurgeRequest {
  dryRun: boolean;
  /** The purge's "now" (the workflow's clock), so a retried activity deletes by the same cutoffs. */
  asOf: string;
}

export interface PurgeReport extends PurgeCounts {
  dryRun: boolean;
  asOf: string;
  cutoffs: PurgeCutoffs;
  /** The worker's retention settings the cutoffs come from. */
  retention: { registryDays: number; batchDays: number; fanInRunDays: number };
}

const DAY_MS = 86_400_000;

/** Cutoffs from the worker's retention settings: rows older than these may go. */
export function purgeCutoffs(retention: Config['retention'], asOf: string): PurgeCutoffs {
  const now = Date.parse(asOf);
  if (Number.isNaN(now)) throw new TypeError(`asOf must be an ISO-8601 instant, got ${JSON.stringify(asOf)}`);
  const before = (days: number) => new Date(now - Math.round(days * DAY_MS)).toISOString();
  return { registryBefore: before(retention.registryDays), batchesBefore: before(retention.batchDays), fanInRunsBefore: before(retention.fanInRunDays) };
}

export function createRetentionActivities({ config, lakehouse }: RetentionDeps) {
  return {
    /**
     * Deletes (or counts) what retention lets go. Safe to run again: a retry after a lost answer
     * deletes nothing more, though its report then counts only what the retry itself deleted.
     */
    async purgeExpired(request: PurgeRequest): Promise<PurgeReport> {
      const { registryDays, batchDays, fanInRunDays } = config.retention;
      const cutoffs = purgeCutoffs(config.retention, request.asOf);
      const counts = await lakehouse.purgeExpired(cutoffs, { dryRun: request.dryRun });
      return { ...counts, dryRun: request.dryRun, asOf: request.asOf, cutoffs, retention: { registryDays, batchDays, fanInRunDays } };
    },
  };
}
