import type { BatchAttempt, FanInRunStart } from '../activities';
import type { BatchSnapshot, BatchStatus, SourceWindow } from '../lakehouse/port';
import type { FanInStatus } from './messages';

/** Detail kept per batch in the result; beyond these only counts are returned (the result must stay small). */
const MAX_BATCH_RESULTS = 20;
const MAX_PARKED_REPORTED = 50;

export interface BatchResult {
  runKey: string;
  batchNumber: number;
  status: BatchAttempt['status'];
  /** The attempt whose run this result describes (attempt N ran under the token …-bB-aN). */
  attempts: number;
  runId: string | null;
  runPageUrl: string | null;
  stateMessage: string;
  durationMs: number;
}

export interface FanInTotals {
  /** Batches of the run that this fan-in ran to success or parked (a resumed run's earlier ones excluded). */
  batchesSucceeded: number;
  batchesParked: number;
  /** Downstream runs this fan-in started, relaunches included (runs found from an earlier attempt excluded). */
  launches: number;
  relaunches: number;
  requeuedSucceeded: number;
  requeuedParked: number;
  batchDurationMaxMs: number;
  batchDurationSumMs: number;
  batchDurationCount: number;
}

/** Everything a fan-in carries from one execution to the next (continue-as-new with a cursor). */
export interface FanInCursor {
  run: FanInRunStart;
  snapshot: Pick<BatchSnapshot, 'changedIds' | 'batchCount' | 'windows' | 'sources'>;
  /** The run's own batches up to this number are done. */
  afterBatch: number;
  stage: 'own' | 'requeued';
  committed: boolean;
  /** The run's batches per status once its own stage ended (read from the batch-state table). */
  counts: Partial<Record<BatchStatus, number>> | null;
  totals: FanInTotals;
  parked: BatchResult[];
  batchResults: BatchResult[];
  startedAt: number;
  execution: number;
}

export type FanInOutcome = 'nothing to dispatch' | 'dispatched' | 'dispatched, batches parked';

export interface FanInSummary {
  runKey: string;
  outcome: FanInOutcome;
  /** True when this fan-in finished a run that an earlier fan-in left open. */
  resumed: boolean;
  committed: boolean;
  changedIds: number;
  /** Per source: the version window (afterVersion, throughVersion] and its ids (first 50 sources). */
  windows: SourceWindow[];
  sources: number;
  batches: number;
  /** Of the run's batches: succeeded, parked, abandoned (by an operator), whichever execution ran them. */
  batchesSucceeded: number;
  batchesParked: number;
  batchesAbandoned: number;
  launches: number;
  relaunches: number;
  /** Batches of earlier runs that an operator requeued (`cdf batches retry`) and this fan-in ran. */
  requeued: { succeeded: number; parked: number };
  /** Parked batches (first 50): operate them with `cdf batches retry|abandon <runKey> <batch>`. */
  parkedBatches: BatchResult[];
  durationMs: number;
  batchDurationMs: { mean: number; max: number };
  executions: number;
  /** The first 20 batches to finish, in batch order (run ids, links, durations); never id lists. */
  batchResults: BatchResult[];
  batchResultsOmitted: number;
}

/** The fan-in's state: what the status query shows, what continue-as-new carries and what the result reports. */
export class FanInProgress {
  readonly status: FanInStatus;
  cursor: FanInCursor | null;

  constructor(carried: FanInCursor | undefined) {
    this.cursor = carried ?? null;
    this.status = {
      runKey: carried?.run.runKey ?? null,
      phase: carried ? (carried.stage === 'own' ? 'dispatching' : 'retrying requeued batches') : 'refreshing',
      execution: carried?.execution ?? 1,
      changedIds: carried?.snapshot.changedIds ?? 0,
      batches: carried?.snapshot.batchCount ?? 0,
      batchesSucceeded: carried?.totals.batchesSucceeded ?? 0,
      batchesParked: carried?.totals.batchesParked ?? 0,
      batchesRunning: 0,
      batchesWaitingToRelaunch: 0,
      runningBatches: [],
    };
  }

