/**
 * A Databricks Jobs API 2.2 emulator as its own process, for several workers sharing one job
 * launcher: the fake workspace (test/support/fakeJobsApi.ts, the documented request and response
 * shapes) whose runs execute the demo job for real, a MERGE of the batch's ids into the target
 * table on the Spark Thrift Server, through the product's Databricks lakehouse adapter. A run is
 * RUNNING while that statement runs and ends SUCCESS, or RUN_EXECUTION_ERROR if it throws.
 *
 * Environment: CDF_CONFIG (the pipeline's config: tables, the warehouse), CDF_TEST_DELTA_* (the
 * Thrift server). Prints one JSON line, {"url", "caFile", "pat", "jobId"}, once it listens.
 */
import { loadConfig } from '../../../src/config/load';
import { realDeltaLakehouse } from '../../realDelta/support';
import { FakeJobsApi } from '../fakeJobsApi';

async function main(): Promise<void> {
  const config = loadConfig();
  const lakehouse = realDeltaLakehouse(config);
  const api = await FakeJobsApi.start({ jobId: 4242 });
  api.execute = async (parameters) => {
    await lakehouse.processBatch(parameters.cdf_run_key!, Number(parameters.cdf_batch_number));
    return { code: 'SUCCESS', type: 'SUCCESS', message: '' };
  };
  const stop = () => void Promise.all([api.close(), lakehouse.close()]).finally(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log(JSON.stringify({ url: api.baseUrl, caFile: api.caFile, pat: api.pat, jobId: api.jobId }));
}

main().catch((error: Error) => {
  console.error(`[jobs emulator] ${error.stack ?? error.message}`);
  process.exit(1);
});
