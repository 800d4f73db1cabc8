import { MockActivityEnvironment } from '@temporalio/testing';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, startOrJoinFanIn, startSourceWorkflows } from '../../src/client/operations';
import { createActivities } from '../../src/activities';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { BatchState } from '../../src/lakehouse/port';
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
