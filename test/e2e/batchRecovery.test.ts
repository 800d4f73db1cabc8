import { WorkflowNotFoundError } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, startOrJoinFanIn, startSourceWorkflows } from '../../src/client/operations';
import { createActivities } from '../../src/activities';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { BatchState } from '../../src/lakehouse/port';
import type { RunState } from '../../src/jobs/port';
import { runCdf, writeConfigFile } from '../support/cli';
import { eventually } from '../support/eventually';
import type { RunOutcome } from '../support/fakeJobsApi';
import { fakeWorkspace } from '../support/fakeWorkspace';
import { startWorkerOn, terminateWorkflows, testConfig, type TestConfigOverrides, type TestPipeline, type WorkerOnOptions } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

const ordersOnly = { sources: [{ name: 'orders', table: 'upstream.orders' }] };
const SUCCESS: RunOutcome = { code: 'SUCCESS', type: 'SUCCESS', message: '' };
/** The job's code of a run that never ends by itself (a hung cluster, a stuck notebook). */
const never = () => new Promise<RunOutcome>(() => undefined);

async function withPipeline(overrides: TestConfigOverrides, options: WorkerOnOptions, test: (t: TestPipeline) => Promise<void>): Promise<void> {
  const config = testConfig({ ...ordersOnly, ...overrides });
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  const t = await startWorkerOn(config, lakehouse, options);
  try {
    await test(t);
  } finally {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  }
}

async function writeAndCapture(t: TestPipeline, seed: number): Promise<void> {
  await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 2, maxOpsPerCommit: 12, idSpace: 300, seed });
  await startSourceWorkflows(t.client, t.config);
  await captureUntilCaughtUp(t.client, t.config, 'orders');
}

/** Waits until every batch of the (one) open run is launched with a recorded run id; returns their states. */
async function allLaunched(t: TestPipeline): Promise<BatchState[]> {
  let states: BatchState[] = [];
  return eventually(
    async () => {
      states = await t.lakehouse.listBatches({ limit: 1000 });
      return states.length > 0 && states.every((s) => s.status === 'launched' && s.runId) ? states : undefined;
    },
    60_000,
    () => JSON.stringify(states.map((s) => s.status)),
  );
}

