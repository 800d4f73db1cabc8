import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A Databricks workspace as far as this project uses it, over real HTTPS with a certificate made
 * for the occasion: Jobs API 2.2 run-now, runs/get and runs/cancel, and the OAuth token endpoint,
 * answering the documented shapes. Runs go QUEUED → RUNNING → TERMINATED, one step per runs/get;
 * a cancelled run stays TERMINATING for `cancelPolls` polls (one whose job code is still executing
 * too: Databricks stops the code). A test may delete a run (`deleteRun`), as an operator, a job
 * re-deployment or the 60-day run retention does: runs/get and runs/cancel then answer 400
 * INVALID_PARAMETER_VALUE "Run <id> does not exist.", and run-now with that run's idempotency token
 * errors (documented: "If a run with the token was deleted, an error is returned"; the error's
 * code is not documented, INVALID_PARAMETER_VALUE here). Every request is recorded.
 */

/** How runs launched from now on terminate (status.termination_details). */
export interface RunOutcome {
  code: string;
  type: string;
  message?: string;
}

/** An answer the next calls get instead of the real one. */
export interface Fault {
  status: number;
  retryAfter?: string;
  errorCode?: string;
  message?: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface FakeJobsApiOptions {
  jobId?: number;
  /** The personal access token the workspace accepts. */
  pat?: string;
  oauthClient?: { clientId: string; clientSecret: string; expiresInSeconds?: number };
}

interface FakeRun {
  runId: number;
  numberInJob: number;
  idempotencyToken?: string;
  jobParameters: Record<string, string>;
  startTime: number;
  endTime?: number;
  step: number;
  outcome: RunOutcome;
  /** Polls left in TERMINATING once a cancel arrived. */
  cancelPollsLeft?: number;
  /** The job's code still running (with `execute`): the run stays RUNNING until it ends or is cancelled. */
  executing?: boolean;
  /** run-now requests that named this run's token (the first included). */
  launchRequests: number;
}

const LIFE_CYCLE = ['QUEUED', 'RUNNING', 'TERMINATED'] as const;
const SUCCESS: RunOutcome = { code: 'SUCCESS', type: 'SUCCESS', message: '' };

export class FakeJobsApi {
  readonly requests: RecordedRequest[] = [];
  outcome: RunOutcome = SUCCESS;
  /** When set, decides each new run's outcome from its job parameters (else `outcome`). */
  outcomeFor?: (jobParameters: Record<string, string>) => RunOutcome;
  /**
   * When set, each new run executes this (the job's code) and is RUNNING until it settles: its
   * outcome is what it resolves to, or RUN_EXECUTION_ERROR with the message it throws, as a
   * notebook's exception ends a Databricks run.
   */
  execute?: (jobParameters: Record<string, string>) => Promise<RunOutcome>;
  cancelPolls = 2;
  readonly jobId: number;
  readonly pat: string;
  private readonly runs = new Map<number, FakeRun>();
  /** Tokens of deleted runs, with the run each one had started. */
  private readonly deletedTokens = new Map<string, number>();
  private readonly faults: Fault[] = [];
  private readonly issuedTokens = new Set<string>();
  private nextRunId = 900_001;

  private constructor(
    private readonly server: Server,
    private readonly certDir: string,
    readonly baseUrl: string,
    private readonly options: FakeJobsApiOptions,
  ) {
    this.jobId = options.jobId ?? 4242;
    this.pat = options.pat ?? 'dapi-fake-0123456789abcdef';
  }

  /** The fake's certificate (PEM), for NODE_EXTRA_CA_CERTS. */
  get caFile(): string {
    return join(this.certDir, 'cert.pem');
  }

