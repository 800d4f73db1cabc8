import { setTimeout as sleep } from 'node:timers/promises';
import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startOrJoinFanIn, startSourceWorkflows, type FanInStart } from '../src/client/operations';
import { runBatchCommand } from '../src/cli/batches';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { replayFromVersionUpdate } from '../src/workflows/messages';
import type { FanInSummary } from '../src/workflows/fanInProgress';
import { invariant, scenarioConfig, startInProcessPipeline, type InProcessPipeline, type ScenarioContext, type ScenarioResult } from './context';
import { fakeWorkspace } from '../test/support/fakeWorkspace';
import { auditPipeline, jobsApiRunRecords } from './oracle';
import { drainFanIns } from './settle';

/** Sizes: commits per source and operations per commit. */
const SIZES = { ci: { sources: 2, commits: 4, ops: 40 }, full: { sources: 4, commits: 12, ops: 200 } } as const;

async function traffic(t: InProcessPipeline, table: string, commits: number, ops: number, seed: number): Promise<void> {
  for (let c = 0; c < commits; c++) {
    await t.lakehouse.writeUpstreamCommit(table, c === 0 ? { insert: ops, idSpace: 4_000, seed: seed + c } : { insert: ops / 2, update: ops / 4, delete: ops / 8, idSpace: 4_000, seed: seed + c });
  }
}

async function captureAll(t: InProcessPipeline): Promise<void> {
  await startSourceWorkflows(t.client, t.config);
  await Promise.all(t.config.sources.map((s) => captureUntilCaughtUp(t.client, t.config, s.name)));
}

function audited(name: string, figures: Record<string, unknown>, scenarioInvariants: ReturnType<typeof invariant>[], audit: Awaited<ReturnType<typeof auditPipeline>>, taskQueue: string): ScenarioResult {
  const { invariants, ...auditFigures } = audit;
  return { name, figures: { ...figures, ...auditFigures }, invariants: [...scenarioInvariants, ...invariants], taskQueues: [taskQueue], logFiles: [] };
}

/**
 * Every source table is dropped and created again (Delta: a new table id, versions from 0) and
 * written with the same keys at the same versions as before. Each source blocks; the operator
 * replays from 0; every change of every table, old and new, is registered once and dispatched once.
 */
export async function dropRecreateScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[ctx.size];
  const config = scenarioConfig(ctx, 'droprecreate', { sources: Array.from({ length: size.sources }, (_, i) => ({ name: `d${i + 1}`, table: `upstream.d${i + 1}` })) });
  const t = await startInProcessPipeline(ctx, config);
  try {
    for (const [i, s] of config.sources.entries()) await traffic(t, s.table, size.commits, size.ops, 100 * i);
    await captureAll(t);
    await drainFanIns(t.client, config);
    const blockedTypes: string[] = [];
    for (const [i, s] of config.sources.entries()) {
      await t.lakehouse.engine.dropTable(s.table);
      await ensureDemoSourceTable(t.lakehouse, s);
      await traffic(t, s.table, size.commits, size.ops, 100 * i); // the same keys at the same versions
      blockedTypes.push((await captureUntilCaughtUp(t.client, config, s.name)).blocked?.type ?? 'not blocked');
      await t.client.workflow.getHandle(sourceWorkflowId(config, s.name)).executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 0, reason: 'table re-created' }] });
      await captureUntilCaughtUp(t.client, config, s.name);
    }
    ctx.progress(`drop + re-create: ${config.sources.length} sources blocked with ${[...new Set(blockedTypes)].join(', ')}, replayed from 0`);
    const fanIns = await drainFanIns(t.client, config);
    const audit = await auditPipeline(config, t.lakehouse, t.runner);
    return audited('dropRecreate', { sources: config.sources.length, fanIns }, [
      invariant('every re-created table blocked its source as replaced', blockedTypes.every((type) => type === 'CDF_TABLE_REPLACED'), blockedTypes.join(', ')),
    ], audit, config.temporal.taskQueue);
  } finally {
    await t.stop();
  }
}

/**
 * The downstream job fails on the ids of one batch whatever is tried, until it is "fixed": the
 * batch is parked after its attempts, its window commits, later fan-ins dispatch new changes, and
 * after the fix an operator's retry (`cdf batches retry`'s workflow) runs it to success.
 */
