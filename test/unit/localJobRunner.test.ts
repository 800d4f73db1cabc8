import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalJobRunner } from '../../src/jobs/local/localJobRunner';
import { MAX_IDEMPOTENCY_TOKEN_LENGTH, TERMINAL_STATES, idempotencyToken, type LaunchRequest, type RunState } from '../../src/jobs/port';

const RUN_KEY = 'fanin-test-run';

/** A downstream processor the test steers: records calls, holds chosen batches until released, fails chosen batches. */
function controlledProcessor() {
  const held = new Map<number, { promise: Promise<void>; release: () => void }>();
  const failures = new Map<number, string>();
  const state = { calls: [] as number[], active: 0, maxActive: 0 };
  return {
    state,
    hold(batchNumber: number): void {
      let release!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      held.set(batchNumber, { promise, release });
    },
    release(batchNumber: number): void {
      held.get(batchNumber)?.release();
    },
    releaseAll(): void {
      for (const gate of held.values()) gate.release();
    },
    failWith(batchNumber: number, message: string): void {
      failures.set(batchNumber, message);
    },
    async process(_runKey: string, batchNumber: number): Promise<void> {
      state.calls.push(batchNumber);
      state.active += 1;
      state.maxActive = Math.max(state.maxActive, state.active);
      try {
        await held.get(batchNumber)?.promise;
        const failure = failures.get(batchNumber);
        if (failure) throw new Error(failure);
      } finally {
        state.active -= 1;
      }
    },
  };
}

type Processor = ReturnType<typeof controlledProcessor>;

const open: { runner: LocalJobRunner; processor: Processor }[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const { runner, processor } of open.splice(0)) {
    processor.releaseAll();
    await runner.close();
  }
});

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A runner over a fresh processor; closed after the test unless closed earlier with `closeRunner`. */
async function openRunner(
  options: { maxConcurrentRuns?: number; failFirstAttemptRate?: number; path?: string; processor?: Processor } = {},
): Promise<{ runner: LocalJobRunner; processor: Processor }> {
  const processor = options.processor ?? controlledProcessor();
  const runner = await LocalJobRunner.open(options.path ?? ':memory:', {
    processor: (runKey, batchNumber) => processor.process(runKey, batchNumber),
    maxConcurrentRuns: options.maxConcurrentRuns ?? 4,
    failFirstAttemptRate: options.failFirstAttemptRate ?? 0,
  });
  const entry = { runner, processor };
  open.push(entry);
  return entry;
}

async function closeRunner(runner: LocalJobRunner): Promise<void> {
  const index = open.findIndex((entry) => entry.runner === runner);
  const [entry] = open.splice(index, 1);
  entry!.processor.releaseAll();
  await runner.close();
}

function tempDatabasePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-jobs-'));
  tempDirs.push(dir);
  return join(dir, 'local-jobs.duckdb');
}

/** A launch request for one batch of RUN_KEY, with the token the fan-in would derive. */
function batchRequest(batchNumber: number, attempt = 1): LaunchRequest {
  return { idempotencyToken: idempotencyToken(RUN_KEY, batchNumber, attempt), runKey: RUN_KEY, batchNumber, batchTable: 'cdf.dispatch_batches', attempt };
}