  static async start(options: FakeJobsApiOptions = {}): Promise<FakeJobsApi> {
    const certDir = mkdtempSync(join(tmpdir(), 'fake-jobs-api-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem'),
    ], { stdio: 'ignore' });
    let fake!: FakeJobsApi;
    const server = createServer({ key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) }, (req, res) => {
      void fake.handle(req, res).catch((error: Error) => send(res, 500, { error_code: 'INTERNAL_ERROR', message: error.message }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    fake = new FakeJobsApi(server, certDir, `https://127.0.0.1:${port}`, options);
    return fake;
  }

  /** The next `count` API calls (not the token endpoint) get `fault` instead of an answer. */
  failNext(count: number, fault: Fault): void {
    for (let i = 0; i < count; i++) this.faults.push(fault);
  }

  /** Moves a run's start_time into the past, as if an earlier launch had created it. */
  backdate(runId: string, ms: number): void {
    this.runs.get(Number(runId))!.startTime -= ms;
  }

  /** Every run launched so far and not deleted: its token, parameters, the code it terminates with and how often run-now asked for it. */
  launchedRuns(): { runId: number; idempotencyToken?: string; jobParameters: Record<string, string>; code: string; message?: string; state: string; launchRequests: number }[] {
    return [...this.runs.values()].map((r) => ({
      runId: r.runId,
      idempotencyToken: r.idempotencyToken,
      jobParameters: r.jobParameters,
      code: this.stateOf(r) === 'TERMINATED' ? this.outcomeOf(r).code : r.outcome.code,
      message: r.outcome.message,
      state: this.stateOf(r),
      launchRequests: r.launchRequests,
    }));
  }

  /** Deletes a run in any state, as a job re-deployment or the run retention does; it is gone from every endpoint. */
  deleteRun(runId: number | string): void {
    const run = this.runs.get(Number(runId));
    if (!run) throw new Error(`fake Jobs API: no run ${runId} to delete`);
    this.runs.delete(run.runId);
    if (run.idempotencyToken !== undefined) this.deletedTokens.set(run.idempotencyToken, run.runId);
  }

  /** Ids of the runs deleted so far. */
  deletedRuns(): number[] {
    return [...this.deletedTokens.values()];
  }

  runCount(): number {
    return this.runs.size;
  }

  /** Recorded requests whose path starts with `prefix`. */
  requestsTo(prefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith(prefix));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.certDir, { recursive: true, force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const url = new URL(req.url ?? '/', this.baseUrl);
    const isJson = (req.headers['content-type'] ?? '').startsWith('application/json');
    this.requests.push({ method: req.method ?? '', path: `${url.pathname}${url.search}`, headers: req.headers, body: isJson ? JSON.parse(text) : text });

    if (req.method === 'POST' && url.pathname === '/oidc/v1/token') return this.issueToken(req, text, res);
    // Not part of the Jobs API: lets a test read the runs of a fake running in another process.
    if (req.method === 'GET' && url.pathname === '/fake/runs') return send(res, 200, this.launchedRuns());
    const fault = this.faults.shift();
    if (fault) {
      const headers: Record<string, string> = fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {};
      return send(res, fault.status, { error_code: fault.errorCode ?? (fault.status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : 'TEMPORARILY_UNAVAILABLE'), message: fault.message ?? `fault ${fault.status}` }, headers);
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || (bearer !== this.pat && !this.issuedTokens.has(bearer))) {
      return send(res, 401, { error_code: 'UNAUTHENTICATED', message: 'Invalid access token.' });
    }
    const body = (isJson ? JSON.parse(text) : {}) as Record<string, unknown>;
    if (req.method === 'POST' && url.pathname === '/api/2.2/jobs/run-now') return this.runNow(body, res);
    if (req.method === 'GET' && url.pathname === '/api/2.2/jobs/runs/get') return this.getRun(Number(url.searchParams.get('run_id')), res);
    if (req.method === 'POST' && url.pathname === '/api/2.2/jobs/runs/cancel') return this.cancelRun(body.run_id, res);
    send(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `No API found for '${req.method} ${url.pathname}'` });
  }

  private runNow(body: Record<string, unknown>, res: ServerResponse): void {
    if (body.job_id !== this.jobId) return invalid(res, `Job ${String(body.job_id)} does not exist.`);
    const token = body.idempotency_token;
    if (token !== undefined && (typeof token !== 'string' || token.length > 64)) return invalid(res, 'idempotency_token must be at most 64 characters.');
    const parameters = body.job_parameters ?? {};
    if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) return invalid(res, 'job_parameters must be a map.');
    for (const [name, value] of Object.entries(parameters)) {
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || typeof value !== 'string') return invalid(res, `Job parameter ${name} must be a string.`);
    }
    if (token !== undefined && this.deletedTokens.has(token)) {
      return invalid(res, `The run ${this.deletedTokens.get(token)} created with idempotency token ${token} was deleted; use a new idempotency token.`);
    }
    let run = [...this.runs.values()].find((r) => token !== undefined && r.idempotencyToken === token);
    if (run) {
      run.launchRequests += 1;
    } else {
      run = { runId: this.nextRunId++, numberInJob: this.runs.size + this.deletedTokens.size + 1, idempotencyToken: token, jobParameters: parameters as Record<string, string>, startTime: Date.now(), step: 0, outcome: this.outcomeFor?.(parameters as Record<string, string>) ?? this.outcome, launchRequests: 1 };
      this.runs.set(run.runId, run);
      if (this.execute) this.startExecution(run, this.execute);
    }
    send(res, 200, { run_id: run.runId, number_in_job: run.numberInJob });
  }

