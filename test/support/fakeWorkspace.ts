import { createTokenProvider } from '../../src/databricks/auth';
import { DatabricksJobsLauncher } from '../../src/jobs/databricks/jobsClient';
import { FakeJobsApi } from './fakeJobsApi';
import { fetchTrusting } from './trustingFetch';

/** A local HTTPS server speaking the Jobs API 2.2, and the product's real Jobs client pointed at it. */
export async function fakeWorkspace(): Promise<{ api: FakeJobsApi; launcher: DatabricksJobsLauncher }> {
  const api = await FakeJobsApi.start();
  const launcher = new DatabricksJobsLauncher({
    baseUrl: api.baseUrl,
    jobId: api.jobId,
    tokens: createTokenProvider({ kind: 'pat', token: api.pat }, api.baseUrl),
    fetchImpl: fetchTrusting(api.caFile),
  });
  return { api, launcher };
}
