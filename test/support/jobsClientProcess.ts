import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { createTokenProvider, type TokenProvider } from '../../src/databricks/auth';
import type { DatabricksAuthConfig } from '../../src/databricks/connection';
import { DatabricksJobsLauncher } from '../../src/jobs/databricks/jobsClient';
import { TERMINAL_STATES, type JobLauncher, type LaunchRequest, type LaunchedRun, type RunState } from '../../src/jobs/port';

/**
 * The Databricks jobs client in a child process, driven from a test. Node reads
 * NODE_EXTRA_CA_CERTS only at start-up, so trusting the fake workspace's certificate the way a
 * worker would (real fetch, no TLS switches) takes a fresh process. The child runs this same file.
 */

export type ClientSetup =
  /** The launcher built directly, with a recording sleep and a movable token clock. */
  | { mode: 'direct'; baseUrl: string; jobId: number; auth: DatabricksAuthConfig; maxAttemptsPerCall?: number }
  /** The launcher the worker would build: `openJobLauncher` on a config with jobs.target "databricks" and these variables. */
  | { mode: 'factory'; env: Record<string, string> };

/** A PipelineError (or any error) as the child threw it. */
export class ChildError extends Error {
  type?: string;
  kind?: string;
  remedy?: string;
}

export interface JobsClientProcess {
  launch(request: LaunchRequest): Promise<LaunchedRun>;
  getRun(runId: string): Promise<RunState>;
  cancel(runId: string): Promise<void>;
  /** getRun until the run is terminal; every state seen, in order. */
  pollUntilTerminal(runId: string): Promise<RunState[]>;
  /** `count` concurrent calls of the token provider. */
  tokens(count: number): Promise<string[]>;
  /** The delays the launcher asked to sleep, in order. */
  sleeps(): Promise<number[]>;
  /** Moves the token provider's clock forward. */
  advanceClock(ms: number): Promise<void>;
  close(): void;
}

/**
 * Starts the child; `trustCa` is the PEM file given to it as NODE_EXTRA_CA_CERTS (none: the
 * default trust store only). Rejects with the child's error if the launcher cannot be built.
 */
export async function spawnJobsClient(setup: ClientSetup, trustCa?: string): Promise<JobsClientProcess> {
  const env: NodeJS.ProcessEnv = { ...withoutDatabricksVariables(process.env), CDF_JOBS_CLIENT_SETUP: JSON.stringify(setup) };
  if (setup.mode === 'factory') Object.assign(env, setup.env);
  if (trustCa) env.NODE_EXTRA_CA_CERTS = trustCa;
  else delete env.NODE_EXTRA_CA_CERTS;
  const child = spawn(join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx'), [__filename], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const rpc = new Rpc(child);
  await rpc.call('ready').catch((error: unknown) => {
    child.kill();
    throw error;
  });
  return {
    launch: (request) => rpc.call('launch', request) as Promise<LaunchedRun>,
    getRun: (runId) => rpc.call('getRun', runId) as Promise<RunState>,
    cancel: async (runId) => void (await rpc.call('cancel', runId)),
    pollUntilTerminal: (runId) => rpc.call('pollUntilTerminal', runId) as Promise<RunState[]>,
    tokens: (count) => rpc.call('tokens', count) as Promise<string[]>,
    sleeps: () => rpc.call('sleeps') as Promise<number[]>,
    advanceClock: async (ms) => void (await rpc.call('advanceClock', ms)),
    close: () => child.kill(),
  };
}

/** One JSON line per request and per answer, matched by id. */
class Rpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as { id: number; value?: unknown; error?: Record<string, string> };
      const waiter = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (!answer.error) return waiter?.resolve(answer.value);
      waiter?.reject(Object.assign(new ChildError(answer.error.message), answer.error));
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`jobs client process exited with code ${code}`));
      this.pending.clear();
    });
  }

  call(op: string, arg?: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, arg })}\n`);
    });
  }
}

function withoutDatabricksVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('DATABRICKS_')));
}

// ---- the child ------------------------------------------------------------------------------

async function serveInChild(): Promise<void> {
  const setup = JSON.parse(process.env.CDF_JOBS_CLIENT_SETUP ?? '') as ClientSetup;
  const sleeps: number[] = [];
  let clockOffset = 0;
  let tokens: TokenProvider | undefined;
  let launcher: JobLauncher | undefined;
  let setupError: unknown;
  try {
    if (setup.mode === 'direct') {
      tokens = createTokenProvider(setup.auth, setup.baseUrl, fetch, { now: () => Date.now() + clockOffset });
      launcher = new DatabricksJobsLauncher({
        baseUrl: setup.baseUrl,
        jobId: setup.jobId,
        tokens,
        maxAttemptsPerCall: setup.maxAttemptsPerCall,
        sleep: async (ms) => void sleeps.push(ms),
      });
    } else {
      const { parseConfig } = await import('../../src/config/load');
      const { openJobLauncher } = await import('../../src/jobs');
      const config = parseConfig({ jobs: { target: 'databricks' }, sources: [{ name: 'orders', table: 'upstream.orders' }] });
      launcher = await openJobLauncher(config, undefined as never);
    }
  } catch (error) {
    setupError = error;
  }

  const ops: Record<string, (arg: never) => Promise<unknown>> = {
    ready: async () => {
      if (setupError) throw setupError;
    },
    launch: (request: LaunchRequest) => launcher!.launch(request),
    getRun: (runId: string) => launcher!.getRun(runId),
    cancel: (runId: string) => launcher!.cancel(runId),
    pollUntilTerminal: async (runId: string) => {
      const seen: RunState[] = [];
      for (let polls = 0; polls < 50; polls++) {
        const state = await launcher!.getRun(runId);
        seen.push(state);
        if (TERMINAL_STATES.has(state.lifeCycleState)) return seen;
      }
      throw new Error(`run ${runId} was not terminal after 50 polls`);
    },
    tokens: (count: number) => Promise.all(Array.from({ length: count }, () => tokens!.token())),
    sleeps: async () => sleeps,
    advanceClock: async (ms: number) => void (clockOffset += ms),
  };

  for await (const line of createInterface({ input: process.stdin })) {
    const { id, op, arg } = JSON.parse(line) as { id: number; op: string; arg: never };
    try {
      const value = await ops[op]!(arg);
      process.stdout.write(`${JSON.stringify({ id, value })}\n`);
    } catch (error) {
      const { name, message, type, kind, remedy } = error as ChildError;
      process.stdout.write(`${JSON.stringify({ id, error: { name, message, type, kind, remedy } })}\n`);
    }
  }
}

if (require.main === module) void serveInChild();
