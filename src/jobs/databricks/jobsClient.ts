/**
 * The downstream job on Databricks, through the Jobs API 2.2.
 *
 * Plain `fetch` rather than an SDK: Node 20's built-in fetch needs no extra dependency, the three
 * endpoints used here are simple JSON calls, and the Databricks SDKs for JavaScript
 * (`@databricks/sdk-*`) are in Beta, where Databricks itself advises pinning exact versions. TLS
 * is Node's: a private CA is trusted through NODE_EXTRA_CA_CERTS (read at process start); checks
 * are never turned off.
 */
import { z } from 'zod';
import { networkReason, type TokenProvider } from '../../databricks/auth';
import { PermanentError, TransientError } from '../../errors';
import {
  MAX_IDEMPOTENCY_TOKEN_LENGTH,
  type JobLauncher,
  type LaunchRequest,
  type LaunchedRun,
  type LifeCycleState,
  type ResultState,
  type RunState,
  RunNotFoundError,
  TokenRunDeletedError,
} from '../port';

/** The job parameters every run-now sends; the downstream job must define each (databricks/resources). */
export const JOB_PARAMETER_NAMES = ['cdf_run_key', 'cdf_batch_number', 'cdf_batch_table', 'cdf_attempt'] as const;
export type JobParameterName = (typeof JOB_PARAMETER_NAMES)[number];

export interface DatabricksJobsLauncherOptions {
  /** https://host[:port] of the workspace. */
  baseUrl: string;
  /** The downstream job launched once per batch. */
  jobId: number;
  tokens: TokenProvider;
  fetchImpl?: typeof fetch;
  /** Waits between attempts of one call; tests record the delays instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
  /** Attempts per REST call on 429, 5xx and network errors before a TransientError (default 6). */
  maxAttemptsPerCall?: number;
  /** First backoff delay after a 5xx or network error; doubles per attempt, with jitter (default 500 ms). */
  retryBaseDelayMs?: number;
  /** Per-request timeout (default 30 s). */
  requestTimeoutMs?: number;
  /** Called before each retry of a call (429, 5xx, a lost connection): the worker's metrics count them. */
  onRetry?: () => void;
}

const API = '/api/2.2/jobs';
/** Retry-After is honoured up to this; a longer wait is the activity retry policy's job. */
const MAX_RETRY_AFTER_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
/** A run whose start_time is this much before the launch call began existed already (see `launch`). */
const REUSE_ALLOWANCE_MS = 5_000;

// Run ids are int64 on the wire; zod's int() rejects anything beyond 2^53 instead of rounding it to another run's id.
const runId = z.number().int().nonnegative();

const runNowResponseSchema = z.object({ run_id: runId, number_in_job: z.number().int().optional() });

// Enum-like fields stay strings: Databricks documents that new termination codes may appear.
const runSchema = z.object({
  run_id: runId,
  run_page_url: z.string().default(''),
  start_time: z.number().optional(),
  end_time: z.number().optional(),
  status: z
    .object({
      state: z.string(),
      queue_details: z.object({ code: z.string().optional(), message: z.string().optional() }).optional(),
      termination_details: z.object({ code: z.string().optional(), type: z.string().optional(), message: z.string().optional() }).optional(),
    })
    .optional(),
  /** Deprecated in favour of `status`; still the only source of SKIPPED, INTERNAL_ERROR and TIMEDOUT. */
  state: z
    .object({ life_cycle_state: z.string().optional(), result_state: z.string().optional(), state_message: z.string().optional() })
    .optional(),
});
type RunResponse = z.infer<typeof runSchema>;

const cancelResponseSchema = z.object({});

const errorBodySchema = z.object({ error_code: z.string().optional(), message: z.string().optional() });