export async function parkedBatchScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[ctx.size];
  const config = scenarioConfig(ctx, 'parked', {
    sources: [{ name: 'p1', table: 'upstream.p1' }],
    fanIn: { batchSize: 40, concurrency: 4, jobPollIntervalSeconds: 1, maxAttemptsPerBatch: 2, relaunchBackoffSeconds: 1 },
  });
  let broken = true;
  let poisoned: { runKey: string; batchNumber: number } | null = null;
  const t = await startInProcessPipeline(ctx, config, {
    processor: (lakehouse) => async (runKey, batchNumber) => {
      poisoned ??= { runKey, batchNumber };
      if (broken && poisoned.runKey === runKey && poisoned.batchNumber === batchNumber) throw new Error('ValueError: a row of this batch breaks the job');
      return lakehouse.processBatch(runKey, batchNumber);
    },
  });
  try {
    await traffic(t, 'upstream.p1', size.commits, size.ops, 7);
    await captureAll(t);
    const first = await runFanIn(t.client, config);
    await traffic(t, 'upstream.p1', 2, size.ops, 70);
    await captureAll(t);
    const second = await runFanIn(t.client, config);
    broken = false;
    const parked = first.parkedBatches[0];
    const requeued = parked ? await runBatchCommand(t.client, config, { action: 'retry', runKey: parked.runKey, batchNumber: parked.batchNumber }) : null;
    const third = await runFanIn(t.client, config);
    await drainFanIns(t.client, config);
    const state = parked ? await t.lakehouse.readBatchState(parked) : null;
    ctx.progress(`parked batch: ${first.batchesParked} parked, next fan-in ${second.outcome}, after the retry ${state?.status}`);
    const audit = await auditPipeline(config, t.lakehouse, t.runner);
    return audited('parkedBatch', { batchesParked: first.batchesParked, attemptsOfParkedBatch: state?.attempts ?? 0 }, [
      invariant('a batch that always fails is parked and its window commits', first.batchesParked === 1 && first.committed && parked?.attempts === 2, `${first.batchesParked} parked (${parked?.attempts} attempts), committed ${first.committed}`),
      invariant('the next fan-in is not held back', second.committed && second.changedIds > 0 && second.runKey !== first.runKey, `${second.outcome}: ${second.changedIds} ids in run ${second.runKey}`),
      invariant('an operator retry after the fix succeeds', requeued?.refused === null && third.requeued.succeeded === 1 && state?.status === 'succeeded', `requeue ${requeued?.refused ?? 'accepted'}; requeued in the next fan-in: ${JSON.stringify(third.requeued)}; batch ${state?.status} after ${state?.attempts} attempts`),
    ], audit, config.temporal.taskQueue);
  } finally {
    await t.stop();
  }
}

/**
 * Many fan-ins requested at the same moment (an operator, a schedule, the trigger) while changes
 * wait: Temporal runs one; the others join it and say so; no id lands in two batches.
 */
export async function concurrentFanInsScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[ctx.size];
  const requests = ctx.size === 'full' ? 10 : 4;
  const config = scenarioConfig(ctx, 'concurrent', { sources: Array.from({ length: size.sources }, (_, i) => ({ name: `c${i + 1}`, table: `upstream.c${i + 1}` })), fanIn: { batchSize: 50, concurrency: 4, jobPollIntervalSeconds: 1 } });
  const t = await startInProcessPipeline(ctx, config);
  try {
    const rounds: { started: number; joined: number; runKeys: number }[] = [];
    for (let round = 0; round < 3; round++) {
      for (const [i, s] of config.sources.entries()) await traffic(t, s.table, 2, size.ops, 1000 * round + 10 * i);
      await captureAll(t);
      const starts: FanInStart[] = [];
      const summaries: FanInSummary[] = await Promise.all(Array.from({ length: requests }, () => runFanIn(t.client, config, { onStart: (s) => starts.push(s) })));
      rounds.push({ started: starts.filter((s) => !s.joined).length, joined: starts.filter((s) => s.joined).length, runKeys: new Set(summaries.map((s) => s.runKey)).size });
    }
    await drainFanIns(t.client, config);
    ctx.progress(`concurrent fan-ins: ${JSON.stringify(rounds)}`);
    const audit = await auditPipeline(config, t.lakehouse, t.runner);
    return audited('concurrentFanIns', { requestsPerRound: requests, rounds }, [
      invariant('fan-ins requested at once make one dispatch (one started, the rest joined it)', rounds.every((r) => r.runKeys === 1 && r.started >= 1 && r.started + r.joined === requests),
        rounds.map((r) => `${r.started} started, ${r.joined} joined, ${r.runKeys} run key(s)`).join('; ')),
    ], audit, config.temporal.taskQueue);
  } finally {
    await t.stop();
  }
}

/**
 * Downstream runs are deleted in the Jobs API (an operator's clean-up, a re-deployed job, the
 * 60-day run retention) through the real Databricks client and the fake workspace: first while no
 * fan-in runs (an outage ended the fan-in with its batches `launched`), then while a fan-in watches
 * them. Each deleted run is a failed attempt of its batch: the fan-in watches the run id it
 * recorded (never run-now with a deleted run's token, which errors), relaunches under the next
 * token, and commits; the oracle finds nothing lost, duplicated or launched twice.
 */
