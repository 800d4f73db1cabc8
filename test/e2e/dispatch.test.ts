import { WorkflowFailedError } from '@temporalio/client';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, startOrJoinFanIn, startSourceWorkflows, type FanInStart } from '../../src/client/operations';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import type { FanInSummary } from '../../src/workflows/fanInProgress';
import { runCdf, writeConfigFile } from '../support/cli';
import { fakeWorkspace } from '../support/fakeWorkspace';
import { currentDetails, startTestPipeline, startWorkerOn, terminateWorkflows, testConfig, type TestConfigOverrides, type TestPipeline, type WorkerOnOptions } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';

const ordersOnly = { sources: [{ name: 'orders', table: 'upstream.orders' }] };

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

/** Writes traffic to orders and captures it; returns what was written (the oracle). */
async function writeAndCapture(t: TestPipeline, seed: number, commits = 3): Promise<WrittenChange[]> {
  const written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits, maxOpsPerCommit: 12, idSpace: 300, seed });
  await startSourceWorkflows(t.client, t.config);
  await captureUntilCaughtUp(t.client, t.config, 'orders');
  return written;
}

const distinctIds = (written: WrittenChange[]) => new Set(written.map((w) => w.utsId));

/** (run key, uts_id) pairs of the batch table: every id of a run in exactly one batch. */
async function batchRows(t: TestPipeline) {
  return t.lakehouse.db.all<{ run_key: string; uts_id: string; n: bigint }>(`SELECT run_key, uts_id, count(*) AS n FROM cdf.dispatch_batches GROUP BY run_key, uts_id`);
}