describe('a launched batch whose run was deleted', () => {
  it('is resumed by the next fan-in as a failed attempt: it watches the recorded run instead of launching again, and relaunches under a new token', async () => {
    const { api, launcher } = await fakeWorkspace();
    api.execute = (parameters) => (parameters.cdf_attempt === '1' ? never() : Promise.resolve(SUCCESS));
    try {
      await withPipeline({ fanIn: { batchSize: 20, concurrency: 10 } }, { launcher }, async (t) => {
        await writeAndCapture(t, 61);
        await startOrJoinFanIn(t.client, t.config);
        const launched = await allLaunched(t);
        // An outage: the fan-in is gone, and its runs are deleted (job re-deployed, run retention).
        await t.client.workflow.getHandle(fanInWorkflowId(t.config)).terminate('outage');
        for (const state of launched) api.deleteRun(state.runId!);
        const deletedTokens = new Set(launched.map((s) => `${s.runKey}-b${s.batchNumber}-a1`));
        const runNowsBefore = api.requestsTo('/api/2.2/jobs/run-now').length;

        const resumed = await runFanIn(t.client, t.config);
        expect(resumed).toEqual(expect.objectContaining({ resumed: true, committed: true, outcome: 'dispatched', batchesSucceeded: launched.length, batchesParked: 0 }));
        const later = api.requestsTo('/api/2.2/jobs/run-now').slice(runNowsBefore).map((r) => (r.body as { idempotency_token: string }).idempotency_token);
        expect(later.filter((token) => deletedTokens.has(token))).toEqual([]);
        expect(later.sort()).toEqual(launched.map((s) => `${s.runKey}-b${s.batchNumber}-a2`).sort());
        for (const state of launched) {
          expect(await t.lakehouse.readBatchState(state)).toEqual(expect.objectContaining({ status: 'succeeded', attempts: 2 }));
        }
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });

  it('`cdf batches retry` and `abandon` take a launched batch once no fan-in holds it, and refuse it, naming the state and the next step, while one does', async () => {
    const { api, launcher } = await fakeWorkspace();
    api.execute = (parameters) => (parameters.cdf_attempt === '1' ? never() : Promise.resolve(SUCCESS));
    try {
      await withPipeline({ fanIn: { batchSize: 5, concurrency: 10 } }, { launcher }, async (t) => {
        const configFile = writeConfigFile(t.config);
        await writeAndCapture(t, 62);
        await startOrJoinFanIn(t.client, t.config);
        const [first, second] = await allLaunched(t);
        expect(second).toBeDefined();

        const held = await runCdf(['--config', configFile, 'batches', 'abandon', first!.runKey, String(first!.batchNumber), '--reason', 'x']);
        expect(held.code).toBe(1);
        expect(held.stderr).toContain(`batch ${first!.batchNumber} of ${first!.runKey} is launched and fan-in ${fanInWorkflowId(t.config)} is running, which holds it`);
        expect(await t.lakehouse.readBatchState(first!)).toEqual(first);

        await t.client.workflow.getHandle(fanInWorkflowId(t.config)).terminate('outage');
        const running = await runCdf(['--config', configFile, 'batches', 'retry', first!.runKey, String(first!.batchNumber)]);
        expect(running.code).toBe(1);
        expect(running.stderr).toContain(`its run ${first!.runId} is RUNNING: wait for it to end or cancel it`);
        expect(await t.lakehouse.readBatchState(first!)).toEqual(first);

        api.deleteRun(first!.runId!);
        api.deleteRun(second!.runId!);
        const abandoned = await runCdf(['--config', configFile, 'batches', 'abandon', second!.runKey, String(second!.batchNumber), '--reason', 'reloaded by hand']);
        expect(abandoned.stderr).toBe('');
        expect(abandoned.code).toBe(0);
        expect(await t.lakehouse.readBatchState(second!)).toEqual(expect.objectContaining({ status: 'abandoned', reason: 'reloaded by hand' }));
        // retry also starts a fan-in, which resumes the open run: the retried batch runs attempt 2.
        const retried = await runCdf(['--config', configFile, '--json', 'batches', 'retry', first!.runKey, String(first!.batchNumber)]);
        expect(retried.stderr).toBe('');
        expect(retried.code).toBe(0);
        expect(JSON.parse(retried.stdout).batch).toEqual(expect.objectContaining({ status: 'retry', attempts: 1 }));
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });
});

describe('abandoning a batch queued for retry', () => {
  it('wins before the launch or not at all: an abandon that lands after the attempt read the batch leaves nothing launched', async () => {
    const config = testConfig(ordersOnly);
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    try {
      await lakehouse.ensurePipelineTables();
      const batch = { runKey: 'fi-20261207000000-race000001', batchNumber: 1 };
      await lakehouse.db.run(
        `INSERT INTO cdf.dispatch_batch_states (run_key, batch_number, status, attempts, attempt_limit, ids, updated_at) VALUES (?, ?, 'retry', 2, 5, 10, now()::TIMESTAMP)`,
        [batch.runKey, batch.batchNumber],
      );
      const launches: string[] = [];
      const jobs = {
        async launch(request: { idempotencyToken: string }) {
          launches.push(request.idempotencyToken);
          return { runId: '1', runPageUrl: 'x', reused: false };
        },
        getRun: async (runId: string) => ({ runId, lifeCycleState: 'TERMINATED' as const, resultState: 'SUCCESS' as const, stateMessage: '', runPageUrl: 'x' }),
        cancel: async () => undefined,
        close: async () => undefined,
      };
      let abandonResult: unknown;
      let raced = false;
      // The operator's abandon arrives just after the attempt read the batch (it was `retry` then).
      const racing = Object.create(lakehouse) as LocalLakehouse;
      racing.readBatchState = async (key) => {
        const state = await lakehouse.readBatchState(key);
        if (!raced) {
          raced = true;
          abandonResult = await new MockActivityEnvironment().run(activities.abandonBatch, { ...key, reason: 'given up' });
        }
        return state;
      };
      const activities = createActivities({ config, lakehouse: racing, jobs });
      const attempt = await new MockActivityEnvironment().run(activities.runBatchAttempt, batch);
      expect(launches).toEqual([]);
      expect(attempt).toEqual(expect.objectContaining({ outcome: 'skipped', status: 'abandoned', launched: false }));
      expect(abandonResult).toEqual(expect.objectContaining({ refused: null }));
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'abandoned', reason: 'given up', attempts: 2 }));
    } finally {
      await lakehouse.close();
    }
  });
});

describe('a run that outlives fanIn.jobTimeoutMinutes', () => {
  it('is cancelled and counted as a failed attempt, and the relaunch dispatches the batch', async () => {
    const { api, launcher } = await fakeWorkspace();
    api.execute = (parameters) => (parameters.cdf_attempt === '1' ? never() : Promise.resolve(SUCCESS));
    try {
      await withPipeline({ fanIn: { batchSize: 1000, jobTimeoutMinutes: 0.05 } }, { launcher }, async (t) => {
        await writeAndCapture(t, 63);
        const summary = await runFanIn(t.client, t.config);
        expect(summary).toEqual(expect.objectContaining({ committed: true, batches: 1, batchesSucceeded: 1, relaunches: 1 }));
        const runs = api.launchedRuns();
        expect(runs.map((r) => [r.jobParameters.cdf_attempt, r.state, r.code])).toEqual([
          ['1', 'TERMINATED', 'USER_CANCELED'],
          ['2', 'TERMINATED', 'SUCCESS'],
        ]);
        expect(api.requestsTo('/api/2.2/jobs/runs/cancel').map((r) => r.body)).toEqual([{ run_id: runs[0]!.runId }]);
        expect(await t.lakehouse.readBatchState({ runKey: summary.runKey, batchNumber: 1 })).toEqual(expect.objectContaining({ status: 'succeeded', attempts: 2 }));
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });
});

type Jobs = Parameters<typeof createActivities>[0]['jobs'];
type Lakehouse = LocalLakehouse;

/**
 * One batch's state row, written as an earlier attempt left it, and the batch activities over the
 * real DuckDB lakehouse with the given Jobs API (a stub, or the real client against the fake).
 */
async function withBatchRow(
  row: { status: string; attempts: number; attemptLimit: number; runId?: string },
  test: (env: { lakehouse: Lakehouse; batch: { runKey: string; batchNumber: number }; activities: (jobs: Jobs, lakehouse?: Lakehouse) => ReturnType<typeof createActivities>; run: <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A) => Promise<R> }) => Promise<void>,
): Promise<void> {
  const config = testConfig(ordersOnly);
  // Below the schema's one-second minimum, so that a watch of many polls takes milliseconds.
  config.fanIn.jobPollIntervalSeconds = 0.002;
  config.fanIn.jobTimeoutMinutes = 0.002;
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
  try {
    await lakehouse.ensurePipelineTables();
    const batch = { runKey: 'fi-20261207000000-stub000001', batchNumber: 1 };
    await lakehouse.db.run(
      `INSERT INTO cdf.dispatch_batch_states (run_key, batch_number, status, attempts, attempt_limit, ids, run_id, updated_at) VALUES (?, ?, ?, ?, ?, 10, ?, now()::TIMESTAMP)`,
      [batch.runKey, batch.batchNumber, row.status, row.attempts, row.attemptLimit, row.runId ?? null],
    );
    // No fan-in is running: the operators' commands ask the client, which finds none.
    const client = {
      workflow: { getHandle: (id: string) => ({ describe: async () => Promise.reject(new WorkflowNotFoundError('not found', id, undefined)) }) },
      withAbortSignal: <T>(_signal: AbortSignal, fn: () => T) => fn(),
    };
    const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment(undefined, { client: client as never }).run(fn, ...args) as Promise<R>;
    await test({ lakehouse, batch, activities: (jobs, over = lakehouse) => createActivities({ config, lakehouse: over, jobs }), run });
  } finally {
    await lakehouse.close();
  }
}

type Scripted = Partial<RunState> & Pick<RunState, 'lifeCycleState'>;

/** A Jobs API stub whose runs/get answers from `states` in turn (the last one repeated), and from `afterCancel` once cancelled; it records launches and cancels. */
function scriptedJobs(states: Scripted[], afterCancel?: Scripted[]): Jobs & { cancels: string[]; launches: string[] } {
  const cancels: string[] = [];
  const launches: string[] = [];
  let next = 0;
  return {
    cancels,
    launches,
    async launch(request) {
      launches.push(request.idempotencyToken);
      return { runId: '7', runPageUrl: 'x', reused: false };
    },
    async getRun(runId) {
      const state = states[Math.min(next++, states.length - 1)]!;
      return { runId, stateMessage: '', runPageUrl: 'x', ...state };
    },
    async cancel(runId) {
      cancels.push(runId);
      if (afterCancel) [states, next] = [afterCancel, 0];
    },
    close: async () => undefined,
  };
}

const anHourAgo = () => Date.now() - 3_600_000;

describe('a run cancelled at fanIn.jobTimeoutMinutes', () => {
  it('that does not stop fails the activity retryably and leaves the batch launched with its run, so that no second run starts beside it', async () => {
    await withBatchRow({ status: 'launched', attempts: 1, attemptLimit: 3, runId: '7' }, async ({ lakehouse, batch, activities, run }) => {
      const jobs = scriptedJobs([{ lifeCycleState: 'RUNNING', startTime: anHourAgo() }]);
      const error = await run(activities(jobs).runBatchAttempt, batch).then(() => null, (failure: unknown) => failure);
      expect(jobs.cancels).toEqual(['7']);
      expect(error).toEqual(expect.objectContaining({ type: 'RunDidNotStop', nonRetryable: false }));
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'launched', attempts: 1, runId: '7' }));
    });
  });

  it('that succeeded before the cancel landed is recorded as a success', async () => {
    await withBatchRow({ status: 'launched', attempts: 1, attemptLimit: 3, runId: '7' }, async ({ lakehouse, batch, activities, run }) => {
      const jobs = scriptedJobs([{ lifeCycleState: 'RUNNING', startTime: anHourAgo() }], [{ lifeCycleState: 'TERMINATED', resultState: 'SUCCESS' }]);
      const attempt = await run(activities(jobs).runBatchAttempt, batch);
      expect(jobs.cancels).toEqual(['7']);
      expect(attempt).toEqual(expect.objectContaining({ outcome: 'succeeded', attempt: 1 }));
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'succeeded', attempts: 1 }));
    });
  });

  it('does not count the time the run spent QUEUED', async () => {
    await withBatchRow({ status: 'launched', attempts: 1, attemptLimit: 3, runId: '7' }, async ({ lakehouse, batch, activities, run }) => {
      const queuedSince = anHourAgo();
      const jobs = scriptedJobs([
        { lifeCycleState: 'QUEUED', startTime: queuedSince },
        { lifeCycleState: 'QUEUED', startTime: queuedSince },
        { lifeCycleState: 'RUNNING', startTime: queuedSince },
        { lifeCycleState: 'TERMINATED', resultState: 'SUCCESS', startTime: queuedSince },
      ]);
      const attempt = await run(activities(jobs).runBatchAttempt, batch);
      expect(jobs.cancels).toEqual([]);
      expect(attempt).toEqual(expect.objectContaining({ outcome: 'succeeded' }));
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'succeeded' }));
    });
  });
});

