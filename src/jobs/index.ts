import type { Config } from '../config/schema';
import { TargetNotAvailableError } from '../lakehouse';
import type { Lakehouse } from '../lakehouse/port';
import { LocalJobRunner } from './local/localJobRunner';
import type { JobLauncher } from './port';

/** Opens the job launcher the config selects; the local runner runs the demo processor on `lakehouse`. */
export async function openJobLauncher(config: Config, lakehouse: Lakehouse): Promise<JobLauncher> {
  if (config.jobs.target === 'local') {
    return LocalJobRunner.open(config.jobs.local.path, {
      processor: (runKey, batchNumber) => lakehouse.processBatch(runKey, batchNumber),
      maxConcurrentRuns: config.jobs.local.maxConcurrentRuns,
      failFirstAttemptRate: config.jobs.local.failFirstAttemptRate,
    });
  }
  throw new TargetNotAvailableError(
    'jobs.target "databricks" is not built yet in this version (tracked as the Databricks adapters issue); set jobs.target to "local"',
  );
}

export type { JobLauncher } from './port';
