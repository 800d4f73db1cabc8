import type { Config } from '../config/schema';
import { consumerWindowHours, openDatabricksLakehouse } from './databricks';
import { LocalLakehouse } from './local/localLakehouse';
import type { Lakehouse } from './port';

/** A second process opening the local (DuckDB) lakehouse, which one process may write. */
export class LocalLakehouseBusyError extends Error {
  override readonly name = 'LocalLakehouseBusyError';
}

/** Opens the lakehouse the config selects. */
export async function openLakehouse(config: Config): Promise<Lakehouse> {
  if (config.lakehouse.target === 'local') {
    try {
      return await LocalLakehouse.open(config.lakehouse.local.path, config.tables, {
        faults: config.lakehouse.local.faults,
        memoryLimitMB: config.lakehouse.local.memoryLimitMB,
        consumerWindowHours: consumerWindowHours(config),
      });
    } catch (error) {
      const holder = /Conflicting lock is held in .*\(PID (\d+)\)/.exec((error as Error).message);
      if (!holder) throw error;
      throw new LocalLakehouseBusyError(
        `the local lakehouse ${config.lakehouse.local.path} is open in process ${holder[1]} (npm start or another worker): DuckDB lets one process write it, so the local lakehouse runs one worker. ` +
          'Stop that process first, or, for several workers, use a shared lakehouse (lakehouse.target: databricks)',
      );
    }
  }
  return openDatabricksLakehouse(config);
}

export type { Lakehouse } from './port';
