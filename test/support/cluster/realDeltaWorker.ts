/**
 * `npm run worker` as the cluster tier runs it: the product's worker process (runWorkerProcess)
 * with the two adapters it cannot build from the config alone here, both the product's own
 * classes: the Databricks lakehouse through the Spark Thrift Server's driver shims
 * (test/support/realDelta/sparkThriftDriver.ts), and the Databricks Jobs launcher pointed at the
 * Jobs API emulator (a self-signed certificate; on Databricks both share databricks.host).
 *
 * Environment: CDF_CONFIG, CDF_TEST_DELTA_* (the Thrift server), CDF_TEST_JOBS_URL,
 * CDF_TEST_JOBS_CA_FILE, CDF_TEST_JOBS_PAT, CDF_TEST_JOBS_JOB_ID (the emulator).
 */
import { loadConfig } from '../../../src/config/load';
import { DatabricksJobsLauncher } from '../../../src/jobs/databricks/jobsClient';
import { logger } from '../../../src/logging';
import { runWorkerProcess } from '../../../src/worker';
import { realDeltaLakehouse } from '../../realDelta/support';
import { fetchTrusting } from '../trustingFetch';

const config = loadConfig();
const token = process.env.CDF_TEST_JOBS_PAT!;
const jobs = new DatabricksJobsLauncher({
  baseUrl: process.env.CDF_TEST_JOBS_URL!,
  jobId: Number(process.env.CDF_TEST_JOBS_JOB_ID),
  tokens: { token: async () => token },
  fetchImpl: fetchTrusting(process.env.CDF_TEST_JOBS_CA_FILE!),
});
runWorkerProcess(config, { lakehouse: realDeltaLakehouse(config), jobs }).catch((error: Error) => {
  logger.error({ err: error }, error.message);
  process.exit(1);
});
