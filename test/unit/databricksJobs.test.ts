import { randomBytes } from 'node:crypto';
import { createTokenProvider } from '../../src/databricks/auth';
import { DatabricksJobsLauncher, toRunState } from '../../src/jobs/databricks/jobsClient';
import { TERMINAL_STATES, idempotencyToken, type LaunchRequest, type RunState } from '../../src/jobs/port';
import { FakeJobsApi, type FakeJobsApiOptions } from '../support/fakeJobsApi';
import { spawnJobsClient, type ClientSetup, type JobsClientProcess } from '../support/jobsClientProcess';

/**
 * The Jobs API 2.2 client against a fake workspace over real HTTPS. The client runs in a child
 * process that trusts the fake's certificate through NODE_EXTRA_CA_CERTS, as a worker would.
 */

const open: { close(): unknown }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((resource) => resource.close()));
});

async function startFake(options: FakeJobsApiOptions = {}): Promise<FakeJobsApi> {
  const fake = await FakeJobsApi.start(options);
  open.push(fake);
  return fake;
}

/** A client with the fake's personal access token, trusting the fake's certificate. */
async function clientFor(fake: FakeJobsApi, overrides: Partial<Extract<ClientSetup, { mode: 'direct' }>> = {}): Promise<JobsClientProcess> {
  const client = await spawnJobsClient(
    { mode: 'direct', baseUrl: fake.baseUrl, jobId: fake.jobId, auth: { kind: 'pat', token: fake.pat }, ...overrides },
    fake.caFile,
  );
  open.push(client);
  return client;
}

function batch(batchNumber = 7, attempt = 1): LaunchRequest {
  const runKey = 'fi-20250101120000-abc';
  return { idempotencyToken: idempotencyToken(runKey, batchNumber, attempt), runKey, batchNumber, batchTable: 'cdf.dispatch_batches', attempt };
}

