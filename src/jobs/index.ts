import type { Config } from '../config/schema';
import { createTokenProvider } from '../databricks/auth';
import { DatabricksConfigError, resolveDatabricksConnection } from '../databricks/connection';
import type { Lakehouse } from '../lakehouse/port';
import { DatabricksJobsLauncher } from './databricks/jobsClient';
import { LocalJobRunner } from './local/localJobRunner';
import type { JobLauncher } from './port';

/** Opens the job launcher the config selects; the local runner runs the demo processor on `lakehouse`. */
export async function openJobLauncher(config: Config, lakehouse: Lakehouse, hooks: { onJobsApiRetry?: () => void } = {}): Promise<JobLauncher> {
  if (config.jobs.target === 'local') {
    return LocalJobRunner.open(config.jobs.local.path, {
      processor: (runKey, batchNumber) => lakehouse.processBatch(runKey, batchNumber),
      maxConcurrentRuns: config.jobs.local.maxConcurrentRuns,
      failFirstAttemptRate: config.jobs.local.failFirstAttemptRate,
    });
  }
  const connection = resolveDatabricksConnection(config);
  if (connection.jobId === undefined) {
    throw new DatabricksConfigError('jobs.target is "databricks" but no job is named: set databricks.jobId in the config or DATABRICKS_JOB_ID in the environment (the numeric id of the downstream job)');
  }
  return new DatabricksJobsLauncher({
    baseUrl: connection.baseUrl,
    jobId: connection.jobId,
    tokens: createTokenProvider(connection.auth, connection.baseUrl),
    onRetry: hooks.onJobsApiRetry,
  });
}

export type { JobLauncher } from './port';