/** The fake workspace and the real Databricks Jobs client talking to it over HTTPS. */
describe('failed downstream runs', () => {
  it('relaunches a run that ended with an error in the job code (CLIENT_ERROR, RUN_EXECUTION_ERROR) and commits once the relaunch succeeds', async () => {
    const { api, launcher } = await fakeWorkspace();
    // Attempt 1 of every batch throws in the job's code; the relaunch, as after a fix, succeeds.
    api.outcomeFor = (parameters) =>
      parameters.cdf_attempt === '1'
        ? { code: 'RUN_EXECUTION_ERROR', type: 'CLIENT_ERROR', message: 'Workload failed: ZeroDivisionError in process_changed_uts.py' }
        : { code: 'SUCCESS', type: 'SUCCESS', message: '' };
    try {
      await withPipeline({ fanIn: { batchSize: 20 } }, { launcher }, async (t) => {
        const written = await writeAndCapture(t, 11);
        const summary = await runFanIn(t.client, t.config);
        expect(summary).toEqual(expect.objectContaining({ outcome: 'dispatched', committed: true, batchesSucceeded: summary.batches, batchesParked: 0 }));
        expect(summary.changedIds).toBe(distinctIds(written).size);
        const tokens = api.launchedRuns().map((r) => r.idempotencyToken).sort();
        const expected = Array.from({ length: summary.batches }, (_, i) => [`${summary.runKey}-b${i + 1}-a1`, `${summary.runKey}-b${i + 1}-a2`]).flat().sort();
        expect(tokens).toEqual(expected);
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });

  it('resumes a fan-in that failed on the job itself with new attempts, never taking the old failed runs for its own', async () => {
    const { api, launcher } = await fakeWorkspace();
    api.outcome = { code: 'INVALID_RUN_CONFIGURATION', type: 'CLIENT_ERROR', message: 'Job parameter cdf_batch_table is not defined by job 4242' };
    try {
      await withPipeline({ fanIn: { batchSize: 20, concurrency: 2 } }, { launcher }, async (t) => {
        await writeAndCapture(t, 12);
        const failure = await runFanIn(t.client, t.config).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(WorkflowFailedError);
        expect((failure as WorkflowFailedError).cause?.message).toMatch(/the downstream job cannot run .*INVALID_RUN_CONFIGURATION|the downstream job cannot run/);
        const failedTokens = new Set(api.launchedRuns().map((r) => r.idempotencyToken));
        expect(failedTokens.size).toBeGreaterThan(0);

        api.outcome = { code: 'SUCCESS', type: 'SUCCESS', message: '' }; // the job was fixed
        const resumed = await runFanIn(t.client, t.config);
        expect(resumed).toEqual(expect.objectContaining({ resumed: true, committed: true, outcome: 'dispatched', batchesSucceeded: resumed.batches }));
        const succeeded = api.launchedRuns().filter((r) => r.code === 'SUCCESS');
        expect(succeeded.every((r) => !failedTokens.has(r.idempotencyToken))).toBe(true);
        expect(succeeded.filter((r) => r.jobParameters.cdf_attempt === '2')).toHaveLength(failedTokens.size);
        expect(resumed.launches).toBe(resumed.batches);
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });
});

describe('a launch the Jobs API refuses for good', () => {
  it('fails the fan-in with the cause and the remedy, and the next fan-in resumes the open run once the job exists', async () => {
    const { api, launcher } = await fakeWorkspace();
    try {
      await withPipeline({ fanIn: { batchSize: 20, concurrency: 2 } }, { launcher }, async (t) => {
        await writeAndCapture(t, 13);
        api.failNext(1, { status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST', message: 'Job 4242 does not exist.' });
        const failure = await runFanIn(t.client, t.config).catch((error: unknown) => error);
        expect(failure).toBeInstanceOf(WorkflowFailedError);
        const message = (failure as WorkflowFailedError).cause?.message ?? '';
        expect(message).toContain('the downstream job cannot run');
        expect(message).toContain('RESOURCE_DOES_NOT_EXIST');
        expect(message).toMatch(/check databricks\.jobId/);
        const resumed = await runFanIn(t.client, t.config);
        expect(resumed).toEqual(expect.objectContaining({ resumed: true, committed: true, batchesSucceeded: resumed.batches }));
      });
    } finally {
      await launcher.close();
      await api.close();
    }
  });
});

describe('a batch that keeps failing', () => {
  let broken = true;
  let poisonedRun: string | null = null;
  // Batch 1 of the first run fails in the job's code on every attempt, until the job is "fixed".
  const processor = (lakehouse: () => LocalLakehouse) => async (runKey: string, batchNumber: number) => {
    if (broken && batchNumber === 1 && (poisonedRun ??= runKey) === runKey) throw new Error('KeyError: score is null for one of the batch ids');
    return lakehouse().processBatch(runKey, batchNumber);
  };
  let t: TestPipeline;
  let configFile: string;
  const written: WrittenChange[] = [];
  let first: FanInSummary;
  let second: FanInSummary;

  beforeAll(async () => {
    const config = testConfig({ ...ordersOnly, fanIn: { batchSize: 10, maxAttemptsPerBatch: 2, concurrency: 3 } });
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    t = await startWorkerOn(config, lakehouse, { processor: processor(() => lakehouse) });
    configFile = writeConfigFile(config);
    written.push(...(await writeAndCapture(t, 21)));
    first = await runFanIn(t.client, t.config);
    written.push(...(await writeAndCapture(t, 22, 2)));
    second = await runFanIn(t.client, t.config);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('is parked after fanIn.maxAttemptsPerBatch attempts, and the rest of the window commits', () => {
    expect(first).toEqual(expect.objectContaining({ outcome: 'dispatched, batches parked', committed: true, batchesParked: 1, batchesSucceeded: first.batches - 1 }));
    expect(first.parkedBatches).toEqual([expect.objectContaining({ runKey: first.runKey, batchNumber: 1, attempts: 2, status: 'parked', stateMessage: expect.stringContaining('KeyError') })]);
  });

  it('can be found in the workflow list by its search attributes', async () => {
    const found: string[] = [];
    const query = `WorkflowId = "${fanInWorkflowId(t.config)}" AND CdfFanInOutcome = "parked" AND CdfParkedBatches > 0 AND CdfDispatchedIds > 0`;
    for (let i = 0; i < 20 && found.length === 0; i++) {
      for await (const execution of t.client.workflow.list({ query })) found.push(execution.runId);
      if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(found).toHaveLength(1);
    const result = (await t.client.workflow.getHandle(fanInWorkflowId(t.config), found[0]).result()) as FanInSummary;
    expect(result.runKey).toBe(first.runKey);
  });

  it('shows its phase, batch counts and the parked batch on its page in the UI (current details)', async () => {
    const first_ = await firstRunOf(t, first.runKey);
    const details = await currentDetails(t.client, fanInWorkflowId(t.config), first_);
    expect(details).toMatch(/^\*\*fan-in: done\*\* · run `fi-/);
    expect(details).toContain('Parked batches wait for `cdf batches retry` or `cdf batches abandon`.');
    // changed ids | batches | succeeded | parked | running | waiting to relaunch
    expect(details).toContain(`| ${first.changedIds} | ${first.batches} | ${first.batches - 1} | 1 | 0 | 0 |`);
  });

  it('does not hold back the next fan-in, which dispatches the new changes', () => {
    expect(second).toEqual(expect.objectContaining({ outcome: 'dispatched', committed: true, batchesParked: 0, resumed: false }));
    expect(second.runKey).not.toBe(first.runKey);
    expect(second.changedIds).toBeGreaterThan(0);
  });

  it('is listed by `cdf batches list` with its attempts and the job error', async () => {
    const listed = await runCdf(['--config', configFile, '--json', 'batches', 'list']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ runKey: first.runKey, batchNumber: 1, status: 'parked', attempts: 2, ids: 10 })]);
  });

  it('`cdf batches retry --wait` runs it again in a fan-in once the job is fixed, and it succeeds', async () => {
    broken = false;
    const retried = await runCdf(['--config', configFile, 'batches', 'retry', first.runKey, '1', '--wait']);
    expect(retried.stderr).toBe('');
    expect(retried.code).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`batch 1 of ${first.runKey}: succeeded after attempt 3`));
    const state = await t.lakehouse.readBatchState({ runKey: first.runKey, batchNumber: 1 });
    expect(state).toEqual(expect.objectContaining({ status: 'succeeded', attempts: 3 }));
  });

  it('leaves every written id dispatched in exactly one batch per run, and every batch succeeded', async () => {
    const rows = await batchRows(t);
    expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
    expect(new Set(rows.map((r) => r.uts_id))).toEqual(distinctIds(written));
    const states = await t.lakehouse.listBatches({ limit: 1000 });
    expect(states.every((s) => s.status === 'succeeded')).toBe(true);
  });

  it('refuses to retry or abandon a batch that succeeded or does not exist, naming its status', async () => {
    const retried = await runCdf(['--config', configFile, 'batches', 'retry', second.runKey, '1']);
    expect(retried.code).toBe(1);
    expect(retried.stderr).toContain(`retry refused: batch 1 of ${second.runKey} is succeeded: it is done, nothing to retry or abandon`);
    const abandoned = await runCdf(['--config', configFile, 'batches', 'abandon', second.runKey, '99', '--reason', 'x']);
    expect(abandoned.code).toBe(1);
    expect(abandoned.stderr).toContain(`there is no batch 99 in fan-in run ${second.runKey}`);
  });
});

describe('abandoning a parked batch', () => {
  it('keeps its ids and the reason, and no later fan-in launches it', () =>
    withPipeline({ fanIn: { batchSize: 10, maxAttemptsPerBatch: 1 } }, { processor: async (_runKey, batchNumber) => { if (batchNumber === 2) throw new Error('always fails'); } }, async (t) => {
      await writeAndCapture(t, 31);
      const first = await runFanIn(t.client, t.config);
      expect(first.batchesParked).toBeGreaterThanOrEqual(1);
      const configFile = writeConfigFile(t.config);
      const abandoned = await runCdf(['--config', configFile, 'batches', 'abandon', first.runKey, '2', '--reason', 'rows fixed by hand downstream']);
      expect(abandoned.code).toBe(0);
      const runsBefore = await t.jobs.runCount();
      const next = await runFanIn(t.client, t.config);
      expect(next).toEqual(expect.objectContaining({ outcome: 'nothing to dispatch', requeued: { succeeded: 0, parked: 0 } }));
      expect(await t.jobs.runCount()).toBe(runsBefore);
      expect(await t.lakehouse.readBatchState({ runKey: first.runKey, batchNumber: 2 })).toEqual(
        expect.objectContaining({ status: 'abandoned', reason: 'rows fixed by hand downstream', ids: 10 }),
      );
    }));
});

describe('one fan-in at a time', () => {
  it('two fan-ins requested at once make one dispatch: one starts, the other joins it, and every id is in exactly one batch', () =>
    withPipeline({ fanIn: { batchSize: 7 } }, {}, async (t) => {
      const written = await writeAndCapture(t, 41);
      const starts: FanInStart[] = [];
      const [a, b] = await Promise.all([
        runFanIn(t.client, t.config, { onStart: (s) => starts.push(s) }),
        runFanIn(t.client, t.config, { onStart: (s) => starts.push(s) }),
      ]);
      expect(starts.map((s) => s.joined).sort()).toEqual([false, true]);
      expect(a.runKey).toBe(b.runKey);
      const runs = await t.lakehouse.db.all<{ run_key: string }>(`SELECT DISTINCT run_key FROM cdf.fan_in_runs`);
      expect(runs).toEqual([{ run_key: a.runKey }]);
      const rows = await batchRows(t);
      expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
      expect(rows).toHaveLength(distinctIds(written).size);
      expect(await t.jobs.runCount()).toBe(a.batches);
    }));

  it('refuses a fan-in started under any other workflow id, with the command that starts it right', () =>
    withPipeline({}, {}, async (t) => {
      await writeAndCapture(t, 42, 1);
      const handle = await t.client.workflow.start('fanIn', { workflowId: `${fanInWorkflowId(t.config)}-by-hand`, taskQueue: t.config.temporal.taskQueue, args: [{}] });
      const failure = await handle.result().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause as Error & { cause?: Error };
      const message = `${cause?.message} ${cause?.cause?.message ?? ""}`;
      expect(message).toContain(`a fan-in must run as workflow id ${fanInWorkflowId(t.config)}`);
      expect(message).toContain('--id-conflict-policy UseExisting');
      expect(await t.lakehouse.db.all(`SELECT * FROM cdf.fan_in_runs`)).toEqual([]);
    }));

  it('a fan-in with nothing to dispatch says so', () =>
    withPipeline({}, {}, async (t) => {
      await ensureDemoSourceTable(t.lakehouse, t.config.sources[0]!);
      const { handle } = await startOrJoinFanIn(t.client, t.config);
      const summary = (await handle.result()) as FanInSummary;
      expect(summary).toEqual(expect.objectContaining({ outcome: 'nothing to dispatch', changedIds: 0, batches: 0, launches: 0 }));
    }));
});

describe('the event-driven trigger', () => {
  it('dispatches changes whose registry append was retried and inserted nothing (the notification is not lost)', async () => {
    const t = await startTestPipeline(testConfig({ ...ordersOnly, capture: { pollIntervalSeconds: 1 }, fanIn: { onChange: { enabled: true, waitAfterLastChangeSeconds: 0, minSecondsBetweenRuns: 0 } } }));
    try {
      const source = t.config.sources[0]!;
      const written = await writeRandomTraffic(t.lakehouse, source, { commits: 1, maxOpsPerCommit: 8, idSpace: 100, seed: 51 });
      const { latestVersion, tableId } = await t.lakehouse.engine.describe(source.table);
      // An earlier attempt's append committed, but the worker died before it returned: the retry inserts 0 rows.
      await t.lakehouse.appendRangeToRegistry(source, { fromVersion: 0, toVersion: latestVersion }, tableId);
      await startSourceWorkflows(t.client, t.config);
      const summary = await waitForFanIn(t);
      expect(summary.changedIds).toBe(distinctIds(written).size);
      expect(summary.committed).toBe(true);
    } finally {
      await terminateWorkflows(t.client, t.config);
      await t.stop();
    }
  });
});

/** The first completed fan-in's summary (the trigger starts it), waiting up to 60 s. */
async function waitForFanIn(t: TestPipeline): Promise<FanInSummary> {
  const query = `WorkflowId = "${fanInWorkflowId(t.config)}" AND ExecutionStatus = "Completed"`;
  for (let i = 0; i < 120; i++) {
    for await (const execution of t.client.workflow.list({ query })) {
      const summary = (await t.client.workflow.getHandle(execution.workflowId, execution.runId).result()) as FanInSummary;
      if (summary.changedIds > 0) return summary;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error('no fan-in dispatched anything within 60 s');
}

/** The run id of the fan-in execution that ran a given run key (from its search attributes and result). */
async function firstRunOf(t: TestPipeline, runKey: string): Promise<string> {
  for await (const execution of t.client.workflow.list({ query: `WorkflowId = "${fanInWorkflowId(t.config)}"` })) {
    const result = (await t.client.workflow.getHandle(execution.workflowId, execution.runId).result().catch(() => null)) as FanInSummary | null;
    if (result?.runKey === runKey) return execution.runId;
  }
  throw new Error(`no fan-in execution ran ${runKey}`);
}