describe('a launched batch with no recorded run', () => {
  it('whose run was deleted is a failed attempt when the fan-in asks run-now with its token again, and the next attempt launches under a new token', async () => {
    const { api, launcher } = await fakeWorkspace();
    try {
      await withBatchRow({ status: 'launched', attempts: 1, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
        // Attempt 1 started its run, the worker died before recording it, then the run was deleted.
        const first = await launcher.launch({ idempotencyToken: `${batch.runKey}-b1-a1`, ...batch, attempt: 1, batchTable: 'cdf.dispatch_batches' });
        api.deleteRun(first.runId);
        const failed = await run(activities(launcher).runBatchAttempt, batch);
        expect(failed).toEqual(expect.objectContaining({ outcome: 'failed', attempt: 1, runId: null }));
        expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'failed', attempts: 1 }));
        const next = await run(activities(launcher).runBatchAttempt, batch);
        expect(next).toEqual(expect.objectContaining({ outcome: 'succeeded', attempt: 2 }));
        expect(api.launchedRuns().map((r) => r.idempotencyToken)).toEqual([`${batch.runKey}-b1-a2`]);
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });

  it('stays launched on `retry`, with more attempts, so that the next fan-in asks run-now with the same token', async () => {
    await withBatchRow({ status: 'launched', attempts: 3, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
      const change = await run(activities(scriptedJobs([])).requeueBatch, batch);
      expect(change.refused).toBeNull();
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'launched', attempts: 3, attemptLimit: 6, runId: null }));
    });
  });

  it('is refused by `abandon`, which names the run that may be live and says to run `cdf fan-in` first', async () => {
    await withBatchRow({ status: 'launched', attempts: 2, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
      const before = await lakehouse.readBatchState(batch);
      const change = await run(activities(scriptedJobs([])).abandonBatch, { ...batch, reason: 'x' });
      expect(change.refused).toContain('is launched with no recorded run: attempt 2 may have started one that is still running. Run `cdf fan-in` first');
      expect(await lakehouse.readBatchState(batch)).toEqual(before);
    });
  });
});

