import { ActivityFailure, ApplicationFailure, continueAsNew, proxyActivities, setCurrentDetails, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities, BatchAttempt, FanInRunStart } from '../activities';
import type { BatchKey } from '../lakehouse/port';
import { fanInDetails } from './currentDetails';
import { FanInProgress, type FanInCursor, type FanInSummary } from './fanInProgress';
import { fanInStatusQuery } from './messages';
import { CdfDispatchedIds, CdfFanInOutcome, CdfParkedBatches } from './searchAttributes';

export type { FanInSummary, BatchResult } from './fanInProgress';

/** Batch numbers fetched per page: a page of numbers is a few KB of payload. */
const PAGE_SIZE = 1000;
/**
 * Lanes stop taking batches once the history has this many events, drain, and the fan-in continues
 * as new. An attempt costs about six events, so the lanes in flight (at most 100) stay well under
 * the 10,000 events any execution may hold (Temporal's own hard limit is 51,200).
 */
const HISTORY_EVENTS_BEFORE_CONTINUING = 6000;
const MAX_RELAUNCH_BACKOFF_SECONDS = 600;

/**
 * The fan-in's activities with their limits. Every one has a heartbeat timeout: that is what lets
 * an activity on a worker that died be retried in seconds rather than at start-to-close.
 */
