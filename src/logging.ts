import pino from 'pino';
import { DefaultLogger, type LogLevel } from '@temporalio/worker';

/** The process logger: JSON lines on stderr (or appended to $CDF_LOG_FILE), so stdout stays free for command output. */
export const logger = pino(
  { level: process.env.LOG_LEVEL ?? 'info', base: { app: 'cdf-orchestrator' } },
  pino.destination({ dest: process.env.CDF_LOG_FILE || 2, sync: true, mkdir: true }),
);

/** Routes the Temporal runtime's logs (worker, workflow and activity `log`) into the same logger. */
export function temporalLogger(level: LogLevel = 'WARN'): DefaultLogger {
  return new DefaultLogger(level, (entry) => {
    const method = entry.level === 'TRACE' ? 'trace' : (entry.level.toLowerCase() as 'debug' | 'info' | 'warn' | 'error');
    logger[method]({ ...(entry.meta ?? {}) }, entry.message);
  });
}
