import { PermanentError } from '../errors';

/**
 * Downstream job launching, shaped like the Databricks Jobs API 2.2 so that the local runner and
 * the Databricks client are interchangeable: runs are launched with an idempotency token and go
 * through QUEUED/PENDING → RUNNING → TERMINATING → TERMINATED (or SKIPPED/INTERNAL_ERROR).
 */
export interface JobLauncher {
  /** Starts a run for one batch; a repeated token returns the run it started the first time. */
  launch(request: LaunchRequest): Promise<LaunchedRun>;
  /** Throws RunNotFoundError when the run no longer exists (deleted, or past the run retention). */
  getRun(runId: string): Promise<RunState>;
  /** Asks the run to stop (asynchronously: poll getRun until terminal); a run that no longer exists is left alone. */
  cancel(runId: string): Promise<void>;
  close(): Promise<void>;
}

export interface LaunchRequest {
  /** At most 64 characters (Jobs API limit); derived from fan-in run, batch and attempt. */
  idempotencyToken: string;
  runKey: string;
  batchNumber: number;
  batchTable: string;
  attempt: number;
}

export interface LaunchedRun {
  runId: string;
  runPageUrl: string;
  /** True when the token had already started this run (a retried or resumed launch). */
  reused: boolean;
}

/**
 * QUEUED covers every state in which the run waits to run (Databricks' QUEUED, BLOCKED on an
 * upstream run, WAITING / WAITING_FOR_RETRY): that time does not count toward fanIn.jobTimeoutMinutes.
 */
export type LifeCycleState = 'QUEUED' | 'PENDING' | 'RUNNING' | 'TERMINATING' | 'TERMINATED' | 'SKIPPED' | 'INTERNAL_ERROR';
export type ResultState = 'SUCCESS' | 'FAILED' | 'TIMEDOUT' | 'CANCELED';

export interface RunState {
  runId: string;
  lifeCycleState: LifeCycleState;
  /** Set once the run is terminal. */
  resultState?: ResultState;
  stateMessage: string;
  runPageUrl: string;
  startTime?: number;
  endTime?: number;
  /**
   * For a failed run: false when the failure is the job's, not the batch's (the job is missing,
   * its configuration is invalid, the principal lacks permission), so relaunching any batch
   * fails the same way until someone fixes the job. Every other failure, an exception in the
   * job's code (Databricks' CLIENT_ERROR / RUN_EXECUTION_ERROR) included, may pass on a relaunch.
   * Undefined means relaunchable.
   */
  relaunchable?: boolean;
}

export const TERMINAL_STATES: ReadonlySet<LifeCycleState> = new Set(['TERMINATED', 'SKIPPED', 'INTERNAL_ERROR']);

/** Jobs API idempotency tokens are limited to 64 characters. */
export const MAX_IDEMPOTENCY_TOKEN_LENGTH = 64;

export function idempotencyToken(runKey: string, batchNumber: number, attempt: number): string {
  const token = `${runKey}-b${batchNumber}-a${attempt}`;
  if (token.length > MAX_IDEMPOTENCY_TOKEN_LENGTH) {
    throw new Error(`idempotency token "${token}" is longer than ${MAX_IDEMPOTENCY_TOKEN_LENGTH} characters: shorten the fan-in run key`);
  }
  return token;
}

/**
 * The run is gone from the Jobs API: deleted by an operator, with its job (re-deployed), or by the
 * run retention (Databricks removes runs after 60 days). For its batch this is a failed attempt:
 * nothing can be learnt of the run any more, and run-now with its token would error.
 */
export class RunNotFoundError extends PermanentError {
  constructor(
    readonly runId: string,
    detail: string,
  ) {
    super('RUN_NOT_FOUND', `run ${runId} no longer exists: ${detail}`, 'nothing to do: the fan-in relaunches its batch under a new attempt');
  }
}

/**
 * run-now with an idempotency token whose run was deleted errors ("If a run with the token was
 * deleted, an error is returned"). For its batch this is a failed attempt, as a deleted run is:
 * the next attempt launches under a new token.
 */
export class TokenRunDeletedError extends PermanentError {
  constructor(
    readonly idempotencyToken: string,
    detail: string,
  ) {
    super('IDEMPOTENCY_TOKEN_RUN_DELETED', `the run started with idempotency token ${idempotencyToken} was deleted: ${detail}`, 'nothing to do: the fan-in counts it as a failed attempt and relaunches its batch under a new token');
  }
}