function activities(startToCloseSeconds: number, heartbeatTimeoutSeconds: number, maximumRetryInterval: '1 minute' | '10 seconds' = '1 minute') {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${startToCloseSeconds} seconds`,
    heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: maximumRetryInterval },
  });
}

/** Refresh and open run before the worker's config is known, so they use fixed limits. */
const opening = activities(30 * 60, 20);

/** Set by continue-as-new only; a fan-in is started with `{}` (the UI's start dialog sends one object). */
export interface FanInInput {
  cursor?: FanInCursor;
}

/**
 * Dispatches every changed id exactly once. Refresh the changed-ids view, open (or resume) a run
 * with a pinned window per source, snapshot its ids into numbered batches, run each batch (launch,
 * watch, relaunch a failure after a backoff, park it once its attempts are used up) on
 * `fanIn.concurrency` lanes, and commit the window once every batch succeeded or parked. Then run
 * the parked batches operators requeued. It continues as new every few thousand batches, so no
 * execution's history grows with the backlog. It runs only as the one workflow id
 * `<prefix>-fan-in`, so Temporal never lets two dispatch at once.
 */
export async function fanIn(input: FanInInput = {}): Promise<FanInSummary> {
  const progress = new FanInProgress(input.cursor);
  setHandler(fanInStatusQuery, () => progress.status, { description: 'Run key, phase, batches succeeded, parked, running and waiting to relaunch, with run links.' });
  showProgress(progress);
  const cursor = input.cursor ?? (await openRun(progress));
  const lanes = batchLanes(cursor.run, progress);

  if (cursor.stage === 'own') {
    for (;;) {
      const page = await lanes.activities.pendingBatches({ runKey: cursor.run.runKey, afterBatch: cursor.afterBatch, limit: PAGE_SIZE });
      if (page.length === 0) break;
      const done = await lanes.run(page.map((batchNumber) => ({ runKey: cursor.run.runKey, batchNumber })), true);
      if (done > 0) cursor.afterBatch = page[done - 1]!;
      if (done < page.length || lanes.historyFull()) return continueWith(cursor, progress);
    }
    progress.counted(await lanes.activities.batchStatusCounts({ runKey: cursor.run.runKey }));
    progress.status.phase = 'committing';
    showProgress(progress);
    cursor.committed = (await lanes.activities.commitFanInRun({ runKey: cursor.run.runKey, fanInStartedAt: cursor.startedAt })).committed;
    cursor.stage = 'requeued';
    publishOutcome(progress.summary(Date.now()));
  }

  progress.status.phase = 'retrying requeued batches';
  showProgress(progress);
  for (;;) {
    const requeued = await lanes.activities.requeuedBatches({ limit: PAGE_SIZE });
    if (requeued.length === 0) break;
    const done = await lanes.run(requeued, false);
    if (done < requeued.length || lanes.historyFull()) return continueWith(cursor, progress);
  }
  progress.status.phase = 'done';
  showProgress(progress);
  const summary = progress.summary(Date.now());
  publishOutcome(summary);
  return summary;
}

async function openRun(progress: FanInProgress): Promise<FanInCursor> {
  const startedAt = Date.now();
  await opening.refreshChangedIds();
  const run = await opening.openFanInRun({ proposedRunKey: proposeRunKey() });
  progress.status.runKey = run.runKey;
  progress.status.phase = 'snapshotting';
  showProgress(progress);
  const snapshot = await activities(run.activityTimeoutSeconds, run.heartbeatTimeoutSeconds).snapshotBatches({ runKey: run.runKey });
  const cursor = progress.opened(run, snapshot, startedAt);
  showProgress(progress);
  upsertSearchAttributes([
    { key: CdfFanInOutcome, value: snapshot.batchCount === 0 ? 'nothing' : 'dispatching' },
    { key: CdfDispatchedIds, value: snapshot.changedIds },
    { key: CdfParkedBatches, value: 0 },
  ]);
  return cursor;
}

/**
 * Runs batches on `run.concurrency` lanes; each lane takes the next batch when it is free, until
 * the list ends or the history is big enough to continue as new. Returns how many batches (from
 * the start of the list) are finished. A failure of the job itself (missing, misconfigured, not
 * permitted) stops the lanes and fails the fan-in: the run stays open for the next one.
 */
function batchLanes(run: FanInRunStart, progress: FanInProgress) {
  const sql = activities(run.activityTimeoutSeconds, run.heartbeatTimeoutSeconds);
  // A poll must fit in the heartbeat timeout: the watcher heartbeats once per poll. A retried
  // attempt watches the run it recorded, so it is retried soon (Jobs API throttling is the client's to back off).
  // The watcher itself cancels a run at jobTimeoutMinutes; the 300 s beyond are for that cancel.
  const watcher = activities(Math.ceil(run.jobTimeoutMinutes * 60) + 300, Math.max(run.heartbeatTimeoutSeconds, run.jobPollIntervalSeconds * 3), '10 seconds');
  let jobFailure: BatchAttempt | null = null;
  const historyFull = () => workflowInfo().historyLength >= HISTORY_EVENTS_BEFORE_CONTINUING || workflowInfo().continueAsNewSuggested;

  /**
   * Attempts of one batch until it succeeds or parks. It stops early, leaving the batch `failed`
   * for the next execution or fan-in, when the job itself fails or the history is full.
   */
  async function runBatch(batch: BatchKey, own: boolean): Promise<void> {
    const status = progress.status;
    for (;;) {
      status.batchesRunning += 1;
      if (status.runningBatches.length < 20) status.runningBatches.push(batch);
      showProgress(progress);
      let attempt: BatchAttempt;
      try {
        attempt = await watcher.runBatchAttempt.executeWithOptions({ summary: `${own ? '' : `requeued ${batch.runKey} `}batch ${batch.batchNumber}` }, [batch]);
      } catch (error) {
        // A launch the Jobs API refuses for good (job missing, no permission, invalid parameters) is the job's failure too.
        jobFailure ??= refusedLaunch(batch, error);
        return;
      } finally {
        status.batchesRunning -= 1;
        status.runningBatches = status.runningBatches.filter((running) => running !== batch);
      }
      progress.attempted(attempt, own);
      showProgress(progress);
      if (attempt.outcome === 'jobFailed') jobFailure ??= attempt;
      if (attempt.outcome !== 'failed' || jobFailure || historyFull()) return;
      status.batchesWaitingToRelaunch += 1;
      await sleep(Math.min(MAX_RELAUNCH_BACKOFF_SECONDS, run.relaunchBackoffSeconds * 2 ** (attempt.attempt - 1)) * 1000);
      status.batchesWaitingToRelaunch -= 1;
      if (jobFailure || historyFull()) return;
    }
  }

  return {
    activities: sql,
    historyFull,
    async run(batches: BatchKey[], own: boolean): Promise<number> {
      let next = 0;
      const lane = async () => {
        while (next < batches.length && !jobFailure && !historyFull()) await runBatch(batches[next++]!, own);
      };
      await Promise.all(Array.from({ length: Math.min(run.concurrency, batches.length) }, lane));
      if (jobFailure) failOnJob(run, jobFailure, progress);
      return next;
    },
  };
}

/** A non-retryable activity failure as the batch attempt it stands for; anything else is rethrown. */
function refusedLaunch(batch: BatchKey, error: unknown): BatchAttempt {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || !cause.nonRetryable) throw error;
  const remedy = (cause.details?.[0] as { remedy?: string } | undefined)?.remedy;
  const stateMessage = `${cause.type ?? 'error'}: ${cause.message}${remedy ? ` (${remedy})` : ''}`;
  return { ...batch, outcome: 'jobFailed', status: 'failed', attempt: 0, launched: false, runId: null, runPageUrl: null, stateMessage, durationMs: 0 };
}

function failOnJob(run: FanInRunStart, failure: BatchAttempt, progress: FanInProgress): never {
  progress.status.phase = 'failed';
  showProgress(progress);
  upsertSearchAttributes([{ key: CdfFanInOutcome, value: 'failed' }]);
  throw ApplicationFailure.nonRetryable(
    `batch ${failure.batchNumber} of fan-in run ${run.runKey}: the downstream job cannot run (${failure.stateMessage}). ` +
      'Relaunching cannot help until the job is fixed; the run stays open and the next fan-in resumes it where this one stopped.',
    'DownstreamJobFailed',
    progress.summary(Date.now()),
  );
}

/** The next execution starts its pages from batch 1 again: a batch left `failed` when the history filled up must not be skipped. */
function continueWith(cursor: FanInCursor, progress: FanInProgress): Promise<never> {
  publishOutcome(progress.summary(Date.now()));
  return continueAsNew<typeof fanIn>({ cursor: { ...cursor, afterBatch: 0, execution: cursor.execution + 1 } });
}

/** Phase and counts on the workflow's page in the UI (current details); records nothing in the history. */
function showProgress(progress: FanInProgress): void {
  setCurrentDetails(fanInDetails(progress.status));
}

function publishOutcome(summary: FanInSummary): void {
  const parked = summary.batchesParked + summary.requeued.parked;
  const outcome = summary.outcome === 'nothing to dispatch' ? 'nothing' : parked > 0 ? 'parked' : summary.committed || summary.requeued.succeeded ? 'dispatched' : 'dispatching';
  upsertSearchAttributes([
    { key: CdfFanInOutcome, value: outcome },
    { key: CdfParkedBatches, value: parked },
  ]);
}

/** Short enough for a 64-character idempotency token with batch and attempt appended. */
function proposeRunKey(): string {
  const stamp = new Date(Date.now()).toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
  return `fi-${stamp}-${workflowInfo().runId.replace(/-/g, '').slice(-10)}`;
}
