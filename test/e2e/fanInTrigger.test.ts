import { captureUntilCaughtUp, fanInTriggerWorkflowId, fanInWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { changesCapturedSignal, fanInTriggerStatusQuery, MAX_TRIGGER_HISTORY_EVENTS, type ChangesCaptured } from '../../src/workflows/fanInTrigger';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { eventually } from '../support/eventually';
import { startTestPipeline, startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sources poll every second and signal the trigger; the trigger debounces bursts into single fan-ins. */
describe('event-driven fan-in', () => {
  let t: TestPipeline;

  beforeAll(async () => {
    t = await startTestPipeline(
      testConfig({
        sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }],
        capture: { pollIntervalSeconds: 1 },
        fanIn: { onChange: { enabled: true, waitAfterLastChangeSeconds: 3, minSecondsBetweenRuns: 1 } },
      }),
    );
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  const fanInRuns = async () => {
    const runs: { workflowId: string; result: FanInSummary }[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowType = "fanIn" AND TaskQueue = "${t.config.temporal.taskQueue}"` })) {
      runs.push({ workflowId: w.workflowId, result: (await t.client.workflow.getHandle(w.workflowId).result()) as FanInSummary });
    }
    return runs.sort((a, b) => a.workflowId.localeCompare(b.workflowId));
  };

  const waitForRuns = async (count: number) => {
    const trigger = t.client.workflow.getHandle(fanInTriggerWorkflowId(t.config));
    for (let i = 0; i < 120; i++) {
      const status = await trigger.query(fanInTriggerStatusQuery).catch(() => undefined);
      if (status && status.runsStarted >= count && status.lastRun && status.pendingSources.length === 0) return status;
      await sleep(500);
    }
    throw new Error(`the trigger did not start ${count} fan-in(s) in time`);
  };

  it('coalesces close commits on two sources into one fan-in, and a later burst into a second', async () => {
    // Tables exist (version 0) before the sources start, so the first cycles capture nothing.
    const [orders, customers] = t.config.sources;
    const first = new Set<string>();
    for (const source of t.config.sources) await ensureDemoSourceTable(t.lakehouse, source);
    await startSourceWorkflows(t.client, t.config);
    for (let i = 0; i < 3; i++) {
      for (const [index, source] of [orders!, customers!].entries()) {
        const written = await writeRandomTraffic(t.lakehouse, source, { commits: 1, maxOpsPerCommit: 5, idSpace: 100, seed: 100 + i * 10 + index });
        written.forEach((w) => first.add(w.utsId));
      }
      await sleep(700); // closer together than the 3 s debounce
    }
    await waitForRuns(1);
    await sleep(1500); // no second run appears while nothing changes
    let runs = await fanInRuns();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.result.changedIds).toBe(first.size);

    const second = new Set<string>();
    const written = await writeRandomTraffic(t.lakehouse, orders!, { commits: 2, maxOpsPerCommit: 5, idSpace: 100, seed: 999 });
    written.forEach((w) => second.add(w.utsId));
    await waitForRuns(2);
    // Visibility lags the trigger's own count by a moment under load: wait until the list shows the second run.
    runs = await eventually(async () => {
      const listed = await fanInRuns();
      return listed.length >= 2 ? listed : undefined;
    }, 15_000, () => 'the second fan-in never appeared in the workflow list');
    expect(runs).toHaveLength(2);
    expect(runs[1]!.result.changedIds).toBe(second.size);
    expect(runs.every((r) => r.result.committed)).toBe(true);
  });
});

/** What a source's notifyFanIn sends, signalled by the test itself. */
async function notifyTrigger(t: TestPipeline, offsetVersion: number): Promise<void> {
  const { waitAfterLastChangeSeconds, maxWaitSeconds, minSecondsBetweenRuns } = t.config.fanIn.onChange;
  const change: ChangesCaptured = { source: 'orders', offsetVersion, waitAfterLastChangeSeconds, maxWaitSeconds, minSecondsBetweenRuns };
  await t.client.workflow.signalWithStart('fanInTrigger', { workflowId: fanInTriggerWorkflowId(t.config), taskQueue: t.config.temporal.taskQueue, args: [{}], signal: changesCapturedSignal, signalArgs: [change] });
}

/**
 * Many busy sources never leave the debounce a quiet moment: the maximum wait starts a fan-in
 * anyway, and the trigger continues as new so that its history stays bounded. The changes are
 * signalled straight to the trigger (as a source's notifyFanIn does) so that the test sets the pace.
 */
describe('event-driven fan-in under continuous traffic', () => {
  const maxWaitSeconds = 5;
  let t: TestPipeline;

  beforeAll(async () => {
    t = await startTestPipeline(
      testConfig({
        sources: [{ name: 'orders', table: 'upstream.orders' }],
        fanIn: { onChange: { enabled: true, waitAfterLastChangeSeconds: 2, maxWaitSeconds, minSecondsBetweenRuns: 0 } },
      }),
    );
    await ensureDemoSourceTable(t.lakehouse, t.config.sources[0]!);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  /** Signals one captured change every 100 ms for `seconds`; returns when the first and the last were sent. */
  const notifyContinuously = async (seconds: number) => {
    const first = Date.now();
    let last = first;
    for (let i = 0; Date.now() - first < seconds * 1000; i++) {
      last = Date.now();
      await notifyTrigger(t, i + 1);
      await sleep(Math.max(0, first + (i + 1) * 100 - Date.now()));
    }
    return { first, last };
  };

  it('starts fan-ins at the maximum wait while changes never pause, and keeps every run of the trigger under a fixed number of events', async () => {
    const traffic = await notifyContinuously(60);

    const starts = (
      await eventually(async () => {
        const listed: number[] = [];
        for await (const w of t.client.workflow.list({ query: `WorkflowType = "fanIn" AND TaskQueue = "${t.config.temporal.taskQueue}"` })) listed.push(w.startTime.getTime());
        return listed.length > 0 ? listed : undefined;
      }, 15_000, () => 'no fan-in started')
    )
      .filter((at) => at <= traffic.last)
      .sort((a, b) => a - b);
    // Each fan-in starts once the first change after the previous start has waited maxWaitSeconds
    // (the changes come within 100 ms of a start; the previous fan-in, on empty tables, is over by then).
    const gaps = [starts[0]! - traffic.first, ...starts.slice(1).map((at, i) => at - starts[i]!)];
    expect(starts.length).toBeGreaterThanOrEqual(7);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(maxWaitSeconds * 1000 - 500);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(maxWaitSeconds * 1000 + 3_000);

    const runs: { runId: string; events: number }[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowId = "${fanInTriggerWorkflowId(t.config)}"` })) {
      const history = await t.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory();
      runs.push({ runId: w.runId, events: history.events?.length ?? 0 });
    }
    // 600 changes make some 2,800 events: the trigger continued as new at its bound (plus the events of its last task).
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...runs.map((r) => r.events))).toBeLessThanOrEqual(MAX_TRIGGER_HISTORY_EVENTS + 50);
  });
});

