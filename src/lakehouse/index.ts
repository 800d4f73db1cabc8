import type { Config } from '../config/schema';
import { openDatabricksLakehouse } from './databricks';
import { LocalLakehouse } from './local/localLakehouse';
import type { Lakehouse } from './port';

/** Opens the lakehouse the config selects. */
export async function openLakehouse(config: Config): Promise<Lakehouse> {
  if (config.lakehouse.target === 'local') {
    return LocalLakehouse.open(config.lakehouse.local.path, config.tables, { faults: config.lakehouse.local.faults, memoryLimitMB: config.lakehouse.local.memoryLimitMB });
  }
  return openDatabricksLakehouse(config);
}

export type { Lakehouse } from './port';
