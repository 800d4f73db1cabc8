import { ApplicationFailure } from '@temporalio/common';
import type { ReplayRequest } from './messages';

/**
 * A refused request: non-retryable (sending the same payload again cannot succeed), typed
 * InvalidRequest, with a message that says what to send instead.
 */
function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ message, type: 'InvalidRequest', nonRetryable: true });
}

/**
 * Checks a replay request from a person (UI dialog, CLI, signal): one object with an integer
 * `fromVersion` of 0 or more (the rewind activity checks it against the table's live latest version). Throws a non-retryable
 * InvalidRequest failure whose message says what is wrong and what to send instead. Plain checks rather than zod keep the workflow bundle small.
 */
export function validateReplayRequest(request: unknown): ReplayRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw invalid(`expected one JSON object such as {"fromVersion": 12}, got ${describeValue(request)}`);
  }
  const { fromVersion, reason, redispatch } = request as Record<string, unknown>;
  if (typeof fromVersion !== 'number' || !Number.isSafeInteger(fromVersion)) {
    throw invalid(`fromVersion must be a whole number, got ${describeValue(fromVersion)}: send {"fromVersion": 12}`);
  }
  if (fromVersion < 0) throw invalid(`fromVersion must be 0 or more, got ${fromVersion}`);
  if (reason !== undefined && typeof reason !== 'string') throw invalid('reason must be a string when given');
  if (redispatch !== undefined && typeof redispatch !== 'boolean') throw invalid(`redispatch must be true or false, got ${describeValue(redispatch)}`);
  return { fromVersion, ...(redispatch ? { redispatch } : {}), ...(reason ? { reason: reason.slice(0, 500) } : {}) };
}

/**
 * A payload value as a message quotes it: its JSON, cut to `max` characters. A 200 KB payload must
 * not come back whole in a refusal, in status.lastRejected or in `cdf status`.
 */
export function describeValue(value: unknown, max = 100): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * A refused request as status.lastRejected keeps it: the request itself when small, else its cut
 * JSON text, so an oversized payload does not live on in the workflow's state, every status query
 * and the continue-as-new input.
 */
export function recordableRequest(request: unknown, max = 1000): unknown {
  const text = JSON.stringify(request) ?? String(request);
  return text.length <= max ? request : describeValue(request, max);
}