/** Launches and watches the downstream job's runs; see `JobLauncher` for the contract. */
export class DatabricksJobsLauncher implements JobLauncher {
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly maxAttemptsPerCall: number;
  private readonly retryBaseDelayMs: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: DatabricksJobsLauncherOptions) {
    this.fetchImpl = options.fetchImpl ?? fetch;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.maxAttemptsPerCall = options.maxAttemptsPerCall ?? 6;
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 500;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /**
   * Starts a run of the job for one batch. Only references to the batch travel as job parameters
   * (the ids stay in the batch table); the idempotency token makes a repeated launch return the
   * run the token started first, and queueing makes a launch over the concurrency limit wait
   * instead of being skipped.
   *
   * `reused` is inferred, since run-now answers a repeated token exactly like a new one: the run
   * existed before this call if its start_time lies more than 5 s before the call began. The start
   * of the call is taken on the server's clock (the response's Date header less the time the call
   * took locally), so worker clock skew does not matter. Limits: a run created by this same call but
   * answered only on a retry more than 5 s later counts as reused, and a reused run without a
   * start_time counts as new. Both errors lean towards "new", the safe side for the caller's launch
   * budget; a terminal state is deliberately not taken as proof of reuse, because a run can be
   * skipped (e.g. MAX_JOB_QUEUE_SIZE_EXCEEDED) the moment it is created.
   */
  async launch(request: LaunchRequest): Promise<LaunchedRun> {
    const token = request.idempotencyToken;
    if (token.length === 0 || token.length > MAX_IDEMPOTENCY_TOKEN_LENGTH) {
      throw new PermanentError(
        'IDEMPOTENCY_TOKEN_INVALID',
        `idempotency token "${token}" has ${token.length} characters; the Jobs API takes 1 to ${MAX_IDEMPOTENCY_TOKEN_LENGTH}`,
        'shorten the fan-in run key so that key, batch number and attempt fit in 64 characters',
      );
    }
    const body = {
      job_id: this.options.jobId,
      job_parameters: {
        cdf_run_key: request.runKey,
        cdf_batch_number: String(request.batchNumber),
        cdf_batch_table: request.batchTable,
        cdf_attempt: String(request.attempt),
      } satisfies Record<JobParameterName, string>,
      idempotency_token: token,
      queue: { enabled: true },
    };
    // Retrying run-now is safe: the idempotency token turns a retried request into the same run.
    const started = await this.call('POST', '/run-now', runNowResponseSchema, { body }).catch((error: unknown) => {
      // The error of a deleted token's run-now has no documented code: a 400 INVALID_PARAMETER_VALUE naming the token and a deletion is taken as it.
      const deleted = error instanceof PermanentError && error.type === 'INVALID_PARAMETER_VALUE' && /idempotency.token/i.test(error.message) && /delet/i.test(error.message);
      if (deleted) throw new TokenRunDeletedError(token, error.message);
      throw error;
    });
    let run: RunResponse;
    try {
      run = await notFoundAsRunNotFound(String(started.data.run_id), () => this.fetchRun(String(started.data.run_id)));
    } catch (error) {
      // Deleted between run-now and this read: the caller records it and its watcher finds it gone (a failed attempt).
      if (error instanceof RunNotFoundError) return { runId: String(started.data.run_id), runPageUrl: '', reused: false };
      throw error;
    }
    const callStartedOnServer = started.serverTime - started.elapsedMs;
    const reused = run.start_time !== undefined && run.start_time > 0 && run.start_time < callStartedOnServer - REUSE_ALLOWANCE_MS;
    return { runId: String(started.data.run_id), runPageUrl: run.run_page_url, reused };
  }

  async getRun(runId: string): Promise<RunState> {
    return toRunState(await notFoundAsRunNotFound(runId, () => this.fetchRun(runId)));
  }

  /** Asks Databricks to cancel the run; it stops asynchronously, so callers poll `getRun` until terminal. A deleted run has nothing to cancel. */
  async cancel(runId: string): Promise<void> {
    try {
      await notFoundAsRunNotFound(runId, () => this.call('POST', '/runs/cancel', cancelResponseSchema, { body: { run_id: Number(numericRunId(runId)) } }));
    } catch (error) {
      if (!(error instanceof RunNotFoundError)) throw error;
    }
  }

  async close(): Promise<void> {
    // fetch keeps no per-launcher connections or timers.
  }

  private async fetchRun(runId: string): Promise<RunResponse> {
    const { data } = await this.call('GET', `/runs/get?run_id=${numericRunId(runId)}`, runSchema, {});
    return data;
  }

  /**
   * One REST call with the retry rules: 429 waits Retry-After (1 s when absent, like the Python
   * SDK), 5xx and network errors back off exponentially with jitter, both at most
   * `maxAttemptsPerCall` attempts before a TransientError; any other 4xx is a PermanentError named
   * by the response's error_code. The bearer token is redacted from every message.
   */
  private async call<T>(
    method: 'GET' | 'POST',
    path: string,
    schema: z.ZodType<T>,
    { body }: { body?: unknown },
  ): Promise<{ data: T; serverTime: number; elapsedMs: number }> {
    const url = `${this.options.baseUrl}${API}${path}`;
    const what = `${method} ${API}${path}`;
    const startedAt = performance.now();
    let lastFailure = '';
    let lastType = '';
    for (let attempt = 1; attempt <= this.maxAttemptsPerCall; attempt++) {
      const token = await this.options.tokens.token();
      const redact = (text: string) => (token ? text.split(token).join('[REDACTED]') : text);
      let response: Response;
      let text: string;
      try {
        response = await this.fetchImpl(url, {
          method,
          headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.requestTimeoutMs),
        });
        text = await response.text();
      } catch (error) {
        const reason = redact(networkReason(error));
        if (isCertificateError(error)) {
          throw new PermanentError(
            'DATABRICKS_TLS_UNTRUSTED',
            `${what}: the workspace certificate is not trusted (${reason})`,
            'if a proxy or private CA signs the workspace certificate, put that CA in a PEM file and start the worker with NODE_EXTRA_CA_CERTS=<file>',
          );
        }
        // Every other network failure (reset, refused, timeout, socket hang up, DNS) may pass; retry it.
        lastType = `DATABRICKS_NETWORK_${networkCode(error)}`;
        lastFailure = reason;
        if (attempt < this.maxAttemptsPerCall) {
          this.options.onRetry?.();
          await this.sleep(this.backoff(attempt));
        }
        continue;
      }

      const errorBody = response.ok ? undefined : errorBodySchema.safeParse(safeJson(text)).data;
      const errorCode = errorBody?.error_code;
      const throttled = response.status === 429 || (response.status === 400 && errorCode === 'REQUEST_LIMIT_EXCEEDED');
      if (response.ok) {
        const parsed = schema.safeParse(safeJson(text));
        if (!parsed.success) {
          throw new PermanentError(
            'DATABRICKS_UNEXPECTED_RESPONSE',
            redact(`${what} answered ${response.status} with a body this client does not understand: ${z.prettifyError(parsed.error)}`),
            'check that DATABRICKS_HOST is the workspace URL; if it is, the Jobs API 2.2 response changed and this client needs updating',
          );
        }
        const serverTime = Date.parse(response.headers.get('date') ?? '');
        return { data: parsed.data, serverTime: Number.isNaN(serverTime) ? Date.now() : serverTime, elapsedMs: performance.now() - startedAt };
      }
      const detail = redact(`${what} → HTTP ${response.status}${errorCode ? ` ${errorCode}` : ''}: ${(errorBody?.message ?? text).slice(0, 500)}`);
      if (!throttled && response.status < 500) {
        throw new PermanentError(errorCode ?? `DATABRICKS_HTTP_${response.status}`, detail, remedyFor(response.status, errorCode, this.options.jobId));
      }
      lastType = throttled ? 'DATABRICKS_HTTP_429' : `DATABRICKS_HTTP_${response.status}`;
      lastFailure = detail;
      if (attempt < this.maxAttemptsPerCall) {
        this.options.onRetry?.();
        const retryAfter = retryAfterMs(response.headers.get('retry-after'));
        await this.sleep(retryAfter ?? (throttled ? 1_000 : this.backoff(attempt)));
      }
    }
    throw new TransientError(lastType, `${what} failed ${this.maxAttemptsPerCall} times; last: ${lastFailure}`);
  }

  /** Exponential backoff with jitter: a random delay between half and all of base·2^(attempt-1), capped at 30 s. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(MAX_BACKOFF_MS, this.retryBaseDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling * (0.5 + Math.random() * 0.5));
  }
}

/**
 * runs/get and runs/cancel answer an unknown run with 400 INVALID_PARAMETER_VALUE "Run … does not
 * exist" (the SDKs map it to ResourceDoesNotExist, which a 404 RESOURCE_DOES_NOT_EXIST also is).
 */
