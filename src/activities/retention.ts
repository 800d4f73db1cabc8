import type { Config } from '../config/schema';
import type { Lakehouse, PurgeCounts, PurgeCutoffs, PurgedTable } from '../lakehouse/port';
import { classified } from './failures';

export interface RetentionDeps {
  config: Config;
  lakehouse: Lakehouse;
}

/** What a purge works with, from the worker's config: its cutoffs and the SQL activities' timeouts. */
export interface PurgePlan {
  asOf: string;
  cutoffs: PurgeCutoffs;
  retention: { registryDays: number; batchDays: number; fanInRunDays: number };
  activityTimeoutSeconds: number;
  heartbeatTimeoutSeconds: number;
}

export interface PurgeTableRequest {
  table: PurgedTable;
  /** The table's cutoff: rows older than this may go. */
  before: string;
}

export interface PurgeReport extends PurgeCounts {
  dryRun: boolean;
  asOf: string;
  cutoffs: PurgeCutoffs;
  /** The worker's retention settings the cutoffs come from. */
  retention: PurgePlan['retention'];
}

const DAY_MS = 86_400_000;

/** Cutoffs from the worker's retention settings: rows older than these may go. */
export function purgeCutoffs(retention: Config['retention'], asOf: string): PurgeCutoffs {
  const now = Date.parse(asOf);
  if (Number.isNaN(now)) throw new TypeError(`asOf must be an ISO-8601 instant, got ${JSON.stringify(asOf)}`);
  const before = (days: number) => new Date(now - Math.round(days * DAY_MS)).toISOString();
  return { registryBefore: before(retention.registryDays), batchesBefore: before(retention.batchDays), fanInRunsBefore: before(retention.fanInRunDays) };
}

/**
 * The purge's steps, one table each, so that a retry repeats one statement, not the whole purge,
 * and a count recorded before a delete survives a delete whose answer was lost.
 */
export function createRetentionActivities({ config, lakehouse }: RetentionDeps) {
  return {
    async planPurge(request: { asOf: string }): Promise<PurgePlan> {
      const { registryDays, batchDays, fanInRunDays } = config.retention;
      return {
        asOf: request.asOf,
        cutoffs: purgeCutoffs(config.retention, request.asOf),
        retention: { registryDays, batchDays, fanInRunDays },
        activityTimeoutSeconds: config.worker.activityTimeoutSeconds,
        heartbeatTimeoutSeconds: config.worker.heartbeatTimeoutSeconds,
      };
    },

    async countExpiredRows(request: PurgeTableRequest): Promise<number> {
      return classified(() => lakehouse.countExpired(request.table, request.before));
    },

    /** Safe to run again: a second run finds nothing more to delete. */
    async deleteExpiredRows(request: PurgeTableRequest): Promise<number> {
      return classified(() => lakehouse.deleteExpired(request.table, request.before));
    },

    async compactPurgedTable(request: { table: PurgedTable }): Promise<string | null> {
      return classified(() => lakehouse.compactTable(request.table));
    },
  };
}
