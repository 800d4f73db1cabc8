import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError } from '../errors';
import type { JobLauncher } from '../jobs/port';
import { SqlEngineError } from '../lakehouse/errors';
import type { Lakehouse } from '../lakehouse/port';
import type { FaultInjector } from './injector';

/** Lakehouse calls that run SQL; the others (close, ensurePipelineTables) are left alone. */
const SQL_CALLS = [
  'describeSource',
  'latestCommit',
  'readOffset',
  'summarizeChanges',
  'appendRangeToRegistry',
  'mergeOffset',
  'rewindOffset',
  'refreshChangedIds',
  'openFanInRun',
  'snapshotBatches',
  'pendingBatches',
  'requeuedBatches',
  'readBatchState',
  'batchStatusCounts',
  'claimBatchAttempt',
  'recordBatchLaunch',
  'recordBatchOutcome',
  'commitFanInRun',
  'countExpired',
  'deleteExpired',
  'compactTable',
] as const;

/**
 * The lakehouse with faults injected at its boundary, thrown as the warehouse throws them:
 * a Delta write conflict (SQLSTATE 2D521) before the statement; a dropped connection either
 * before the statement or after it ran (the write landed, the answer was lost: the retry must be
 * idempotent); a slow statement that outlasts its activity's timeout, then still runs (a zombie
 * the retry overtakes); and a permission error, which is permanent.
 */
export function withLakehouseFaults<L extends Lakehouse>(lakehouse: L, faults: FaultInjector): L {
  const wrapped = Object.create(lakehouse) as L;
  for (const name of SQL_CALLS) {
    const call = (lakehouse[name] as (...args: unknown[]) => Promise<unknown>).bind(lakehouse);
    (wrapped as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      if (faults.roll('sqlPermissionDenied', name)) {
        throw new SqlEngineError(`[INSUFFICIENT_PERMISSIONS] Insufficient privileges: User does not have SELECT on the table (injected in ${name}). SQLSTATE: 42501`, 'INSUFFICIENT_PERMISSIONS', '42501');
      }
      if (faults.roll('sqlConflict', name)) {
        throw new SqlEngineError(
          `[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Transaction conflict detected: a concurrent WRITE added data (injected in ${name}). SQLSTATE: 2D521`,
          'DELTA_CONCURRENT_APPEND',
          '2D521',
        );
      }
      if (faults.roll('sqlSlowQuery', name)) await sleep(faults.slowQuerySeconds * 1000);
      if (faults.roll('sqlDroppedConnection', name)) {
        if (faults.coin()) await call(...args);
        throw new Error(`read ECONNRESET: the connection to the warehouse was dropped (injected in ${name})`);
      }
      return call(...args);
    };
  }
  return wrapped;
}

/**
 * The job launcher with Jobs API faults: 429 and 503 answers and dropped connections, on launch
 * and on polling. A fault on launch strikes after the run was created half of the time, as when
 * the answer to run-now is lost: the retry's idempotency token must find that same run.
 */
export function withJobFaults(jobs: JobLauncher, faults: FaultInjector): JobLauncher {
  const inject = async <T>(operation: string, call: () => Promise<T>): Promise<T> => {
    const kind = faults.roll('jobsRateLimited', operation)
      ? 'DATABRICKS_HTTP_429'
      : faults.roll('jobsServerError', operation)
        ? 'DATABRICKS_HTTP_503'
        : faults.roll('jobsDroppedConnection', operation)
          ? 'DATABRICKS_NETWORK_ECONNRESET'
          : null;
    if (!kind) return call();
    if (faults.coin()) await call();
    throw new TransientError(kind, `${operation} failed: ${kind} (injected)`);
  };
  return {
    launch: (request) => inject('jobs/run-now', () => jobs.launch(request)),
    getRun: (runId) => inject('jobs/runs/get', () => jobs.getRun(runId)),
    cancel: (runId) => jobs.cancel(runId),
    close: () => jobs.close(),
  };
}