async function notFoundAsRunNotFound<T>(runId: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const gone = error instanceof PermanentError && (error.type === 'RESOURCE_DOES_NOT_EXIST' || (error.type === 'INVALID_PARAMETER_VALUE' && /does not exist/i.test(error.message)));
    if (gone) throw new RunNotFoundError(runId, error.message);
    throw error;
  }
}

/** Maps a runs/get response to the port's RunState. */
export function toRunState(run: RunResponse): RunState {
  const lifeCycleState = lifeCycleStateOf(run);
  const termination = run.status?.termination_details;
  const terminal = lifeCycleState === 'TERMINATED' || lifeCycleState === 'SKIPPED' || lifeCycleState === 'INTERNAL_ERROR';
  return {
    runId: String(run.run_id),
    lifeCycleState,
    resultState: terminal ? resultStateOf(run) : undefined,
    stateMessage: termination?.message || run.status?.queue_details?.message || run.state?.state_message || '',
    runPageUrl: run.run_page_url,
    startTime: run.start_time || undefined,
    endTime: run.end_time || undefined,
    relaunchable: terminal ? relaunchableOf(termination?.code) : undefined,
  };
}

function lifeCycleStateOf(run: RunResponse): LifeCycleState {
  const legacy = run.state?.life_cycle_state;
  // status.state has no SKIPPED or INTERNAL_ERROR: those runs show TERMINATED there.
  if (legacy === 'SKIPPED' || legacy === 'INTERNAL_ERROR') return legacy;
  switch (run.status?.state ?? legacy) {
    // Waiting to run: not counted toward the job timeout (see LifeCycleState).
    case 'QUEUED':
    case 'BLOCKED':
    case 'WAITING':
    case 'WAITING_FOR_RETRY':
      return 'QUEUED';
    case 'RUNNING':
      return 'RUNNING';
    case 'TERMINATING':
      return 'TERMINATING';
    case 'TERMINATED':
      return 'TERMINATED';
    // PENDING and any state added later: not terminal, so the caller keeps polling rather than
    // misreading an unknown state.
    default:
      return 'PENDING';
  }
}

