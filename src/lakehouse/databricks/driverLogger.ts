import { LogLevel } from '@databricks/sql';
import { logger } from '../../logging';

const log = logger.child({ component: 'databricks-sql' });

/**
 * The driver's log lines, routed into the process logger. Its default logger writes JSON to the
 * console (stdout), which would mix with command output such as `cdf status --json`; its `info`
 * lines (client created, session opened) are connection chatter, so they go to debug.
 */
export const driverLogger = {
  log(level: LogLevel, message: string): void {
    if (level === LogLevel.error) log.error(message);
    else if (level === LogLevel.warn) log.warn(message);
    else log.debug(message);
  },
};
