import { Client, Connection, ServiceError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { getEventListeners } from 'node:events';
import {
  captureUntilCaughtUp,
  describeErrorChain,
  fanInWorkflowId,
  runFanIn,
  runOwnFanIn,
  sourceWorkflowId,
  startOrJoinFanIn,
  startSourceWorkflows,
  type FanInStart,
} from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { captureNowUpdate, fanInStatusQuery, pauseSignal, replayFromVersionSignal, replayFromVersionUpdate, resumeSignal, sourceStatusQuery } from '../../src/workflows/messages';
import { CdfLastVersion, CdfSource, CdfState } from '../../src/workflows/searchAttributes';
import { eventually } from '../support/eventually';
import { currentDetails, startTestPipeline, startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/** What an operator does to a source, through the same handlers the UI's dialogs and the CLI use. */
describe('operating a source workflow', () => {
  let t: TestPipeline;
  let written: WrittenChange[];
  const handle = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
  const status = () => handle().query(sourceStatusQuery);
  const registryCount = async () => Number((await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry`))[0]!.n);

  beforeAll(async () => {
    t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] }));
    written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 6, maxOpsPerCommit: 10, idSpace: 200, seed: 11 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, 'orders');
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it.each([
    ['a negative version', { fromVersion: -1 }, /0 or more/],
    ['a version past the latest', { fromVersion: 999 }, /past the latest version 6/],
    ['a fractional version', { fromVersion: 1.5 }, /whole number/],
    ['a version given as text', { fromVersion: '3' }, /whole number/],
    ['a missing version', {}, /whole number/],
  ])('rejects a replay update with %s and changes nothing', async (_name, request, reason) => {
    const before = await status();
    const error = await handle().executeUpdate(replayFromVersionUpdate, { args: [request as never] }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((error as WorkflowUpdateFailedError).cause?.message).toMatch(reason);
    const after = await status();
    expect(after.offsetVersion).toBe(before.offsetVersion);
    expect(after.pendingReplay).toBeNull();
  });

  it('records a bad replay signal as rejected and changes nothing', async () => {
    await handle().signal(replayFromVersionSignal, { fromVersion: -3 });
    const after = await status();
    expect(after.lastRejected).toEqual(expect.objectContaining({ handler: 'replayFromVersion', reason: expect.stringMatching(/0 or more/) }));
    expect(after.offsetVersion).toBe(6);
  });

  it('replays from a version: captures again, adds no registry row and ends at the latest version', async () => {
    const rows = await registryCount();
    const totalsBefore = (await status()).totals;
    const accepted = await handle().executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 2, reason: 'test' }] });
    expect(accepted).toEqual({ fromVersion: 2, requestedFromVersion: 2, redispatch: false, redispatchFromVersion: null, redispatchMarked: false, requestsMerged: 1, previousOffset: 6, queued: false });
    const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(report.offsetVersion).toBe(6);
    const after = await status();
    expect(after.totals.ranges).toBeGreaterThan(totalsBefore.ranges); // versions 2..6 were read again ...
    expect(after.totals.registryRowsInserted).toBe(totalsBefore.registryRowsInserted); // ... and added nothing
    expect(await registryCount()).toBe(rows);
    expect(rows).toBe(written.length);
  });

  it('refuses captureNow while paused, shows the pause, and captures again after resume', async () => {
    await handle().signal(pauseSignal, { reason: 'maintenance' });
    expect((await status()).paused).toEqual(expect.objectContaining({ reason: 'maintenance' }));
    const refused = await handle().executeUpdate(captureNowUpdate, { args: [{}] }).catch((e: Error) => e);
    expect((refused as WorkflowUpdateFailedError).cause?.message).toMatch(/paused \(maintenance\): send resume first/);
    await handle().signal(resumeSignal, {});
    expect((await status()).paused).toBeNull();
    expect((await captureUntilCaughtUp(t.client, t.config, 'orders')).blocked).toBeNull();
  });

  it('publishes the source, its state and its offset as search attributes', async () => {
    const description = await handle().describe();
    expect(description.typedSearchAttributes.get(CdfSource)).toBe('orders');
    expect(description.typedSearchAttributes.get(CdfState)).toBe('capturing');
    expect(description.typedSearchAttributes.get(CdfLastVersion)).toBe(6);
    const listed = [];
    for await (const w of t.client.workflow.list({ query: `CdfSource = "orders" AND TaskQueue = "${t.config.temporal.taskQueue}"` })) listed.push(w.workflowId);
    expect(listed).toEqual([sourceWorkflowId(t.config, 'orders')]);
  });

  it('blocks on vacuumed versions, shows why and the remedy on its page, and recovers through a replay from the first readable version', async () => {
    await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 4, maxOpsPerCommit: 10, idSpace: 200, seed: 12 });
    await t.lakehouse.engine.vacuum('upstream.orders', 8);
    const blocked = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(blocked.blocked?.type).toBe('DELTA_FILE_NOT_FOUND_DETAILED');
    expect((await handle().describe()).typedSearchAttributes.get(CdfState)).toBe('blocked');
    // The workflow's page in the UI (current details): state first, then the error and the remedy, then the figures.
    const page = await currentDetails(t.client, sourceWorkflowId(t.config, 'orders'));
    expect(page).toMatch(/^\*\*orders: blocked\*\*\n\n`DELTA_FILE_NOT_FOUND_DETAILED` since \S+: /);
    expect(page).toContain(`**Remedy:** ${blocked.blocked!.remedy}`);
    expect(page).toContain('| 6 | 10 | 4 versions');
    await handle().executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 8 }] });
    const recovered = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(recovered).toEqual(expect.objectContaining({ blocked: null, offsetVersion: 10 }));
    expect(await currentDetails(t.client, sourceWorkflowId(t.config, 'orders'))).toMatch(/^\*\*orders: capturing\*\*\n\n\| offset[^\n]*\n[^\n]*\n\| 10 \| 10 \| caught up \|/);
    const versions = await t.lakehouse.db.all<{ v: bigint }>(`SELECT DISTINCT commit_version AS v FROM cdf.change_registry WHERE commit_version >= 8 ORDER BY 1`);
    expect(versions.map((r) => Number(r.v))).toEqual([8, 9, 10]);
  });

  it('shows the retention headroom of a lagging offset and flags it at risk', async () => {
    await t.lakehouse.engine.setDeletedFileRetentionHours('upstream.orders', 10);
    await t.lakehouse.engine.ageCommits('upstream.orders', 8); // the offset's commit is now 8 hours old
    await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 1, maxOpsPerCommit: 3, idSpace: 200, seed: 13 });
    await t.lakehouse.engine.vacuum('upstream.orders', 12); // keeps the source lagging (blocked)
    // The replay records offset 9 with its (aged) commit timestamp, as a capture would have.
    await handle().executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 10 }] });
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const lagging = await status();
    expect(lagging.lagVersions).toBe(2);
    expect(lagging.retentionHeadroomHours).toBeGreaterThan(1.8);
    expect(lagging.retentionHeadroomHours).toBeLessThan(2.1);
    expect(lagging.retentionAtRisk).toBe(true);
  });

  describe('waiting on a source or a fan-in with a stop signal', () => {
    // A source whose workflow no worker runs: an update to it waits until cancelled.
    const ghost = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'ghost'));
    beforeAll(async () => {
      await t.client.workflow.start('sourceIngest', { workflowId: sourceWorkflowId(t.config, 'ghost'), taskQueue: `${t.config.temporal.taskQueue}-no-worker`, args: [{ source: 'ghost' }] });
    });
    afterAll(async () => {
      await ghost().terminate('test done');
    });

    it('a capture wait is cancelled as soon as its signal aborts, not left waiting on the server', async () => {
      const stop = new AbortController();
      const waiting = captureUntilCaughtUp(t.client, t.config, 'ghost', { signal: stop.signal }).then(
        () => 'answered',
        (error: Error) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      const abortedAt = Date.now();
      stop.abort();
      const outcome = await waiting;
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as Error).message).toMatch(/cancel/i);
      expect(Date.now() - abortedAt).toBeLessThan(1000);
    });

    it('leaves no listener on its signal once its requests have ended (a run\'s stop signal outlives thousands)', async () => {
      const stop = new AbortController();
      for (let i = 0; i < 12; i++) await captureUntilCaughtUp(t.client, t.config, 'orders', { signal: stop.signal });
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
    });

    it('a fan-in wait, status queries included, is cancelled as soon as its signal aborts', async () => {
      // A fan-in on a task queue no worker polls: its result and status never come.
      const config = { ...t.config, temporal: { ...t.config.temporal, workflowIdPrefix: `${t.config.temporal.workflowIdPrefix}-ghost`, taskQueue: `${t.config.temporal.taskQueue}-no-worker` } };
      const stop = new AbortController();
      const waiting = runFanIn(t.client, config, { signal: stop.signal, onStatus: () => undefined }).then(
        () => 'answered',
        (error: Error) => error,
      );
      try {
        await new Promise((resolve) => setTimeout(resolve, 1500)); // a status query is in flight too
        const abortedAt = Date.now();
        stop.abort();
        const outcome = await waiting;
        expect(outcome).toBeInstanceOf(Error);
        // The client wraps the gRPC status: "Failed to get Workflow execution history", caused by "1 CANCELLED: ...".
        expect(`${(outcome as Error).message} / ${((outcome as Error).cause as Error | undefined)?.message}`).toMatch(/CANCELLED/);
        expect(Date.now() - abortedAt).toBeLessThan(1000);
      } finally {
        await t.client.workflow.getHandle(fanInWorkflowId(config)).terminate('test done');
      }
    });

    it('sends no request once its signal has aborted', async () => {
      const stop = new AbortController();
      stop.abort();
      await expect(captureUntilCaughtUp(t.client, t.config, 'ghost', { signal: stop.signal })).rejects.toThrow('stopped before the request was sent');
    });
  });

  it('tells a caller that a source it names does not exist', async () => {
    const error = await t.client.workflow.getHandle(sourceWorkflowId(t.config, 'nope')).query(sourceStatusQuery).catch((e: Error) => e);
    expect(error).toBeInstanceOf(WorkflowNotFoundError);
  });
});

describe('capturing through a workflow task that fails', () => {
  it('a captureNow the server aborts because the workflow task carrying it failed is sent again, and the source catches up', async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    const written = await writeRandomTraffic(lakehouse, config.sources[0]!, { commits: 3, maxOpsPerCommit: 5, idSpace: 50, seed: 21 });
    const connection = await Connection.connect({ address: config.temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    let t: TestPipeline | undefined;
    try {
      await startSourceWorkflows(client, config);
      const capturing = captureUntilCaughtUp(client, config, 'orders').catch((error: Error) => error);
      // A worker that takes the workflow's task carrying the update and completes it with a command
      // the server refuses: the task fails and the server aborts the update (FAILED_PRECONDITION
      // "… unexpected workflow task failure"), as after a worker that went wrong mid-task. A task
      // polled before the update arrived is failed the same way; the update comes with the next.
      const failTask = (taskToken: Uint8Array) =>
        connection
          .withDeadline(Date.now() + 10_000, () =>
            connection.workflowService.respondWorkflowTaskCompleted({
              namespace: config.temporal.namespace,
              taskToken,
              identity: 'broken-worker',
              commands: [
                {
                  commandType: temporal.api.enums.v1.CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK,
                  scheduleActivityTaskCommandAttributes: { activityId: '1', activityType: { name: 'describeSource' }, taskQueue: { name: config.temporal.taskQueue } },
                },
              ],
            }),
          )
          .then(
            () => null,
            (error: Error) => error,
          );
      for (;;) {
        const task = await connection.withDeadline(Date.now() + 30_000, () =>
          connection.workflowService.pollWorkflowTaskQueue({
            namespace: config.temporal.namespace,
            taskQueue: { name: config.temporal.taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
            identity: 'broken-worker',
          }),
        );
        if (task.messages?.length) {
          t = await startWorkerOn(config, lakehouse); // polls from now on; the broken worker holds the task
          expect((await failTask(task.taskToken!))?.message).toMatch(/BadScheduleActivityAttributes/);
          break;
        }
        expect((await failTask(task.taskToken!))?.message).toMatch(/BadScheduleActivityAttributes/);
      }
      const report = await capturing;
      if (report instanceof Error) throw report;
      const latest = Math.max(...written.map((change) => change.version));
      expect(report).toEqual(expect.objectContaining({ blocked: null, offsetVersion: latest, latestVersion: latest }));
    } finally {
      await terminateWorkflows(client, config);
      await connection.close();
      if (t) await t.stop();
      else await lakehouse.close();
    }
  });

  it('names the error class and message of every cause when it reports a failed request', () => {
    const grpc = Object.assign(new Error('9 FAILED_PRECONDITION: Unable to perform workflow execution update due to unexpected workflow task failure.'), { code: 9 });
    expect(describeErrorChain(new ServiceError('Workflow Update failed', { cause: grpc }))).toBe(
      'ServiceError: Workflow Update failed ← Error: 9 FAILED_PRECONDITION: Unable to perform workflow execution update due to unexpected workflow task failure.',
    );
  });
});

describe('a fan-in that dispatches what was captured before it', () => {
  let t: TestPipeline;
  /** Closed: the downstream job of every batch waits until it opens. */
  let gate: { opened: Promise<void>; open(): void };
  const closeGate = () => {
    let open!: () => void;
    gate = { opened: new Promise<void>((resolve) => (open = resolve)), open };
  };

  beforeAll(async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    gate = { opened: Promise.resolve(), open: () => undefined };
    t = await startWorkerOn(config, lakehouse, { processor: async (runKey, batchNumber) => (await gate.opened, lakehouse.processBatch(runKey, batchNumber)) });
    await startSourceWorkflows(t.client, t.config);
  });
  afterAll(async () => {
    gate.open();
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('joins a fan-in that opened its window before the capture, waits for it, then runs its own, so that every captured change is dispatched', async () => {
    const idsOf = (changes: { utsId: string }[]) => new Set(changes.map((change) => change.utsId)).size;
    const before = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 2, maxOpsPerCommit: 20, idSpace: 300, seed: 31 });
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    // A fan-in started earlier (say by a run that was then killed) is dispatching what was captured so far ...
    closeGate();
    const earlier = await startOrJoinFanIn(t.client, t.config);
    await eventually(async () => ((await earlier.handle.query(fanInStatusQuery)).batchesRunning > 0 ? true : undefined), 30_000);
    // ... when more is captured and a fan-in is asked for.
    const after = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 2, maxOpsPerCommit: 20, idSpace: 300, seed: 32 });
    await captureUntilCaughtUp(t.client, t.config, 'orders');
    const joined: FanInStart[] = [];
    const report = await runOwnFanIn(t.client, t.config, {
      onJoined: (start) => {
        joined.push(start);
        gate.open();
      },
    });
    expect(joined).toHaveLength(1);
    expect(report.own.changedIds).toBe(idsOf(after));
    expect(report.joined?.changedIds).toBe(idsOf(before));
    expect(report.own.runKey).not.toBe(report.joined?.runKey);
    expect(report.own.batchesSucceeded).toBe(report.own.batches);
  });
});