export async function deletedRunScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[ctx.size];
  const config = scenarioConfig(ctx, 'deletedrun', {
    sources: [{ name: 'x1', table: 'upstream.x1' }],
    fanIn: { batchSize: 40, concurrency: 4, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1 },
  });
  const { api, launcher } = await fakeWorkspace();
  let t: InProcessPipeline | undefined;
  // Attempt 1 of a batch hangs while `holding` (until its run is deleted); every other run does the job's work.
  let holding = true;
  api.execute = async (parameters) => {
    if (holding && parameters.cdf_attempt === '1') await new Promise(() => undefined);
    await t!.lakehouse.processBatch(parameters.cdf_run_key!, Number(parameters.cdf_batch_number));
    return { code: 'SUCCESS', type: 'SUCCESS', message: '' };
  };
  try {
    t = await startInProcessPipeline(ctx, config, { launcher });
    const pipeline = t;
    const heldRuns = () => api.launchedRuns().filter((r) => r.jobParameters.cdf_attempt === '1' && r.state === 'RUNNING');
    const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
      for (let waited = 0; waited < 240; waited++) {
        const value = await probe();
        if (value !== undefined) return value;
        await sleep(250);
      }
      throw new Error(`${what}: not within 60 s`);
    };

    // 1. An outage: the fan-in ends with its first batches launched, and their runs are deleted.
    await traffic(t, 'upstream.x1', size.commits, size.ops, 11);
    await captureAll(t);
    const { handle } = await startOrJoinFanIn(t.client, config);
    const launched = await waitFor('batches launched with their runs recorded', async () => {
      const states = await pipeline.lakehouse.listBatches({ statuses: ['launched'], limit: 1000 });
      return states.length >= Math.min(config.fanIn.concurrency, 2) && states.every((s) => s.runId) && heldRuns().length >= states.length ? states : undefined;
    });
    await handle.terminate('reliability: outage');
    for (const state of launched) api.deleteRun(state.runId!);
    holding = false;
    const resumed = await runFanIn(t.client, config).catch((error: Error) => error);

    // 2. Runs deleted while a fan-in watches them.
    holding = true;
    await traffic(t, 'upstream.x1', 2, size.ops, 111);
    await captureAll(t);
    const watched = runFanIn(t.client, config).catch((error: Error) => error);
    let deletedWhileWatched = 0;
    let second: FanInSummary | Error | undefined;
    void watched.then((result) => (second = result));
    for (const startedAt = Date.now(); second === undefined; ) {
      if (Date.now() - startedAt > 300_000) throw new Error('the fan-in whose runs were deleted while it watched them did not end within 5 minutes');
      for (const run of heldRuns()) {
        api.deleteRun(run.runId);
        deletedWhileWatched += 1;
      }
      await sleep(200);
    }
    holding = false;
    const fanIns = await drainFanIns(t.client, config);

    const deletedTokens = new Set(api.deletedRuns().map(String));
    const deleted = api.deletedRuns().length;
    const deletedTokenLaunches = api
      .requestsTo('/api/2.2/jobs/run-now')
      .map((r) => (r.body as { idempotency_token?: string }).idempotency_token)
      .filter((token) => token !== undefined && /-a1$/.test(token) && !api.launchedRuns().some((run) => run.idempotencyToken === token)).length;
    ctx.progress(`deleted runs: ${launched.length} during the outage, ${deletedWhileWatched} while watched; then ${fanIns} fan-ins`);
    const audit = await auditPipeline(config, t.lakehouse, jobsApiRunRecords(api));
    const ok = (summary: FanInSummary | Error | undefined): summary is FanInSummary => summary !== undefined && !(summary instanceof Error);
    return audited('deletedRun', { deletedDuringOutage: launched.length, deletedWhileWatched, deletedRuns: deletedTokens.size, fanIns }, [
      invariant('a fan-in resumes launched batches whose runs were deleted, relaunches them and commits', ok(resumed) && resumed.resumed && resumed.committed && resumed.batchesParked === 0,
        ok(resumed) ? `resumed ${resumed.resumed}, committed ${resumed.committed}, ${resumed.batchesSucceeded}/${resumed.batches} succeeded, ${resumed.relaunches} relaunches` : `failed: ${resumed?.message}`),
      invariant('runs deleted while a fan-in watches them are relaunched and the fan-in commits', ok(second) && second.committed && deletedWhileWatched > 0,
        ok(second) ? `${deletedWhileWatched} deleted while watched; committed ${second.committed}, ${second.relaunches} relaunches` : `failed: ${second?.message}`),
      invariant('no run-now names a deleted run\'s token again', deletedTokenLaunches === deleted, `${deleted} runs deleted; ${deletedTokenLaunches} run-now requests with their tokens (each one's own launch)`),
    ], audit, config.temporal.taskQueue);
  } finally {
    await t?.stop();
    await launcher.close();
    await api.close();
  }
}
