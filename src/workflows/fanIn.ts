import { ApplicationFailure, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities, BatchOutcome, FanInRunStart } from '../activities';
import { fanInStatusQuery, type FanInStatus } from './messages';

/**
 * The fan-in's activities with their limits. Every one has a heartbeat timeout: that is what lets
 * an activity on a worker that died be retried in seconds rather than at start-to-close.
 */
function activities(startToCloseSeconds: number, heartbeatTimeoutSeconds: number, maximumRetryInterval: '1 minute' | '30 seconds' = '1 minute') {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${startToCloseSeconds} seconds`,
    heartbeatTimeout: `${heartbeatTimeoutSeconds} seconds`,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: maximumRetryInterval },
  });
}

/** worker.heartbeatTimeoutSeconds from the opened run (runs recorded before it existed: 20 s). */
const heartbeatOf = (run: FanInRunStart) => run.heartbeatTimeoutSeconds ?? 20;

/** Refresh and open run before the worker's config is known, so they use fixed limits. */
const opening = activities(30 * 60, 20);

/** Per-batch detail kept in the result; beyond this only counts are returned. */
const MAX_BATCH_RESULTS = 100;

/** No options yet: every setting comes from the worker's config when the run opens. One object for the UI's start dialog. */
export type FanInInput = Record<string, never>;

export interface BatchResult extends BatchOutcome {
  batchNumber: number;
  /** The attempt whose run this result describes (attempt N uses token …-bB-aN). */
  attempts: number;
  /** Runs this execution started for the batch (0 when a resumed run found it already done). */
  launches: number;
}

export interface FanInSummary {
  runKey: string;
  /** True when this run finished a fan-in that an earlier run left open. */
  resumed: boolean;
  changedIds: number;
  batches: number;
  batchesSucceeded: number;
  batchesFailed: number;
  /** Downstream runs this execution started (retries included, runs found from earlier executions excluded). */
  launches: number;
  committed: boolean;
  durationMs: number;
  batchDurationMs: { p50: number; max: number };
  /** The first batches' results (run ids, links, durations); never id lists. */
  batchResults: BatchResult[];
  batchResultsOmitted: number;
}

/**
 * Dispatches every changed id exactly once: refresh the changed-ids view, open (or resume) a run
 * with a pinned window, snapshot its ids into numbered batches, launch one downstream job per
 * batch with bounded concurrency, retry failed batches, and commit the window only when all
 * batches succeeded. A run left open by a failure is resumed by the next fan-in, so nothing is
 * lost and no succeeded batch is launched again.
 */
export async function fanIn(_input: FanInInput = {}): Promise<FanInSummary> {
  const startedAt = Date.now();
  const status: FanInStatus = {
    runKey: null,
    phase: 'refreshing',
    changedIds: 0,
    batches: 0,
    batchesSucceeded: 0,
    batchesRunning: 0,
    batchesFailed: 0,
    runningRuns: [],
  };
  setHandler(fanInStatusQuery, () => status, { description: 'Current run key, phase and batches done, running and failed, with run links.' });

  await opening.refreshChangedIds();
  const run = await opening.openFanInRun({ proposedRunKey: proposeRunKey() });
  const fanout = activities(run.activityTimeoutSeconds ?? 30 * 60, heartbeatOf(run));
  status.runKey = run.runKey;
  status.phase = 'snapshotting';
  const snapshot = await fanout.snapshotBatches({ runKey: run.runKey });
  status.changedIds = snapshot.changedIds;
  status.batches = snapshot.batchCount;
  status.phase = 'dispatching';

  const results = await dispatchBatches(run, snapshot.batchCount, status);
  const failed = results.filter((r) => !r.succeeded);
  if (failed.length > 0) {
    status.phase = 'failed';
    throw ApplicationFailure.nonRetryable(
      `${failed.length} of ${results.length} batches of fan-in run ${run.runKey} failed after ${run.maxAttemptsPerBatch} attempts (first: batch ${failed[0]!.batchNumber}: ${failed[0]!.stateMessage}). ` +
        'The run stays open: the next fan-in resumes it and relaunches only the failed batches.',
      'FanInBatchesFailed',
      summarize(run, snapshot.changedIds, results, false, startedAt),
    );
  }
  status.phase = 'committing';
  const commit = await fanout.commitFanInRun({ runKey: run.runKey });
  status.phase = 'done';
  return summarize(run, snapshot.changedIds, results, commit.committed, startedAt);
}

/** Runs batches 1..batchCount on `concurrency` lanes; each lane takes the next batch when it is free. */
async function dispatchBatches(run: FanInRunStart, batchCount: number, status: FanInStatus): Promise<BatchResult[]> {
  const results: BatchResult[] = [];
  let nextBatch = 1;
  const lane = async () => {
    while (nextBatch <= batchCount) {
      const batchNumber = nextBatch++;
      const result = await runBatch(run, batchNumber, status);
      results.push(result);
      if (result.succeeded) status.batchesSucceeded += 1;
      else status.batchesFailed += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(run.concurrency, batchCount) }, lane));
  return results.sort((a, b) => a.batchNumber - b.batchNumber);
}

/**
 * Launches a batch and watches its run; a failed run is relaunched under the next attempt's token.
 * Attempts that only found a run an earlier execution had launched (a resumed fan-in) do not
 * count against `maxAttemptsPerBatch`, so a resumed run gets a fresh budget without relaunching
 * anything that already succeeded.
 */
async function runBatch(run: FanInRunStart, batchNumber: number, status: FanInStatus): Promise<BatchResult> {
  const launcher = activities(2 * 60, heartbeatOf(run), '30 seconds');
  // A poll must fit in the heartbeat timeout: the watcher heartbeats once per poll.
  const watcher = activities(run.jobTimeoutMinutes * 60, Math.max(heartbeatOf(run), run.jobPollIntervalSeconds * 3));
  status.batchesRunning += 1;
  try {
    let newLaunches = 0;
    for (let attempt = 1; ; attempt++) {
      const launched = await launcher.launchBatchJob.executeWithOptions({ summary: `launch batch ${batchNumber}, attempt ${attempt}` }, [
        { runKey: run.runKey, batchNumber, attempt },
      ]);
      if (!launched.reused) newLaunches += 1;
      const link = { batchNumber, runId: launched.runId, runPageUrl: launched.runPageUrl };
      if (status.runningRuns.length < 20) status.runningRuns.push(link);
      const outcome = await watcher.awaitBatchJob.executeWithOptions({ summary: `batch ${batchNumber}: run ${launched.runId}` }, [{ runId: launched.runId }]);
      status.runningRuns = status.runningRuns.filter((r) => r !== link);
      if (outcome.succeeded || outcome.retryable === false || newLaunches >= run.maxAttemptsPerBatch) return { ...outcome, batchNumber, attempts: attempt, launches: newLaunches };
    }
  } finally {
    status.batchesRunning -= 1;
  }
}

/** Short enough for a 64-character idempotency token with batch and attempt appended. */
function proposeRunKey(): string {
  const stamp = new Date(Date.now()).toISOString().replace(/[-:TZ.]/g, '').slice(0, 14);
  return `fi-${stamp}-${workflowInfo().runId.replace(/-/g, "").slice(-10)}`;
}

function summarize(run: FanInRunStart, changedIds: number, results: BatchResult[], committed: boolean, startedAt: number): FanInSummary {
  const durations = results.map((r) => r.durationMs).sort((a, b) => a - b);
  return {
    runKey: run.runKey,
    resumed: run.resumed,
    changedIds,
    batches: results.length,
    batchesSucceeded: results.filter((r) => r.succeeded).length,
    batchesFailed: results.filter((r) => !r.succeeded).length,
    launches: results.reduce((sum, r) => sum + r.launches, 0),
    committed,
    durationMs: Date.now() - startedAt,
    batchDurationMs: { p50: durations[Math.floor((durations.length - 1) / 2)] ?? 0, max: durations[durations.length - 1] ?? 0 },
    batchResults: results.slice(0, MAX_BATCH_RESULTS),
    batchResultsOmitted: Math.max(0, results.length - MAX_BATCH_RESULTS),
  };
}
