import type { Config } from '../config/schema';
import { LocalLakehouse } from './local/localLakehouse';
import type { Lakehouse } from './port';

export class TargetNotAvailableError extends Error {
  override readonly name = 'TargetNotAvailableError';
}

/** Opens the lakehouse the config selects. */
export async function openLakehouse(config: Config): Promise<Lakehouse> {
  if (config.lakehouse.target === 'local') {
    return LocalLakehouse.open(config.lakehouse.local.path, config.tables, { faults: config.lakehouse.local.faults });
  }
  throw new TargetNotAvailableError(
    'lakehouse.target "databricks" is not built yet in this version (tracked as the Databricks adapters issue); set lakehouse.target to "local"',
  );
}

export type { Lakehouse } from './port';