describe('DatabricksJobsLauncher against a fake workspace', () => {
  it('run-now sends the job id, string job parameters naming the batch (no id list), the idempotency token and queueing', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);

    const launched = await client.launch(batch(7, 2));

    const [runNow] = fake.requestsTo('/api/2.2/jobs/run-now');
    expect(runNow!.body).toEqual({
      job_id: fake.jobId,
      job_parameters: { cdf_run_key: 'fi-20250101120000-abc', cdf_batch_number: '7', cdf_batch_table: 'cdf.dispatch_batches', cdf_attempt: '2' },
      idempotency_token: 'fi-20250101120000-abc-b7-a2',
      queue: { enabled: true },
    });
    expect(launched).toEqual({ runId: '900001', runPageUrl: `${fake.baseUrl}/?o=1234567890#job/${fake.jobId}/run/900001`, reused: false });
  });

  it('a repeated idempotency token returns the same run, reported as reused', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);
    const first = await client.launch(batch());
    fake.backdate(first.runId, 60_000); // the first launch happened a minute ago, e.g. before a worker restart

    const second = await client.launch(batch());

    expect(second.runId).toBe(first.runId);
    expect(second.reused).toBe(true);
    expect(fake.runCount()).toBe(1);
  });

  it('an idempotency token over 64 characters is refused before any request', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);

    await expect(client.launch({ ...batch(), idempotencyToken: 'x'.repeat(65) })).rejects.toMatchObject({ name: 'PermanentError', type: 'IDEMPOTENCY_TOKEN_INVALID' });
    expect(fake.requests).toHaveLength(0);
  });

  it('429 answers are waited out for the seconds in Retry-After, then the call succeeds', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);
    fake.failNext(2, { status: 429, retryAfter: '3' });

    const launched = await client.launch(batch());

    expect(await client.sleeps()).toEqual([3000, 3000]);
    expect(fake.requestsTo('/api/2.2/jobs/run-now')).toHaveLength(3);
    expect(launched.runId).toBe('900001');
  });

  it('a 429 without Retry-After waits one second', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);
    fake.failNext(1, { status: 429 });

    await client.launch(batch());

    expect(await client.sleeps()).toEqual([1000]);
  });

  it('two 503 answers are retried with growing, jittered backoff, then the call succeeds', async () => {
    const fake = await startFake();
    const client = await clientFor(fake);
    fake.failNext(2, { status: 503 });

    const launched = await client.launch(batch());

    const [first, second] = await client.sleeps();
    expect(first).toBeGreaterThanOrEqual(250);
    expect(first).toBeLessThanOrEqual(500);
    expect(second).toBeGreaterThanOrEqual(500);
    expect(second).toBeLessThanOrEqual(1000);
    expect(launched.runId).toBe('900001');
    expect(fake.runCount()).toBe(1);
  });

  it('a persistent 503 ends in a TransientError after maxAttemptsPerCall attempts', async () => {
    const fake = await startFake();
    const client = await clientFor(fake, { maxAttemptsPerCall: 3 });
    fake.failNext(10, { status: 503 });

    await expect(client.getRun('900001')).rejects.toMatchObject({ name: 'TransientError', kind: 'transient', type: 'DATABRICKS_HTTP_503' });
    expect(fake.requests).toHaveLength(3);
  });

  it('a 400 INVALID_PARAMETER_VALUE is a PermanentError with a remedy, not retried', async () => {
    const fake = await startFake();
    const client = await clientFor(fake, { jobId: 1 }); // a job the workspace does not have

    const failure = client.launch(batch());

    await expect(failure).rejects.toMatchObject({ name: 'PermanentError', kind: 'permanent', type: 'INVALID_PARAMETER_VALUE', message: expect.stringContaining('Job 1 does not exist') });
    await expect(failure).rejects.toMatchObject({ remedy: expect.stringContaining('job 1') });
    expect(fake.requests).toHaveLength(1);
  });

  it("run-now with a token whose run was deleted is the typed TokenRunDeletedError (a failed attempt of the batch), not the job's INVALID_PARAMETER_VALUE", async () => {
    const fake = await startFake();
    const client = await clientFor(fake);
    const first = await client.launch(batch());
    fake.deleteRun(first.runId);

    await expect(client.launch(batch())).rejects.toMatchObject({ kind: 'permanent', type: 'IDEMPOTENCY_TOKEN_RUN_DELETED', message: expect.stringContaining('fi-20250101120000-abc-b7-a1') });
  });

  it('a run BLOCKED, WAITING or WAITING_FOR_RETRY is waiting to run: QUEUED, whose time does not count toward the job timeout', () => {
    for (const state of ['BLOCKED', 'WAITING', 'WAITING_FOR_RETRY']) {
      expect(toRunState({ run_id: 1, run_page_url: '', status: { state }, state: { life_cycle_state: state } }).lifeCycleState).toBe('QUEUED');
    }
  });

  it('a cancel that takes several polls ends the run TERMINATED/CANCELED', async () => {
    const fake = await startFake();
    fake.cancelPolls = 3;
    const client = await clientFor(fake);
    const { runId } = await client.launch(batch());

    await client.cancel(runId);
    const states = await client.pollUntilTerminal(runId);

    expect(fake.requestsTo('/api/2.2/jobs/runs/cancel')[0]!.body).toEqual({ run_id: Number(runId) });
    expect(states.map((s) => s.lifeCycleState)).toEqual(['TERMINATING', 'TERMINATING', 'TERMINATING', 'TERMINATED']);
    expect(states.at(-1)).toMatchObject({ resultState: 'CANCELED' });
  });

  it.each([
    { code: 'SUCCESS', type: 'SUCCESS', resultState: 'SUCCESS', relaunchable: undefined },
    { code: 'SUCCESS_WITH_FAILURES', type: 'SUCCESS', resultState: 'FAILED', relaunchable: undefined },
    { code: 'RUN_EXECUTION_ERROR', type: 'CLIENT_ERROR', resultState: 'FAILED', relaunchable: undefined },
    { code: 'INVALID_RUN_CONFIGURATION', type: 'CLIENT_ERROR', resultState: 'FAILED', relaunchable: false },
    { code: 'UNAUTHORIZED_ERROR', type: 'CLIENT_ERROR', resultState: 'FAILED', relaunchable: false },
    { code: 'RESOURCE_NOT_FOUND', type: 'CLIENT_ERROR', resultState: 'FAILED', relaunchable: false },
    { code: 'INTERNAL_ERROR', type: 'INTERNAL_ERROR', resultState: 'FAILED', relaunchable: undefined },
    { code: 'CLOUD_FAILURE', type: 'CLOUD_FAILURE', resultState: 'FAILED', relaunchable: undefined },
    { code: 'USER_CANCELED', type: 'SUCCESS', resultState: 'CANCELED', relaunchable: undefined },
  ])('a run terminated with $code ($type) reads as $resultState, relaunchable $relaunchable', async ({ code, type, resultState, relaunchable }) => {
    const fake = await startFake();
    fake.outcome = { code, type, message: `ended with ${code}` };
    const client = await clientFor(fake);
    const { runId } = await client.launch(batch());

    const states = await client.pollUntilTerminal(runId);

    const last = states.at(-1)!;
    expect(states.map((s) => s.lifeCycleState)).toEqual(['RUNNING', 'TERMINATED']); // launch's own runs/get saw QUEUED
    expect({ resultState: last.resultState, relaunchable: last.relaunchable, stateMessage: last.stateMessage }).toEqual({ resultState, relaunchable, stateMessage: `ended with ${code}` });
    expect(last.endTime).toBeGreaterThanOrEqual(last.startTime!);
  });

  it('a DATABRICKS_HOST with a port and no scheme reaches the workspace through openJobLauncher', async () => {
    const fake = await startFake();
    const client = await spawnJobsClient(
      { mode: 'factory', env: { DATABRICKS_HOST: fake.baseUrl.replace('https://', ''), DATABRICKS_TOKEN: fake.pat, DATABRICKS_JOB_ID: String(fake.jobId) } },
      fake.caFile,
    );
    open.push(client);

    const launched = await client.launch(batch());

    expect(fake.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(launched.runId).toBe('900001');
  });

  it('openJobLauncher without a job id names databricks.jobId and DATABRICKS_JOB_ID', async () => {
    const fake = await startFake();

    const client = spawnJobsClient({ mode: 'factory', env: { DATABRICKS_HOST: fake.baseUrl, DATABRICKS_TOKEN: fake.pat } }, fake.caFile);

    await expect(client).rejects.toMatchObject({ name: 'DatabricksConfigError', message: expect.stringMatching(/databricks\.jobId.*DATABRICKS_JOB_ID/) });
  });

  it('every request carries the token as a Bearer header, and no error message contains it', async () => {
    const fake = await startFake();
    const client = await clientFor(fake, { maxAttemptsPerCall: 2 });
    const { runId } = await client.launch(batch());
    // A proxy that echoes the credential back must not get it into logs or workflow history.
    fake.failNext(1, { status: 403, errorCode: 'PERMISSION_DENIED', message: `token ${fake.pat} may not cancel run ${runId}` });
    fake.failNext(2, { status: 503, message: `upstream saw Authorization: Bearer ${fake.pat}` });

    const permanent = await client.cancel(runId).catch((error: Error) => error);
    const transient = await client.getRun(runId).catch((error: Error) => error);

    expect(fake.requests.map((r) => r.headers.authorization)).toEqual(fake.requests.map(() => `Bearer ${fake.pat}`));
    expect(permanent).toMatchObject({ name: 'PermanentError', type: 'PERMISSION_DENIED' });
    expect(transient).toMatchObject({ name: 'TransientError', type: 'DATABRICKS_HTTP_503' });
    for (const error of [permanent, transient] as Error[]) {
      expect(error.message).toContain('[REDACTED]');
      expect(error.message).not.toContain(fake.pat);
    }
  });

  it('an untrusted workspace certificate fails permanently, naming NODE_EXTRA_CA_CERTS', async () => {
    const fake = await startFake();
    const client = await spawnJobsClient({ mode: 'direct', baseUrl: fake.baseUrl, jobId: fake.jobId, auth: { kind: 'pat', token: fake.pat } }); // no CA
    open.push(client);

    const failure = client.launch(batch());

    await expect(failure).rejects.toMatchObject({ name: 'PermanentError', type: 'DATABRICKS_TLS_UNTRUSTED', remedy: expect.stringContaining('NODE_EXTRA_CA_CERTS') });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('OAuth M2M tokens', () => {
  const oauthClient = { clientId: 'sp-client-id', clientSecret: 'dose-very-secret', expiresInSeconds: 3600 };
  const m2m = { kind: 'oauth-m2m', clientId: oauthClient.clientId, clientSecret: oauthClient.clientSecret } as const;

  it('a service principal gets its token from /oidc/v1/token with Basic auth, reuses it, and refreshes it before expiry', async () => {
    const fake = await startFake({ oauthClient });
    const client = await clientFor(fake, { auth: m2m });

    const { runId } = await client.launch(batch()); // run-now and runs/get: one token
    await client.getRun(runId);
    await client.advanceClock(3600_000 - 60_000); // within a minute of expiry
    await client.getRun(runId);

    const tokenRequests = fake.requestsTo('/oidc/v1/token');
    expect(tokenRequests).toHaveLength(2);
    expect(tokenRequests[0]).toMatchObject({
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('sp-client-id:dose-very-secret').toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=all-apis',
    });
    const bearers = fake.requestsTo('/api/').map((r) => r.headers.authorization);
    expect(bearers).toEqual(['Bearer fake-oauth-token-1', 'Bearer fake-oauth-token-1', 'Bearer fake-oauth-token-1', 'Bearer fake-oauth-token-2']);
  });

  it('concurrent callers share one token request', async () => {
    const fake = await startFake({ oauthClient });
    const client = await clientFor(fake, { auth: m2m });

    const tokens = await client.tokens(5);

    expect(new Set(tokens)).toEqual(new Set(['fake-oauth-token-1']));
    expect(fake.requestsTo('/oidc/v1/token')).toHaveLength(1);
  });

  it('a refused client secret is a PermanentError that does not contain the secret', async () => {
    const fake = await startFake({ oauthClient });
    const client = await clientFor(fake, { auth: { ...m2m, clientSecret: 'dose-wrong-secret' } });

    const error = (await client.launch(batch()).catch((e: Error) => e)) as Error & { type?: string };

    expect(error).toMatchObject({ name: 'PermanentError', type: 'DATABRICKS_OAUTH_INVALID_CLIENT' });
    expect(error.message).not.toContain('dose-wrong-secret');
  });
});

// ---- a real workspace -------------------------------------------------------------------------

const realWorkspace = process.env.DATABRICKS_HOST && process.env.DATABRICKS_TOKEN && process.env.DATABRICKS_JOB_ID;
if (!realWorkspace) {
  console.warn('[databricks jobs] real-workspace suite skipped: set DATABRICKS_HOST, DATABRICKS_TOKEN and DATABRICKS_JOB_ID to run it');
}

/**
 * Against a real job (it must accept the job parameters cdf_run_key, cdf_batch_number,
 * cdf_batch_table and cdf_attempt, and run long enough to be cancelled). Launches two runs.
 */
(realWorkspace ? describe : describe.skip)('DatabricksJobsLauncher against a real workspace', () => {
  const host = process.env.DATABRICKS_HOST ?? '';
  const baseUrl = /^https:\/\//.test(host) ? host.replace(/\/$/, '') : `https://${host}`;
  const launcher = new DatabricksJobsLauncher({
    baseUrl,
    jobId: Number(process.env.DATABRICKS_JOB_ID),
    tokens: createTokenProvider({ kind: 'pat', token: process.env.DATABRICKS_TOKEN ?? '' }, baseUrl),
  });
  const runKey = `cdf-it-${randomBytes(6).toString('hex')}`;
  const request = (batchNumber: number): LaunchRequest => ({
    idempotencyToken: idempotencyToken(runKey, batchNumber, 1),
    runKey,
    batchNumber,
    batchTable: 'cdf.dispatch_batches',
    attempt: 1,
  });

  async function pollUntilTerminal(runId: string): Promise<RunState> {
    for (;;) {
      const state = await launcher.getRun(runId);
      if (TERMINAL_STATES.has(state.lifeCycleState)) return state;
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
  }

  it('a repeated idempotency token returns the same run, which reaches a terminal state', async () => {
    const first = await launcher.launch(request(1));
    const second = await launcher.launch(request(1));

    expect(second.runId).toBe(first.runId);
    expect(first.runPageUrl).toContain(first.runId);
    const final = await pollUntilTerminal(first.runId);
    expect(final.resultState).toBeDefined();
  }, 60 * 60_000);

  it('a cancelled run ends CANCELED', async () => {
    const { runId } = await launcher.launch(request(2));

    await launcher.cancel(runId);

    expect((await pollUntilTerminal(runId)).resultState).toBe('CANCELED');
  }, 30 * 60_000);
});
