import { CancelledFailure, Context, heartbeat, sleep } from '@temporalio/activity';
import type { Config } from '../config/schema';
import type { Lakehouse } from '../lakehouse/port';
import { TERMINAL_STATES, idempotencyToken, type JobLauncher, type RunState } from '../jobs/port';
import { classified } from './failures';

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
  jobPollIntervalSeconds: number;
  jobTimeoutMinutes: number;
  heartbeatTimeoutSeconds: number;
  activityTimeoutSeconds: number;
}

export interface BatchRef {
  runKey: string;
  batchNumber: number;
  attempt: number;
}

export interface LaunchedBatch {
  runId: string;
  runPageUrl: string;
  reused: boolean;
  idempotencyToken: string;
}

export interface BatchOutcome {
  runId: string;
  runPageUrl: string;
  succeeded: boolean;
  lifeCycleState: RunState['lifeCycleState'];
  resultState: RunState['resultState'];
  stateMessage: string;
  durationMs: number;
  /** False when launching again cannot help (e.g. a Databricks CLIENT_ERROR termination). */
  retryable: boolean;
}

/** Activities of the fan-in stage: refresh, snapshot, launch and watch downstream runs, commit. */
export function createFanoutActivities({ config, lakehouse, jobs }: FanoutDeps) {
  return {
    async refreshChangedIds(): Promise<{ rows: number }> {
      return classified(() => lakehouse.refreshChangedIds());
    },

    async openFanInRun({ proposedRunKey }: { proposedRunKey: string }): Promise<FanInRunStart> {
      const run = await classified(() => lakehouse.openFanInRun(proposedRunKey));
      const { concurrency, maxAttemptsPerBatch, jobPollIntervalSeconds, jobTimeoutMinutes } = config.fanIn;
      return { ...run, concurrency, maxAttemptsPerBatch, jobPollIntervalSeconds, jobTimeoutMinutes, heartbeatTimeoutSeconds: config.worker.heartbeatTimeoutSeconds, activityTimeoutSeconds: config.worker.activityTimeoutSeconds };
    },

    async snapshotBatches({ runKey }: { runKey: string }): Promise<{ changedIds: number; batchCount: number }> {
      return classified(() => lakehouse.snapshotBatches(runKey, config.fanIn.batchSize));
    },

    /** Launches one batch; the idempotency token makes a retried launch return the same run. */
    async launchBatchJob({ runKey, batchNumber, attempt }: BatchRef): Promise<LaunchedBatch> {
      const token = idempotencyToken(runKey, batchNumber, attempt);
      const run = await classified(() => jobs.launch({ idempotencyToken: token, runKey, batchNumber, attempt, batchTable: config.tables.batches }));
      return { ...run, idempotencyToken: token };
    },

    /**
     * Polls a run to a terminal state, heartbeating each poll. If the fan-in is cancelled, the run
     * is cancelled too and watched until it stops, so no downstream work outlives its workflow.
     */
    async awaitBatchJob({ runId }: { runId: string }): Promise<BatchOutcome> {
      const pollMs = config.fanIn.jobPollIntervalSeconds * 1000;
      const started = Date.now();
      try {
        for (;;) {
          const state = await classified(() => jobs.getRun(runId));
          heartbeat({ runId, lifeCycleState: state.lifeCycleState });
          if (TERMINAL_STATES.has(state.lifeCycleState)) return outcome(state, started);
          await sleep(pollMs);
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
    },

    async commitFanInRun({ runKey }: { runKey: string }): Promise<{ committed: boolean }> {
      return classified(() => lakehouse.commitFanInRun(runKey));
    },
  };
}

function outcome(state: RunState, started: number): BatchOutcome {
  const durationMs = state.startTime && state.endTime ? state.endTime - state.startTime : Date.now() - started;
  return {
    runId: state.runId,
    runPageUrl: state.runPageUrl,
    succeeded: state.lifeCycleState === 'TERMINATED' && state.resultState === 'SUCCESS',
    lifeCycleState: state.lifeCycleState,
    resultState: state.resultState,
    stateMessage: state.stateMessage.slice(0, 500),
    durationMs,
    retryable: state.retryable ?? true,
  };
}