  private getRun(runId: number, res: ServerResponse): void {
    const run = this.runs.get(runId);
    if (!run) return invalid(res, `Run ${runId} does not exist.`);
    send(res, 200, this.describe(run));
    this.advance(run);
  }

  private cancelRun(runId: unknown, res: ServerResponse): void {
    const run = this.runs.get(Number(runId));
    if (typeof runId !== 'number' || !run) return invalid(res, `Run ${String(runId)} does not exist.`);
    if (LIFE_CYCLE[run.step] !== 'TERMINATED' && run.cancelPollsLeft === undefined) run.cancelPollsLeft = this.cancelPolls;
    send(res, 200, {});
  }

  private startExecution(run: FakeRun, execute: (jobParameters: Record<string, string>) => Promise<RunOutcome>): void {
    run.step = LIFE_CYCLE.indexOf('RUNNING');
    run.executing = true;
    const settle = (outcome: RunOutcome) => {
      if (run.cancelPollsLeft !== undefined) return; // cancelled: the code's end changes nothing
      run.outcome = outcome;
      run.executing = false;
      run.step = LIFE_CYCLE.indexOf('TERMINATED');
      run.endTime = Date.now();
    };
    execute(run.jobParameters).then(settle, (error: Error) => settle({ code: 'RUN_EXECUTION_ERROR', type: 'CLIENT_ERROR', message: `Workload failed: ${error.message}` }));
  }

  private advance(run: FakeRun): void {
    if (run.cancelPollsLeft !== undefined && run.cancelPollsLeft > 0) run.cancelPollsLeft -= 1;
    else if (run.executing && run.cancelPollsLeft === undefined) return;
    else if (run.step < LIFE_CYCLE.length - 1) run.step += 1;
    if (this.stateOf(run) === 'TERMINATED') run.endTime ??= Date.now();
  }

  private outcomeOf(run: FakeRun): RunOutcome {
    return run.cancelPollsLeft === 0 ? { code: 'USER_CANCELED', type: 'SUCCESS', message: 'Run cancelled by user.' } : run.outcome;
  }

  private stateOf(run: FakeRun): string {
    if (run.cancelPollsLeft !== undefined) return run.cancelPollsLeft > 0 ? 'TERMINATING' : 'TERMINATED';
    return LIFE_CYCLE[run.step]!;
  }

  /** A runs/get response: `status` plus the deprecated `state`, as the 2.2 API returns both. */
  private describe(run: FakeRun): unknown {
    const state = this.stateOf(run);
    const outcome = this.outcomeOf(run);
    const terminated = state === 'TERMINATED';
    const legacyResult = outcome.code === 'SUCCESS' ? 'SUCCESS' : outcome.code === 'USER_CANCELED' ? 'CANCELED' : 'FAILED';
    return {
      job_id: this.jobId,
      run_id: run.runId,
      number_in_job: run.numberInJob,
      run_page_url: `${this.baseUrl}/?o=1234567890#job/${this.jobId}/run/${run.runId}`,
      start_time: run.startTime,
      ...(run.endTime ? { end_time: run.endTime } : {}),
      job_parameters: Object.entries(run.jobParameters).map(([name, value]) => ({ name, value })),
      status: { state, ...(terminated ? { termination_details: outcome } : {}) },
      state: { life_cycle_state: state, ...(terminated ? { result_state: legacyResult } : {}), state_message: terminated ? (outcome.message ?? '') : '' },
    };
  }

  private issueToken(req: IncomingMessage, text: string, res: ServerResponse): void {
    const client = this.options.oauthClient;
    const expected = client && `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`;
    if (!expected || req.headers.authorization !== expected) return send(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed' });
    const form = new URLSearchParams(text);
    if (form.get('grant_type') !== 'client_credentials' || form.get('scope') !== 'all-apis') {
      return send(res, 400, { error: 'invalid_request', error_description: 'expected grant_type=client_credentials and scope=all-apis' });
    }
    const token = `fake-oauth-token-${this.issuedTokens.size + 1}`;
    this.issuedTokens.add(token);
    send(res, 200, { access_token: token, token_type: 'Bearer', expires_in: client.expiresInSeconds ?? 3600, scope: 'all-apis' });
  }
}

function invalid(res: ServerResponse, message: string): void {
  send(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
