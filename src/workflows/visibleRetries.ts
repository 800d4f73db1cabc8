import { ActivityFailure, ApplicationFailure, condition, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import type { BlockedState, RetryingState } from './messages';

/**
 * Temporal retries each capture activity this many times (1 s, then 2 s apart) before the
 * workflow sees the failure; the workflow then says so in `status`, waits and tries again.
 */
export const ATTEMPTS_PER_BURST = 3;

/** Until the first cycle reads capture.blockUnknownErrorsAfterAttempts from the worker's config. */
export const DEFAULT_BLOCK_UNKNOWN_AFTER_ATTEMPTS = 30;

const LONGEST_WAIT_SECONDS = 60;

export const UNKNOWN_ERROR_REMEDY =
  'Nothing recognised this error and retrying did not clear it. Read the message (and the worker log), fix the cause (permissions, a schema change, a bug), then signal pollNow to capture again.';

/** What the retry loop reads and writes on the workflow's state. */
export interface RetryHost {
  retrying: RetryingState | null;
  /** capture.blockUnknownErrorsAfterAttempts, as the last cycle read it. */
  blockUnknownErrorsAfterAttempts: number;
  /** Set by pollNow and captureNow; a request arriving during a wait cuts it short. Never cleared here. */
  readonly pollRequested: boolean;
}

/** Thrown once an unrecognised error has used up its attempts; the cycle turns it into the blocked state. */
export class UnknownErrorPersisted extends Error {
  constructor(readonly blocked: BlockedState) {
    super(blocked.message);
  }
}

/**
 * Thrown between bursts when the cycle must give way: a pause or a replay arrived (they are the
 * operator's levers against an error that will not clear), or the history is long enough to
 * continue as new (a retry loop lasting days must not outgrow it). `retrying` stays as it is.
 */
export class CycleInterrupted extends Error {}

/**
 * Runs an activity call, and after each failed burst of attempts records `retrying` (type,
 * message, consecutive failed attempts since the last success) where `status` and the CdfState
 * search attribute show it, then waits (2 s, 4 s, … at most 60 s) and calls again. Recognised
 * transient errors (a concurrent commit, a warehouse restarting, a lost connection, a worker
 * that died mid-activity) retry for as long as they last; an error nothing recognised blocks the
 * source once the failed attempts reach `blockUnknownErrorsAfterAttempts`, with its message and
 * its remedy. Non-retryable failures and cancellations pass through to the caller.
 */
export async function withVisibleRetries<T>(
  host: RetryHost,
  /** A pause or a replay waiting: the cycle gives way to the main loop, which handles them. */
  interrupted: () => boolean,
  onRetrying: () => void,
  call: () => Promise<T>,
): Promise<T> {
  for (;;) {
    try {
      const result = await call();
      host.retrying = null;
      return result;
    } catch (error) {
      const failure = burstFailure(error);
      if (!failure) {
        host.retrying = null;
        throw error;
      }
      const attempts = (host.retrying?.attempts ?? 0) + ATTEMPTS_PER_BURST;
      const since = host.retrying?.since ?? new Date(Date.now()).toISOString();
      if (!failure.recognised && attempts >= host.blockUnknownErrorsAfterAttempts) {
        host.retrying = null;
        throw new UnknownErrorPersisted({
          type: failure.type,
          message: `${failure.message} (failed ${attempts} times since ${since})`,
          remedy: failure.remedy ?? UNKNOWN_ERROR_REMEDY,
          since: new Date(Date.now()).toISOString(),
        });
      }
      host.retrying = { type: failure.type, message: failure.message, attempts, recognised: failure.recognised, since };
      onRetrying();
      if (interrupted() || workflowInfo().continueAsNewSuggested) throw new CycleInterrupted();
      const waitSeconds = Math.min(LONGEST_WAIT_SECONDS, 2 ** Math.ceil(attempts / ATTEMPTS_PER_BURST));
      const alreadyPolled = host.pollRequested;
      await condition(() => (!alreadyPolled && host.pollRequested) || interrupted(), waitSeconds * 1000);
      if (interrupted()) throw new CycleInterrupted();
    }
  }
}

interface BurstFailure {
  type: string;
  message: string;
  recognised: boolean;
  remedy?: string;
}

/**
 * What made an activity fail: the cause inside an ActivityFailure, or, from a local activity,
 * the failure itself (the SDK hands a local activity's non-retryable failure over unwrapped).
 * Null for anything that is not an activity's failure.
 */
export function activityFailureCause(error: unknown): ApplicationFailure | TimeoutFailure | null {
  if (error instanceof ActivityFailure) return error.cause instanceof ApplicationFailure || error.cause instanceof TimeoutFailure ? error.cause : null;
  return error instanceof ApplicationFailure || error instanceof TimeoutFailure ? error : null;
}

/** A failure Temporal gave up retrying because its burst of attempts ran out, or null for anything else. */
function burstFailure(error: unknown): BurstFailure | null {
  const cause = activityFailureCause(error);
  if (cause instanceof ApplicationFailure) {
    if (cause.nonRetryable) return null;
    // Failures without these details did not go through the classifier (a bug in an activity): unrecognised.
    const details = cause.details?.[0] as { recognised?: boolean; remedy?: string } | undefined;
    return { type: cause.type ?? 'Error', message: cause.message, recognised: details?.recognised === true, remedy: details?.remedy };
  }
  if (cause instanceof TimeoutFailure) {
    // A missed heartbeat is a worker that died: retry elsewhere. A statement that outlives its
    // activity every time will not start fitting: it counts as unrecognised and eventually blocks.
    const heartbeat = cause.timeoutType === 'HEARTBEAT';
    return { type: heartbeat ? 'ACTIVITY_HEARTBEAT_TIMEOUT' : 'ACTIVITY_TIMEOUT', message: cause.message || 'the activity timed out', recognised: heartbeat };
  }
  // The activity was cancelled with the workflow: not ours to retry.
  return null;
}