describe('an attempt that loses its claim to another attempt of the same activity', () => {
  it('fails retryably instead of leaving the batch unwatched, and launches nothing', async () => {
    await withBatchRow({ status: 'failed', attempts: 1, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
      const racing = Object.create(lakehouse) as LocalLakehouse;
      racing.claimBatchAttempt = async (key, attempt) => {
        await lakehouse.claimBatchAttempt(key, attempt); // the other attempt, first
        return lakehouse.claimBatchAttempt(key, attempt);
      };
      const jobs = scriptedJobs([{ lifeCycleState: 'TERMINATED', resultState: 'SUCCESS' }]);
      const error = await run(activities(jobs, racing).runBatchAttempt, batch).then(() => null, (failure: unknown) => failure);
      expect(error).toEqual(expect.objectContaining({ type: 'BatchClaimedMeanwhile', nonRetryable: false }));
      expect(jobs.launches).toEqual([]);
    });
  });
});

describe('`cdf batches retry` decides by its own update', () => {
  it('reports the retry made even when a fan-in claims the batch right after it', async () => {
    await withBatchRow({ status: 'parked', attempts: 3, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
      const racing = Object.create(lakehouse) as LocalLakehouse;
      // The fan-in's claim lands between the retry's update and the read that follows it.
      let reads = 0;
      racing.readBatchState = async (key) => {
        if (++reads === 2) await lakehouse.claimBatchAttempt(key, 4);
        return lakehouse.readBatchState(key);
      };
      const change = await run(activities(scriptedJobs([]), racing).requeueBatch, batch);
      expect(change.refused).toBeNull();
      expect(await lakehouse.readBatchState(batch)).toEqual(expect.objectContaining({ status: 'launched', attempts: 4, attemptLimit: 6 }));
    });
  });

  it('is refused when another command changed the batch first', async () => {
    await withBatchRow({ status: 'parked', attempts: 3, attemptLimit: 3 }, async ({ lakehouse, batch, activities, run }) => {
      const racing = Object.create(lakehouse) as LocalLakehouse;
      racing.requeueBatch = async (key, extra, expected) => {
        await lakehouse.requeueBatch(key, extra, expected); // another operator's retry, first
        return lakehouse.requeueBatch(key, extra, expected);
      };
      const change = await run(activities(scriptedJobs([]), racing).requeueBatch, batch);
      expect(change.refused).toContain('while the command ran');
    });
  });
});
