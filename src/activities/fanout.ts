import { ApplicationFailure, CancelledFailure, Context, heartbeat, sleep } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { fanInWorkflowId } from '../client/operations';
import type { Config } from '../config/schema';
import type { BatchChangeResult, BatchKey, BatchSnapshot, BatchState, BatchStatus, Lakehouse } from '../lakehouse/port';
import { RunNotFoundError, TERMINAL_STATES, TokenRunDeletedError, idempotencyToken, type JobLauncher, type LaunchedRun, type RunState } from '../jobs/port';
import { PermanentError } from '../errors';
import { classified } from './failures';

/** Transient poll failures in a row before the attempt fails (and Temporal retries the activity). */
const MAX_FAILED_POLLS_IN_A_ROW = 10;
/** Polls after a cancel (ours, on a timeout or the fan-in's cancellation) before the watcher stops waiting for the run to stop. */
const POLLS_AFTER_CANCEL = 60;

/** What an operator's `cdf batches retry|abandon` answers. */
export interface BatchChange {
  before: BatchState | null;
  after: BatchState | null;
  /** Why nothing changed, with the next step; null when the change was made. */
  refused: string | null;
}

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
     * One attempt of one batch: take the batch for its next attempt (a compare-and-set that an
     * operator's abandon either wins before the launch or loses), launch (the idempotency token
     * makes a retried launch return the same run), record the run, watch it to a terminal state and
     * record how it ended. A batch already `launched` with a recorded run is watched, not launched
     * again: run-now with its token errors once the run was deleted. A run that no longer exists (or
     * a token whose run was deleted), or one cancelled after outliving `fanIn.jobTimeoutMinutes`, is
     * a failed attempt of the batch; one that does not stop fails the activity retryably, so that
     * its retry watches it again. The attempt number comes from the batch-state table, so a resumed fan-in continues a
     * batch's numbering. If the fan-in is cancelled, the run is cancelled too and watched until it
     * stops, so no downstream work outlives its workflow.
     */
    async runBatchAttempt(batch: BatchKey): Promise<BatchAttempt> {
      const state = await classified(() => lakehouse.readBatchState(batch));
      if (!state) throw ApplicationFailure.nonRetryable(`batch ${batch.batchNumber} of fan-in run ${batch.runKey} has no state row`, 'UnknownBatch');
      if (state.status === 'succeeded' || state.status === 'parked' || state.status === 'abandoned') return skipped(state);
      let attempt: number;
      let run: LaunchedRun;
      if (state.status === 'launched' && state.runId) {
        attempt = state.attempts;
        run = { runId: state.runId, runPageUrl: state.runPageUrl ?? '', reused: true };
      } else {
        // A launched batch without a run id was claimed by an attempt that died before recording its run: its token finds it.
        attempt = state.status === 'launched' ? state.attempts : state.attempts + 1;
        if (state.status !== 'launched' && !(await classified(() => lakehouse.claimBatchAttempt(batch, attempt)))) {
          const now = await classified(() => lakehouse.readBatchState(batch));
          // Another attempt of this activity claimed it (two at once after a retry): one of us must watch its run.
          if (now?.status === 'launched') {
            throw ApplicationFailure.retryable(
              `batch ${batch.batchNumber} of fan-in run ${batch.runKey} was claimed by another attempt (attempt ${now.attempts}) meanwhile: the retry watches its run`,
              'BatchClaimedMeanwhile',
            );
          }
          return skipped(now ?? state);
        }
        const token = idempotencyToken(batch.runKey, batch.batchNumber, attempt);
        try {
          run = await jobs.launch({ idempotencyToken: token, ...batch, attempt, batchTable: config.tables.batches });
        } catch (error) {
          // The token's run was deleted before its id was recorded: a failed attempt, as a deleted run is; the next one gets a new token.
          if (!(error instanceof TokenRunDeletedError)) return await classified(() => Promise.reject(error));
          return recordEnd(batch, state, attempt, { runId: '', runPageUrl: '', reused: true }, goneRun('', error));
        }
        await classified(() => lakehouse.recordBatchLaunch(batch, attempt, run));
      }
      return recordEnd(batch, state, attempt, run, await watchRun(run.runId));
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
    async requeueBatch(batch: BatchKey): Promise<BatchChange> {
      // A launched batch with no recorded run stays launched, with the higher limit: the next fan-in asks run-now with its token again.
      return changeBatch(batch, 'retry', (before) => lakehouse.requeueBatch(batch, config.fanIn.maxAttemptsPerBatch, before));
    },

    /** An operator gives a batch up: it is never launched again; its ids and the reason stay. */
    async abandonBatch({ reason, ...batch }: BatchKey & { reason: string }): Promise<BatchChange> {
      return changeBatch(batch, 'abandon', (before) => lakehouse.abandonBatch(batch, reason, before));
    },
  };

  /**
   * `cdf batches retry|abandon`: from parked or retry at any time; from failed or launched only
   * when no fan-in is running (the fan-in holds its run's batches and the requeued ones) and, for
   * a launched batch, once its run has ended or no longer exists (one with no recorded run: retry
   * only, which keeps it launched). The change is a compare-and-set on the state checked here, so
   * an attempt that starts meanwhile wins and the command is refused.
   * A refusal names the state and the next step, and writes nothing.
   */
  async function changeBatch(batch: BatchKey, action: 'retry' | 'abandon', change: (before: BatchState) => Promise<BatchChangeResult>): Promise<BatchChange> {
    const before = await classified(() => lakehouse.readBatchState(batch));
    const refuse = (reason: string): BatchChange => ({ before, after: before, refused: reason });
    if (!before) return refuse(`there is no batch ${batch.batchNumber} in fan-in run ${batch.runKey}: see \`cdf batches list\``);
    const which = `batch ${batch.batchNumber} of ${batch.runKey} is ${before.status}`;
    const blocker = await whyNotNow(before, action);
    if (blocker) return refuse(`${which}${blocker}`);
    // Decided by the update's own row count: a re-read alone would credit or blame another writer's change.
    const { changed, after } = await classified(() => change(before));
    if (changed) return { before, after, refused: null };
    return { before, after, refused: `${which} and became ${after?.status ?? 'missing'} while the command ran (an attempt or another command changed it): see \`cdf batches list\`, then run it again` };
  }

  /** Why `action` cannot be done to the batch now (appended to "batch N of K is <status>"), or null. */
  async function whyNotNow(state: BatchState, action: 'retry' | 'abandon'): Promise<string | null> {
    switch (state.status) {
      case 'parked':
      case 'retry':
        return null;
      case 'succeeded':
        return ': it is done, nothing to retry or abandon';
      case 'abandoned':
        return `: it was abandoned (${state.reason ?? 'no reason recorded'}) and stays so`;
      case 'pending':
        return ': it was never launched; its fan-in runs it (`cdf fan-in` resumes an open run)';
    }
    const fanIn = fanInWorkflowId(config);
    if (await fanInIsRunning(fanIn)) return ` and fan-in ${fanIn} is running, which holds it: wait until that fan-in ends (\`cdf status\` or the Web UI), then run this again`;
    if (state.status === 'failed') return null;
    // A launched batch without a run id: its attempt was interrupted before its run was recorded, and
    // that run may be live. Retry keeps it launched (the next fan-in asks run-now with its token);
    // abandon would leave such a run unwatched.
    if (!state.runId) {
      if (action === 'retry') return null;
      return (
        ` with no recorded run: attempt ${state.attempts} may have started one that is still running. ` +
        'Run `cdf fan-in` first: it finds that run by its idempotency token and watches it, or fails the attempt if the run was deleted; then run this again'
      );
    }
    let run: RunState | null;
    try {
      run = await jobs.getRun(state.runId);
    } catch (error) {
      if (!(error instanceof RunNotFoundError)) return classified(() => Promise.reject(error));
      run = null; // deleted: nothing of it can run any more
    }
    if (run && !TERMINAL_STATES.has(run.lifeCycleState)) return `, and its run ${state.runId} is ${run.lifeCycleState}: wait for it to end or cancel it (${run.runPageUrl || 'Jobs API runs/cancel'}), then run this again`;
    if (run && action === 'retry' && run.resultState === 'SUCCESS') return `, and its run ${state.runId} succeeded: \`cdf fan-in\` records it; nothing to retry`;
    return null;
  }

  /** Whether an execution of the fan-in workflow id is running (the client of the worker answers). */
  async function fanInIsRunning(workflowId: string): Promise<boolean> {
    try {
      const { status } = await Context.current().client.workflow.getHandle(workflowId).describe();
      return status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  }

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
   * restarting the activity would only watch the same run again. A run that no longer exists ends
   * as FAILED; one still not terminal `fanIn.jobTimeoutMinutes` after it left the queue is
   * cancelled (see cancelTimedOut), so a stuck run never holds the fan-in. Time spent QUEUED does
   * not count: Databricks' start_time is the run's creation, queue included, so the clock starts
   * at the first poll that sees the run out of the queue; it is carried in the heartbeat, so a
   * retried activity keeps it.
   */
  async function watchRun(runId: string): Promise<RunState> {
    const pollMs = config.fanIn.jobPollIntervalSeconds * 1000;
    const timeoutMs = config.fanIn.jobTimeoutMinutes * 60_000;
    const carried = Context.current().info.heartbeatDetails as { runId?: string; activeSince?: number } | undefined;
    let activeSince = carried?.runId === runId && typeof carried.activeSince === 'number' ? carried.activeSince : undefined;
    try {
      for (let poll = 0, failedPolls = 0; ; poll++) {
        let state: RunState;
        try {
          state = await jobs.getRun(runId);
          failedPolls = 0;
        } catch (error) {
          if (error instanceof RunNotFoundError) return goneRun(runId, error);
          if (error instanceof PermanentError || ++failedPolls > MAX_FAILED_POLLS_IN_A_ROW) return await classified(() => Promise.reject(error));
          heartbeat({ runId, failedPolls, activeSince });
          await sleep(pollMs);
          continue;
        }
        if (state.lifeCycleState !== 'QUEUED') activeSince ??= Date.now();
        heartbeat({ runId, lifeCycleState: state.lifeCycleState, activeSince });
        if (TERMINAL_STATES.has(state.lifeCycleState)) return state;
        if (state.lifeCycleState !== 'QUEUED' && activeSince !== undefined && Date.now() - activeSince >= timeoutMs) return await cancelTimedOut(state, activeSince);
        await sleep(Math.min(pollMs, 100 * 2 ** poll));
      }
    } catch (error) {
      // Only a cancel of the workflow stops the downstream run; a worker shutdown or timeout leaves it to the retry.
      if (!(error instanceof CancelledFailure) || !Context.current().cancellationDetails?.cancelRequested) throw error;
      await jobs.cancel(runId);
      for (let polls = 0; polls < POLLS_AFTER_CANCEL; polls++) {
        const state = await jobs.getRun(runId).catch((failure: unknown) => (failure instanceof RunNotFoundError ? null : Promise.reject(failure)));
        if (!state || TERMINAL_STATES.has(state.lifeCycleState)) break;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      throw error;
    }
  }

  /**
   * Cancels a run past fanIn.jobTimeoutMinutes and waits (bounded) for it to stop. Only a terminal
   * run is an outcome: one that succeeded before the cancel landed stays a success; one that ended
   * otherwise is a failed attempt that says it outlived the timeout. A run that did not stop (or
   * could not be read) throws a retryable failure: the batch stays launched with its run id, and
   * the retried activity watches (and cancels) that run again, so no second run starts beside it.
   */
  async function cancelTimedOut(running: RunState, activeSince: number): Promise<RunState> {
    await jobs.cancel(running.runId);
    let state = running;
    let lastFailure: unknown;
    for (let polls = 0; polls < POLLS_AFTER_CANCEL && !TERMINAL_STATES.has(state.lifeCycleState); polls++) {
      await sleep(config.fanIn.jobPollIntervalSeconds * 1000);
      try {
        state = await jobs.getRun(running.runId);
        lastFailure = undefined;
      } catch (error) {
        if (error instanceof RunNotFoundError) return goneRun(running.runId, error);
        if (error instanceof PermanentError) throw error;
        lastFailure = error;
      }
      heartbeat({ runId: running.runId, lifeCycleState: state.lifeCycleState, activeSince, cancelled: 'timeout' });
    }
    if (!TERMINAL_STATES.has(state.lifeCycleState)) {
      const seen = lastFailure ? `its last poll failed (${lastFailure instanceof Error ? lastFailure.message : String(lastFailure)})` : `it is still ${state.lifeCycleState}`;
      throw ApplicationFailure.retryable(
        `run ${running.runId} outlived fanIn.jobTimeoutMinutes (${config.fanIn.jobTimeoutMinutes}) and was cancelled, but ${seen} after ${POLLS_AFTER_CANCEL} polls: its batch stays launched and the retry watches the run again`,
        'RunDidNotStop',
      );
    }
    if (state.resultState === 'SUCCESS') return state;
    return {
      ...state,
      resultState: state.resultState === 'CANCELED' ? 'TIMEDOUT' : state.resultState,
      stateMessage: `run ${running.runId} outlived fanIn.jobTimeoutMinutes (${config.fanIn.jobTimeoutMinutes}) and was cancelled (${state.resultState ?? state.lifeCycleState}${state.stateMessage ? `: ${state.stateMessage}` : ''}): a failed attempt; the batch is relaunched or, with its attempts used up, parked`,
    };
  }

  /** Records how an attempt ended and returns it. */
  async function recordEnd(batch: BatchKey, state: BatchState, attempt: number, run: LaunchedRun, final: RunState): Promise<BatchAttempt> {
    const durationMs = final.startTime && final.endTime ? final.endTime - final.startTime : 0;
    const succeeded = final.lifeCycleState === 'TERMINATED' && final.resultState === 'SUCCESS';
    const stateMessage = describeEnd(final);
    const outcome: BatchAttempt['outcome'] = succeeded ? 'succeeded' : final.relaunchable === false ? 'jobFailed' : attempt >= state.attemptLimit ? 'parked' : 'failed';
    const status: BatchStatus = outcome === 'jobFailed' ? 'failed' : outcome;
    // A failure of the job itself says nothing about the batch: it does not count toward parking.
    await classified(() => lakehouse.recordBatchOutcome(batch, attempt, { status: status as 'succeeded' | 'failed' | 'parked', stateMessage, uncounted: outcome === 'jobFailed' }));
    return { ...batch, outcome, status, attempt, launched: !run.reused, runId: run.runId || null, runPageUrl: run.runPageUrl || final.runPageUrl, stateMessage, durationMs };
  }
}

/** A run the Jobs API no longer knows (or a token whose run was deleted), as a failed end of its attempt. */
function goneRun(runId: string, error: RunNotFoundError | TokenRunDeletedError): RunState {
  return {
    runId,
    lifeCycleState: 'INTERNAL_ERROR',
    resultState: 'FAILED',
    stateMessage: `${error.message}; deleted (by an operator, with its job, or by the run retention): a failed attempt; the batch is relaunched or, with its attempts used up, parked`,
    runPageUrl: '',
  };
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