/** Polls `condition` until it holds; fails with `what` after `timeoutMs`. */
async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Polls getRun until the run is terminal and returns its final state. */
async function waitForTerminal(runner: LocalJobRunner, runId: string): Promise<RunState> {
  let run = await runner.getRun(runId);
  await waitUntil(`run ${runId} to end`, async () => TERMINAL_STATES.has((run = await runner.getRun(runId)).lifeCycleState));
  return run;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('LocalJobRunner', () => {
  it('returns a run id and a run page URL for a launch', async () => {
    const { runner } = await openRunner();
    const launched = await runner.launch(batchRequest(1));
    expect(launched.runId).toMatch(/^\d+$/);
    expect(launched.runPageUrl).toBe(`local-runner://runs/${launched.runId}`);
  });

  it('returns the same run for a repeated idempotency token, counts the request and starts no second run', async () => {
    const { runner, processor } = await openRunner();
    const request = batchRequest(1);
    const first = await runner.launch(request);
    const second = await runner.launch(request);
    await waitForTerminal(runner, first.runId);

    expect(second.runId).toBe(first.runId);
    expect((await runner.launchRequests()).get(request.idempotencyToken)).toBe(2);
    expect(await runner.runCount()).toBe(1);
    expect(processor.state.calls).toEqual([1]);
  });

  it('takes a run from QUEUED through RUNNING to TERMINATED with SUCCESS', async () => {
    const { runner, processor } = await openRunner({ maxConcurrentRuns: 1 });
    processor.hold(1);
    processor.hold(2);
    await runner.launch(batchRequest(1));
    await waitUntil('batch 1 to start', () => processor.state.calls.includes(1));
    const { runId } = await runner.launch(batchRequest(2));

    expect((await runner.getRun(runId)).lifeCycleState).toBe('QUEUED');
    processor.release(1);
    await waitUntil('batch 2 to start', () => processor.state.calls.includes(2));
    expect((await runner.getRun(runId)).lifeCycleState).toBe('RUNNING');
    processor.release(2);
    const finished = await waitForTerminal(runner, runId);
    expect(finished).toMatchObject({ lifeCycleState: 'TERMINATED', resultState: 'SUCCESS' });
    expect(finished.endTime).toBeGreaterThanOrEqual(finished.startTime!);
  });

  it('ends a run whose processor throws as TERMINATED with FAILED and the error in the state message', async () => {
    const { runner, processor } = await openRunner();
    processor.failWith(1, 'MERGE into demo.entity_target failed: disk full');
    const { runId } = await runner.launch(batchRequest(1));
    const finished = await waitForTerminal(runner, runId);
    expect(finished).toMatchObject({ lifeCycleState: 'TERMINATED', resultState: 'FAILED' });
    expect(finished.stateMessage).toContain('MERGE into demo.entity_target failed: disk full');
  });

  it('runs no more than maxConcurrentRuns at once', async () => {
    const { runner, processor } = await openRunner({ maxConcurrentRuns: 2 });
    const batches = [1, 2, 3, 4, 5];
    batches.forEach((batch) => processor.hold(batch));
    const runIds = [];
    for (const batch of batches) runIds.push((await runner.launch(batchRequest(batch))).runId);

    await waitUntil('two runs to start', () => processor.state.active === 2);
    await pause(200); // room for a third start, if the limit were not enforced
    const states = await Promise.all(runIds.map(async (id) => (await runner.getRun(id)).lifeCycleState));
    expect(states.filter((state) => state === 'RUNNING')).toHaveLength(2);
    expect(states.filter((state) => state === 'QUEUED')).toHaveLength(3);

    processor.releaseAll();
    for (const id of runIds) expect((await waitForTerminal(runner, id)).resultState).toBe('SUCCESS');
    expect(processor.state.maxActive).toBe(2);
  });

  it('ends a cancelled queued run as CANCELED without calling the processor', async () => {
    const { runner, processor } = await openRunner({ maxConcurrentRuns: 1 });
    processor.hold(1);
    const blocker = await runner.launch(batchRequest(1));
    await waitUntil('batch 1 to start', () => processor.state.calls.includes(1));
    const queued = await runner.launch(batchRequest(2));

    await runner.cancel(queued.runId);
    processor.release(1);
    await waitForTerminal(runner, blocker.runId);
    // Runs start in launch order, so once a later run has finished the cancelled one had its chance.
    await waitForTerminal(runner, (await runner.launch(batchRequest(3))).runId);

    expect(await runner.getRun(queued.runId)).toMatchObject({ lifeCycleState: 'TERMINATED', resultState: 'CANCELED' });
    expect(processor.state.calls).toEqual([1, 3]);
  });

  it('ends a cancelled running run as CANCELED once its processor returns', async () => {
    const { runner, processor } = await openRunner();
    processor.hold(1);
    const { runId } = await runner.launch(batchRequest(1));
    await waitUntil('batch 1 to start', () => processor.state.calls.includes(1));

    await runner.cancel(runId);
    expect((await runner.getRun(runId)).lifeCycleState).toBe('TERMINATING');
    processor.release(1);
    expect(await waitForTerminal(runner, runId)).toMatchObject({ lifeCycleState: 'TERMINATED', resultState: 'CANCELED' });
  });

  it('fails every first attempt with failFirstAttemptRate 1, without calling the processor', async () => {
    const { runner, processor } = await openRunner({ failFirstAttemptRate: 1 });
    const { runId } = await runner.launch(batchRequest(1, 1));
    const finished = await waitForTerminal(runner, runId);
    expect(finished.resultState).toBe('FAILED');
    expect(finished.stateMessage).toContain('failFirstAttemptRate');
    expect(processor.state.calls).toEqual([]);
  });

  it('runs the second attempt normally with failFirstAttemptRate 1', async () => {
    const { runner, processor } = await openRunner({ failFirstAttemptRate: 1 });
    const { runId } = await runner.launch(batchRequest(1, 2));
    expect((await waitForTerminal(runner, runId)).resultState).toBe('SUCCESS');
    expect(processor.state.calls).toEqual([1]);
  });

  it('keeps its runs across a close and reopen, and a repeated token still returns the same run', async () => {
    const path = tempDatabasePath();
    const request = batchRequest(1);
    const first = await openRunner({ path });
    const launched = await first.runner.launch(request);
    await waitForTerminal(first.runner, launched.runId);
    await closeRunner(first.runner);

    const reopened = await openRunner({ path });
    expect(await reopened.runner.getRun(launched.runId)).toMatchObject({ lifeCycleState: 'TERMINATED', resultState: 'SUCCESS' });
    expect((await reopened.runner.launch(request)).runId).toBe(launched.runId);
    expect(await reopened.runner.runCount()).toBe(1);
    expect((await reopened.runner.launchRequests()).get(request.idempotencyToken)).toBe(2);
    expect(reopened.processor.state.calls).toEqual([]);
  });

  it('rejects getRun for a run id it never issued', async () => {
    const { runner } = await openRunner();
    await expect(runner.getRun('424242')).rejects.toThrow('local run 424242 does not exist');
  });
});

describe('idempotencyToken', () => {
  it('builds a token from run key, batch and attempt', () => {
    expect(idempotencyToken('cdf-fanin-20240611T100000Z', 12, 3)).toBe('cdf-fanin-20240611T100000Z-b12-a3');
  });

  it(`accepts a token of exactly ${MAX_IDEMPOTENCY_TOKEN_LENGTH} characters`, () => {
    const suffix = '-b123-a2';
    const runKey = 'k'.repeat(MAX_IDEMPOTENCY_TOKEN_LENGTH - suffix.length);
    expect(idempotencyToken(runKey, 123, 2)).toHaveLength(64);
  });

  it(`throws for a token longer than ${MAX_IDEMPOTENCY_TOKEN_LENGTH} characters`, () => {
    const runKey = 'k'.repeat(MAX_IDEMPOTENCY_TOKEN_LENGTH - '-b123-a2'.length + 1);
    expect(() => idempotencyToken(runKey, 123, 2)).toThrow('longer than 64 characters');
  });
});
