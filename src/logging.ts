import pino from 'pino';
import { DefaultLogger, type LogLevel } from '@temporalio/worker';

/**
 * Errors as JSON with their type, message, stack and causes: an Error's fields are not enumerable,
 * so without these a failed workflow or activity logged `"error":{}`.
 */
export const LOG_SERIALIZERS = { err: pino.stdSerializers.errWithCause, error: pino.stdSerializers.errWithCause, failure: pino.stdSerializers.errWithCause };

/** The process logger: JSON lines on stderr (or appended to $CDF_LOG_FILE), so stdout stays free for command output. */
export const logger = pino(
  { level: process.env.LOG_LEVEL ?? 'info', base: { app: 'cdf-orchestrator' }, serializers: LOG_SERIALIZERS },
  pino.destination({ dest: process.env.CDF_LOG_FILE || 2, sync: true, mkdir: true }),
);

/**
 * Routes the Temporal runtime's logs (worker, workflow and activity `log`, the core's own lines)
 * into the same logger, with their metadata: workflowId, runId, workflowType, activityType and
 * the failure of a failed workflow or activity.
 */
export function temporalLogger(level: LogLevel = 'WARN', target: pino.Logger = logger): DefaultLogger {
  return new DefaultLogger(level, (entry) => {
    const method = entry.level === 'TRACE' ? 'trace' : (entry.level.toLowerCase() as 'debug' | 'info' | 'warn' | 'error');
    target[method]({ ...(entry.meta ?? {}) }, entry.message);
  });
}
