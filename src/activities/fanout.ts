import { ApplicationFailure, CancelledFailure, Context, heartbeat, sleep } from '@temporalio/activity';
import { fanInWorkflowId } from '../client/operations';
import type { Config } from '../config/schema';
import type { BatchKey, BatchSnapshot, BatchState, BatchStatus, Lakehouse } from '../lakehouse/port';
import { TERMINAL_STATES, idempotencyToken, type JobLauncher, type RunState } from '../jobs/port';
import { PermanentError } from '../errors';
import { classified } from './failures';

/** Transient poll failures in a row before the attempt fails (and Temporal retries the activity). */
const MAX_FAILED_POLLS_IN_A_ROW = 10;

export interface FanoutDeps {
  config: Config;
  lakehouse: Lakehouse;
  jobs: JobLauncher;
}

export interface FanInRunStart {
  runKey: string;
  resumed: boolean;
  sources: number;
  /** From the worker's config, so that concurrency changes apply to the next run without a redeploy. */
  concurrency: number;
  maxAttemptsPerBatch: number;
  relaunchBackoffSeconds: number;
  jobPollIntervalSeconds: number;
  jobTimeoutMinutes: number;
  heartbeatTimeoutSeconds: number;
  activityTimeoutSeconds: number;
}

/** How one attempt of a batch ended, as recorded in the batch-state table. */
export interface BatchAttempt {
  batchNumber: number;
  runKey: string;
  /**
   * succeeded · failed (relaunch after a backoff) · parked (attempts used up) · jobFailed (the job
   * itself cannot run: nothing is relaunched until it is fixed) · skipped (already succeeded,
   * parked or abandoned: nothing was launched).
   */
  outcome: 'succeeded' | 'failed' | 'parked' | 'jobFailed' | 'skipped';
  /** The batch's status after this attempt. */
  status: BatchStatus;
  attempt: number;
  /** False when the attempt's run already existed (a retried activity or a resumed fan-in). */
  launched: boolean;
  runId: string | null;
  runPageUrl: string | null;
  stateMessage: string;
  durationMs: number;
}

/** `cdf batches …` answers: rows of the batch-state table, at most `limit`. */
export interface BatchListRequest {
  statuses?: BatchStatus[];
  runKey?: string;
  limit: number;
}

