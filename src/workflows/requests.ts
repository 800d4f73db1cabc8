import type { ReplayRequest } from './messages';

/**
 * Checks a replay request from a person (UI dialog, CLI, signal): one object with an integer
 * `fromVersion` between 0 and the latest version. Throws an Error whose message says what is
 * wrong and what to send instead. Plain checks rather than zod keep the workflow bundle small.
 */
export function validateReplayRequest(request: unknown, latestVersion: number | null): ReplayRequest {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    throw new Error(`expected one JSON object such as {"fromVersion": 12}, got ${JSON.stringify(request)}`);
  }
  const { fromVersion, reason } = request as Record<string, unknown>;
  if (typeof fromVersion !== 'number' || !Number.isSafeInteger(fromVersion)) {
    throw new Error(`fromVersion must be a whole number, got ${JSON.stringify(fromVersion)}: send {"fromVersion": 12}`);
  }
  if (fromVersion < 0) throw new Error(`fromVersion must be 0 or more, got ${fromVersion}`);
  if (latestVersion === null) throw new Error('the latest version is not known yet: wait for the first capture cycle, then replay');
  if (fromVersion > latestVersion) throw new Error(`fromVersion ${fromVersion} is past the latest version ${latestVersion}: pick a version from 0 to ${latestVersion}`);
  if (reason !== undefined && typeof reason !== 'string') throw new Error('reason must be a string when given');
  return { fromVersion, ...(reason ? { reason: reason.slice(0, 500) } : {}) };
}