describe('the event-driven fan-in continuing as new while its fan-in runs', () => {
  let t: TestPipeline;
  let releaseJobs: () => void = () => undefined;
  const jobsReleased = new Promise<void>((resolve) => (releaseJobs = resolve));

  beforeAll(async () => {
    const config = testConfig({
      sources: [{ name: 'orders', table: 'upstream.orders' }],
      fanIn: { onChange: { enabled: true, waitAfterLastChangeSeconds: 0, minSecondsBetweenRuns: 0 } },
    });
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    // Downstream jobs wait for the test: the fan-in stays in flight for as long as it needs.
    t = await startWorkerOn(config, lakehouse, { processor: async (runKey, batchNumber) => (await jobsReleased, lakehouse.processBatch(runKey, batchNumber)) });
  });

  afterAll(async () => {
    releaseJobs();
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('carries the fan-in in flight and the changes that arrived meanwhile into its next run, and runs one more fan-in for them', async () => {
    const written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 2, maxOpsPerCommit: 5, idSpace: 100, seed: 7 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const trigger = t.client.workflow.getHandle(fanInTriggerWorkflowId(t.config));
    await eventually(async () => ((await trigger.query(fanInTriggerStatusQuery).catch(() => undefined))?.fanInInFlight ? true : undefined), 30_000, () => 'the trigger never started its fan-in');
    const { runId: firstRunId } = await trigger.describe();

    // Notifications while the fan-in runs, until the trigger's history reaches its bound.
    for (let i = 0; (await trigger.describe()).runId === firstRunId; i++) {
      if (i > 4 * MAX_TRIGGER_HISTORY_EVENTS) throw new Error(`the trigger did not continue as new after ${i} notifications`);
      await notifyTrigger(t, 100 + i);
    }
    const carried = await trigger.query(fanInTriggerStatusQuery);
    expect(carried).toMatchObject({ runsStarted: 1, fanInInFlight: fanInWorkflowId(t.config), pendingSources: ['orders'] });

    releaseJobs();
    const done = await eventually(async () => {
      const status = await trigger.query(fanInTriggerStatusQuery);
      return status.runsStarted === 2 && status.fanInInFlight === null && status.pendingSources.length === 0 ? status : undefined;
    }, 60_000, () => 'the trigger did not finish the carried fan-in and one more');
    expect(done.lastRun).toMatchObject({ failed: false, changedIds: 0 });
    // Visibility lags a moment behind the trigger's own count.
    const runs = await eventually(async () => {
      const listed: FanInSummary[] = [];
      for await (const w of t.client.workflow.list({ query: `WorkflowType = "fanIn" AND TaskQueue = "${t.config.temporal.taskQueue}"` })) listed.push((await t.client.workflow.getHandle(w.workflowId, w.runId).result()) as FanInSummary);
      return listed.length >= 2 ? listed : undefined;
    }, 15_000, () => 'the two fan-ins never appeared in the workflow list');
    const [carriedRun, oneMore] = runs.sort((a, b) => b.changedIds - a.changedIds);
    expect(carriedRun).toMatchObject({ changedIds: new Set(written.map((w) => w.utsId)).size, committed: true });
    expect(oneMore!.changedIds).toBe(0); // the test's notifications carried no new version
  });
});