/** Activities of the fan-in stage: refresh, snapshot, run batches, commit, and the operators' batch commands. */
export function createFanoutActivities({ config, lakehouse, jobs }: FanoutDeps) {
  return {
    /** The first step of a fan-in, so a fan-in under a foreign workflow id is refused before it costs a refresh. */
    async refreshChangedIds(): Promise<{ rows: number }> {
      assertTheOneFanIn();
      return classified(() => lakehouse.refreshChangedIds());
    },

    /**
     * Opens (or resumes) the run. Only the fan-in with the one workflow id may: Temporal then
     * guarantees that two fan-ins never dispatch at once, which no warehouse row can.
     */
    async openFanInRun({ proposedRunKey }: { proposedRunKey: string }): Promise<FanInRunStart> {
      assertTheOneFanIn();
      const run = await classified(() => lakehouse.openFanInRun(proposedRunKey));
      const { concurrency, maxAttemptsPerBatch, relaunchBackoffSeconds, jobPollIntervalSeconds, jobTimeoutMinutes } = config.fanIn;
      return {
        ...run,
        concurrency,
        maxAttemptsPerBatch,
        relaunchBackoffSeconds,
        jobPollIntervalSeconds,
        jobTimeoutMinutes,
        heartbeatTimeoutSeconds: config.worker.heartbeatTimeoutSeconds,
        activityTimeoutSeconds: config.worker.activityTimeoutSeconds,
      };
    },

    async snapshotBatches({ runKey }: { runKey: string }): Promise<BatchSnapshot> {
      return classified(() => lakehouse.snapshotBatches(runKey, config.fanIn.batchSize, config.fanIn.maxAttemptsPerBatch));
    },

    /** The next page of the run's batches still to dispatch: numbers only, so a page stays a few KB. */
    async pendingBatches({ runKey, afterBatch, limit }: { runKey: string; afterBatch: number; limit: number }): Promise<number[]> {
      return classified(() => lakehouse.pendingBatches(runKey, afterBatch, limit));
    },

    async requeuedBatches({ limit }: { limit: number }): Promise<BatchKey[]> {
      return classified(() => lakehouse.requeuedBatches(limit));
    },

    /**
     * One attempt of one batch: launch (the idempotency token makes a retried launch return the same
     * run), record it, watch it to a terminal state and record how it ended. The attempt number
     * comes from the batch-state table, so a resumed fan-in continues a batch's numbering instead
     * of mistaking an earlier execution's failed run for its own. If the fan-in is cancelled, the
     * run is cancelled too and watched until it stops, so no downstream work outlives its workflow.
     */
    async runBatchAttempt(batch: BatchKey): Promise<BatchAttempt> {
      const state = await classified(() => lakehouse.readBatchState(batch));
      if (!state) throw ApplicationFailure.nonRetryable(`batch ${batch.batchNumber} of fan-in run ${batch.runKey} has no state row`, 'UnknownBatch');
      if (state.status === 'succeeded' || state.status === 'parked' || state.status === 'abandoned') return skipped(state);
      // A launched attempt whose outcome was not recorded is watched again under its own token.
      const attempt = state.status === 'launched' ? state.attempts : state.attempts + 1;
      const token = idempotencyToken(batch.runKey, batch.batchNumber, attempt);
      const run = await classified(() => jobs.launch({ idempotencyToken: token, ...batch, attempt, batchTable: config.tables.batches }));
      await classified(() => lakehouse.recordBatchLaunch(batch, attempt, run));
      const final = await watchRun(run.runId);
      const durationMs = final.startTime && final.endTime ? final.endTime - final.startTime : 0;
      const succeeded = final.lifeCycleState === 'TERMINATED' && final.resultState === 'SUCCESS';
      const stateMessage = describeEnd(final);
      const outcome: BatchAttempt['outcome'] = succeeded ? 'succeeded' : final.relaunchable === false ? 'jobFailed' : attempt >= state.attemptLimit ? 'parked' : 'failed';
      const status: BatchStatus = outcome === 'jobFailed' ? 'failed' : outcome;
      // A failure of the job itself says nothing about the batch: it does not count toward parking.
      await classified(() => lakehouse.recordBatchOutcome(batch, attempt, { status: status as 'succeeded' | 'failed' | 'parked', stateMessage, uncounted: outcome === 'jobFailed' }));
      return { ...batch, outcome, status, attempt, launched: !run.reused, runId: run.runId, runPageUrl: run.runPageUrl, stateMessage, durationMs };
    },

    async batchStatusCounts({ runKey }: { runKey: string }): Promise<Partial<Record<BatchStatus, number>>> {
      return classified(() => lakehouse.batchStatusCounts(runKey));
    },

    /** `fanInStartedAt` (epoch ms; absent in histories from before it) is for the fan-in duration metric only. */
    async commitFanInRun({ runKey }: { runKey: string; fanInStartedAt?: number }): Promise<{ committed: boolean }> {
      return classified(() => lakehouse.commitFanInRun(runKey));
    },

    async readBatchStateOf(batch: BatchKey): Promise<BatchState | null> {
      return classified(() => lakehouse.readBatchState(batch));
    },

    async listBatches(request: BatchListRequest): Promise<BatchState[]> {
      return classified(() => lakehouse.listBatches(request));
    },

    /** An operator's retry: the batch gets `fanIn.maxAttemptsPerBatch` more attempts in the next fan-in. */
    async requeueBatch(batch: BatchKey): Promise<{ before: BatchState | null; after: BatchState | null }> {
      const before = await classified(() => lakehouse.readBatchState(batch));
      const after = before ? await classified(() => lakehouse.requeueBatch(batch, config.fanIn.maxAttemptsPerBatch)) : null;
      return { before, after };
    },

    async abandonBatch({ reason, ...batch }: BatchKey & { reason: string }): Promise<{ before: BatchState | null; after: BatchState | null }> {
      const before = await classified(() => lakehouse.readBatchState(batch));
      const after = before ? await classified(() => lakehouse.abandonBatch(batch, reason)) : null;
      return { before, after };
    },
  };

  function assertTheOneFanIn(): void {
    const expected = fanInWorkflowId(config);
    const actual = Context.current().info.workflowExecution?.workflowId;
    if (actual === expected) return;
    throw ApplicationFailure.nonRetryable(
      `a fan-in must run as workflow id ${expected}, not ${actual}: Temporal keeps one execution per id, which is what stops two fan-ins dispatching at once. ` +
        `Start it with \`cdf fan-in\`, or \`temporal workflow start --type fanIn --task-queue ${config.temporal.taskQueue} -w ${expected} --id-conflict-policy UseExisting --input '{}'\``,
      'FanInWorkflowIdMismatch',
    );
  }

  /**
   * Polls a run to a terminal state, heartbeating each poll; the first polls come sooner, for
   * short jobs. A poll that fails transiently (429, 5xx, a dropped connection, after the client's
   * own retries) is polled again rather than failing the attempt: watching is read-only, and
   * restarting the activity would only launch (and find) the same run again.
   */
  async function watchRun(runId: string): Promise<RunState> {
    const pollMs = config.fanIn.jobPollIntervalSeconds * 1000;
    try {
      for (let poll = 0, failedPolls = 0; ; poll++) {
        let state: RunState;
        try {
          state = await jobs.getRun(runId);
          failedPolls = 0;
        } catch (error) {
          if (error instanceof PermanentError || ++failedPolls > MAX_FAILED_POLLS_IN_A_ROW) return await classified(() => Promise.reject(error));
          heartbeat({ runId, failedPolls });
          await sleep(pollMs);
          continue;
        }
        heartbeat({ runId, lifeCycleState: state.lifeCycleState });
        if (TERMINAL_STATES.has(state.lifeCycleState)) return state;
        await sleep(Math.min(pollMs, 100 * 2 ** poll));
      }
    } catch (error) {
      // Only a cancel of the workflow stops the downstream run; a worker shutdown or timeout leaves it to the retry.
      if (!(error instanceof CancelledFailure) || !Context.current().cancellationDetails?.cancelRequested) throw error;
      await jobs.cancel(runId);
      for (let polls = 0; polls < 60; polls++) {
        const state = await jobs.getRun(runId);
        if (TERMINAL_STATES.has(state.lifeCycleState)) break;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      throw error;
    }
  }
}

function skipped(state: BatchState): BatchAttempt {
  return {
    runKey: state.runKey,
    batchNumber: state.batchNumber,
    outcome: 'skipped',
    status: state.status,
    attempt: state.attempts,
    launched: false,
    runId: state.runId,
    runPageUrl: state.runPageUrl,
    stateMessage: state.stateMessage ?? '',
    durationMs: 0,
  };
}

function describeEnd(state: RunState): string {
  const result = state.resultState ?? state.lifeCycleState;
  return (state.stateMessage ? `${result}: ${state.stateMessage}` : result).slice(0, 500);
}