  opened(run: FanInRunStart, snapshot: BatchSnapshot, startedAt: number): FanInCursor {
    this.cursor = {
      run,
      snapshot: { changedIds: snapshot.changedIds, batchCount: snapshot.batchCount, windows: snapshot.windows, sources: snapshot.sources },
      afterBatch: 0,
      stage: 'own',
      committed: false,
      counts: null,
      totals: {
        batchesSucceeded: 0,
        batchesParked: 0,
        launches: 0,
        relaunches: 0,
        requeuedSucceeded: 0,
        requeuedParked: 0,
        batchDurationMaxMs: 0,
        batchDurationSumMs: 0,
        batchDurationCount: 0,
      },
      parked: [],
      batchResults: [],
      startedAt,
      execution: 1,
    };
    Object.assign(this.status, { runKey: run.runKey, changedIds: snapshot.changedIds, batches: snapshot.batchCount, phase: 'dispatching' });
    return this.cursor;
  }

  /** Counts one attempt; `own` is false for batches of earlier runs that an operator requeued. */
  attempted(attempt: BatchAttempt, own: boolean): void {
    const totals = this.cursor!.totals;
    if (attempt.launched) totals.launches += 1;
    if (attempt.launched && attempt.attempt > 1) totals.relaunches += 1;
    if (attempt.outcome === 'failed' || attempt.outcome === 'jobFailed') return;
    const result = toResult(attempt);
    if (attempt.outcome === 'skipped') {
      // Done by an earlier execution between the page read and this attempt: counted from the table at the end.
    } else if (attempt.outcome === 'parked') {
      this.parked(result, own);
    } else if (own) {
      totals.batchesSucceeded += 1;
    } else {
      totals.requeuedSucceeded += 1;
    }
    if (attempt.outcome !== 'skipped') {
      totals.batchDurationMaxMs = Math.max(totals.batchDurationMaxMs, attempt.durationMs);
      totals.batchDurationSumMs += attempt.durationMs;
      totals.batchDurationCount += 1;
    }
    if (own && attempt.status === 'succeeded') this.status.batchesSucceeded += 1;
    if (this.cursor!.batchResults.length < MAX_BATCH_RESULTS) this.cursor!.batchResults.push(result);
  }

  /** The run's own batches are all final: their counts come from the table, whichever execution ran them. */
  counted(counts: Partial<Record<BatchStatus, number>>): void {
    this.cursor!.counts = counts;
    this.status.batchesSucceeded = counts.succeeded ?? 0;
    this.status.batchesParked = counts.parked ?? 0;
  }

  summary(now: number): FanInSummary {
    const cursor = this.cursor!;
    const { totals, snapshot, counts } = cursor;
    const parked = counts ? (counts.parked ?? 0) : totals.batchesParked;
    return {
      runKey: cursor.run.runKey,
      outcome: snapshot.batchCount === 0 && totals.requeuedSucceeded + totals.requeuedParked === 0 ? 'nothing to dispatch' : parked + totals.requeuedParked > 0 ? 'dispatched, batches parked' : 'dispatched',
      resumed: cursor.run.resumed,
      committed: cursor.committed,
      changedIds: snapshot.changedIds,
      windows: snapshot.windows,
      sources: snapshot.sources,
      batches: snapshot.batchCount,
      batchesSucceeded: counts ? (counts.succeeded ?? 0) : totals.batchesSucceeded,
      batchesParked: parked,
      batchesAbandoned: counts?.abandoned ?? 0,
      launches: totals.launches,
      relaunches: totals.relaunches,
      requeued: { succeeded: totals.requeuedSucceeded, parked: totals.requeuedParked },
      parkedBatches: cursor.parked,
      durationMs: now - cursor.startedAt,
      batchDurationMs: { mean: totals.batchDurationCount ? Math.round(totals.batchDurationSumMs / totals.batchDurationCount) : 0, max: totals.batchDurationMaxMs },
      executions: cursor.execution,
      batchResults: [...cursor.batchResults].sort((a, b) => a.runKey.localeCompare(b.runKey) || a.batchNumber - b.batchNumber),
      batchResultsOmitted: Math.max(0, snapshot.batchCount - cursor.batchResults.length),
    };
  }

  private parked(result: BatchResult, own: boolean): void {
    const totals = this.cursor!.totals;
    if (own) totals.batchesParked += 1;
    else totals.requeuedParked += 1;
    if (own) this.status.batchesParked += 1;
    if (this.cursor!.parked.length < MAX_PARKED_REPORTED) this.cursor!.parked.push(result);
  }
}

function toResult(attempt: BatchAttempt): BatchResult {
  return {
    runKey: attempt.runKey,
    batchNumber: attempt.batchNumber,
    status: attempt.status,
    attempts: attempt.attempt,
    runId: attempt.runId,
    runPageUrl: attempt.runPageUrl,
    stateMessage: attempt.stateMessage,
    durationMs: attempt.durationMs,
  };
}