/**
 * SUCCESS_WITH_FAILURES counts as FAILED: some task runs of the job failed, so the batch was not
 * fully processed. CANCELED by the platform is reported as TIMEDOUT when the legacy result says so.
 */
function resultStateOf(run: RunResponse): ResultState {
  const code = run.status?.termination_details?.code;
  const legacy = run.state?.result_state;
  if (code === undefined) {
    if (legacy === 'SUCCESS' || legacy === 'TIMEDOUT') return legacy;
    if (legacy === 'CANCELED' || legacy === 'UPSTREAM_CANCELED') return 'CANCELED';
    return 'FAILED';
  }
  if (code === 'SUCCESS') return 'SUCCESS';
  if (code === 'USER_CANCELED') return 'CANCELED';
  if (code === 'CANCELED') return legacy === 'TIMEDOUT' ? 'TIMEDOUT' : 'CANCELED';
  return 'FAILED';
}

/**
 * Termination codes that say the job itself cannot run (Jobs API 2.2 `termination_details.code`):
 * relaunching a batch cannot cure them. RUN_EXECUTION_ERROR, although typed CLIENT_ERROR ("caused
 * by user input or the job configuration"), is an exception in the job's code, which a relaunch
 * after a fix, or a transient cause, does cure: it is relaunched like any other failure.
 */
const JOB_LEVEL_TERMINATION_CODES = new Set(['RESOURCE_NOT_FOUND', 'UNAUTHORIZED_ERROR', 'INVALID_RUN_CONFIGURATION', 'FEATURE_DISABLED']);

function relaunchableOf(code: string | undefined): boolean | undefined {
  return code !== undefined && JOB_LEVEL_TERMINATION_CODES.has(code) ? false : undefined;
}

function remedyFor(status: number, errorCode: string | undefined, jobId: number): string {
  if (status === 401) return 'the token was refused: renew DATABRICKS_TOKEN, or check DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET, then restart the worker';
  if (status === 403 || errorCode === 'PERMISSION_DENIED') return `grant the worker's principal CAN MANAGE RUN on job ${jobId}`;
  if (status === 404 || errorCode === 'RESOURCE_DOES_NOT_EXIST') return `check databricks.jobId / DATABRICKS_JOB_ID (${jobId}) and that the job exists in this workspace`;
  if (errorCode === 'INVALID_PARAMETER_VALUE') {
    return `check that job ${jobId} exists and defines the job parameters cdf_run_key, cdf_batch_number, cdf_batch_table and cdf_attempt`;
  }
  return 'read the message above; fix the job or the worker configuration, then resume the source';
}

function numericRunId(runId: string): string {
  if (!/^\d+$/.test(runId)) throw new PermanentError('DATABRICKS_RUN_ID_INVALID', `"${runId}" is not a Databricks run id`, 'this is a bug: run ids come from run-now');
  return runId;
}

/** Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3). */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

const CERTIFICATE_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

function causeCode(error: unknown): string | undefined {
  const withCause = error as { cause?: { code?: unknown }; code?: unknown; name?: unknown } | undefined;
  const code = withCause?.cause?.code ?? withCause?.code;
  return typeof code === 'string' ? code : undefined;
}

function isCertificateError(error: unknown): boolean {
  return CERTIFICATE_CODES.test(causeCode(error) ?? '');
}

/** ECONNRESET, ECONNREFUSED, ETIMEDOUT, UND_ERR_SOCKET ("socket hang up" / "other side closed"), TIMEOUT ... */
function networkCode(error: unknown): string {
  const code = causeCode(error);
  if (code) return code.replace(/[^A-Z0-9_]/gi, '_').toUpperCase();
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'TIMEOUT';
  return 'ERROR';
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
