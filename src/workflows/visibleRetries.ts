import { ActivityFailure, ApplicationFailure, condition } from '@temporalio/workflow';
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
  /** Set by pollNow: cuts the wait between bursts short. */
  pollRequested: boolean;
}

/** Thrown once an unrecognised error has used up its attempts; the cycle turns it into the blocked state. */
export class UnknownErrorPersisted extends Error {
  constructor(readonly blocked: BlockedState) {
    super(blocked.message);
  }
}

/**
 * Runs an activity call, and after each failed burst of attempts records `retrying` (type,
 * message, attempts so far) where `status` and the CdfState search attribute show it, then waits
 * (2 s, 4 s, … at most 60 s) and calls again. Recognised transient errors (a concurrent commit, a
 * warehouse restarting, a lost connection) retry for as long as they last; an error nothing
 * recognised blocks the source after `blockUnknownErrorsAfterAttempts` attempts, with its message.
 * Non-retryable failures pass through to the caller's blocked handling.
 */
export async function withVisibleRetries<T>(host: RetryHost, onRetrying: () => void, call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      const result = await call();
      host.retrying = null;
      return result;
    } catch (error) {
      const failure = retryableFailure(error);
      if (!failure) throw error;
      const sameError = host.retrying?.type === failure.type;
      const attempts = (sameError ? host.retrying!.attempts : 0) + ATTEMPTS_PER_BURST;
      const since = sameError ? host.retrying!.since : new Date(Date.now()).toISOString();
      if (!failure.recognised && attempts >= host.blockUnknownErrorsAfterAttempts) {
        host.retrying = null;
        throw new UnknownErrorPersisted({
          type: failure.type,
          message: `${failure.message} (failed ${attempts} times since ${since})`,
          remedy: UNKNOWN_ERROR_REMEDY,
          since: new Date(Date.now()).toISOString(),
        });
      }
      host.retrying = { type: failure.type, message: failure.message, attempts, recognised: failure.recognised, since };
      onRetrying();
      const waitSeconds = Math.min(LONGEST_WAIT_SECONDS, 2 ** Math.ceil(attempts / ATTEMPTS_PER_BURST));
      host.pollRequested = false;
      await condition(() => host.pollRequested, waitSeconds * 1000);
    }
  }
}

/** A failure Temporal gave up retrying (its burst of attempts ran out), or null for anything else. */
function retryableFailure(error: unknown): { type: string; message: string; recognised: boolean } | null {
  if (!(error instanceof ActivityFailure)) return null;
  const cause = error.cause;
  if (cause instanceof ApplicationFailure) {
    if (cause.nonRetryable) return null;
    const details = cause.details?.[0] as { recognised?: boolean } | undefined;
    return { type: cause.type ?? 'Error', message: cause.message, recognised: details?.recognised === true };
  }
  // A timeout (a worker that died mid-activity, a statement slower than the activity): recognised, retried.
  return { type: cause?.name ?? 'ActivityFailure', message: cause?.message ?? error.message, recognised: true };
}
