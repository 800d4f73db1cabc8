import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { captureUntilCaughtUp, fanInWorkflowId, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { applyPlan } from '../../src/schedules/apply';
import { fanInScheduleId, planSchedules } from '../../src/schedules/plan';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { withSchedules } from '../support/cli';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/** The README's `temporal …` equivalents, run with the real Temporal CLI against a running pipeline. */
describe('operating with the temporal CLI', () => {
  let t: TestPipeline;
  const temporal = async (...args: string[]) =>
    (await promisify(execFile)(process.env.TEMPORAL_CLI_PATH!, [...args, '--address', process.env.CDF_TEST_TEMPORAL_ADDRESS!], { timeout: 60_000 })).stdout;
  const orders = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));

  beforeAll(async () => {
    // Same task queue and prefix as the pipeline, with a daily fan-in schedule that only fires when triggered here.
    const base = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    t = await startTestPipeline(withSchedules(base, { fanIn: { every: '1d', offset: '0s', catchupWindow: '10m' } }, { freshPrefix: false }));
    await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 5, maxOpsPerCommit: 8, idSpace: 100, seed: 41 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, 'orders');
  });

  afterAll(async () => {
    await t.client.schedule.getHandle(fanInScheduleId(t.config)).delete().catch(() => undefined);
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('`temporal workflow signal --name replayFromVersion` rewinds the offset and the source captures the versions again', async () => {
    const before = await orders().query(sourceStatusQuery);
    expect(before.offsetVersion).toBe(5);
    await temporal('workflow', 'signal', '-w', sourceWorkflowId(t.config, 'orders'), '--name', 'replayFromVersion', '--input', '{"fromVersion": 1}');
    const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(report.offsetVersion).toBe(5);
    const after = await orders().query(sourceStatusQuery);
    expect(after.lastRejected).toBeNull();
    expect(after.totals.ranges).toBeGreaterThan(before.totals.ranges); // versions 1..5 were read again ...
    expect(after.totals.registryRowsInserted).toBe(before.totals.registryRowsInserted); // ... and added nothing
    const rewinds = [];
    for await (const event of historyEvents(t, sourceWorkflowId(t.config, 'orders'))) {
      if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'rewindOffset') rewinds.push(event);
    }
    expect(rewinds).toHaveLength(1);
  });

  it('`temporal schedule trigger` of the fan-in schedule runs a fan-in to completion under the one fan-in workflow id', async () => {
    await applyPlan(t.client, await planSchedules(t.client, t.config));
    await temporal('schedule', 'trigger', '--schedule-id', fanInScheduleId(t.config));
    const query = `WorkflowType = "scheduledFanIn" AND TaskQueue = "${t.config.temporal.taskQueue}" AND ExecutionStatus = "Completed"`;
    let completed: string[] = [];
    for (let attempt = 0; attempt < 120 && completed.length === 0; attempt++) {
      completed = [];
      for await (const execution of t.client.workflow.list({ query })) completed.push(execution.workflowId);
      if (completed.length === 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(completed).toEqual([expect.stringMatching(new RegExp(`^${t.config.temporal.workflowIdPrefix}-fan-in-scheduled-`))]);
    const result = await t.client.workflow.getHandle(completed[0]!).result();
    expect(result).toEqual(expect.objectContaining({ workflowId: fanInWorkflowId(t.config), joined: false, summary: expect.objectContaining({ committed: true, batchesParked: 0 }) }));
  });

  it('`temporal workflow describe --output json` shows the CdfSource, CdfState and CdfLastVersion search attributes', async () => {
    const described = JSON.parse(await temporal('workflow', 'describe', '-w', sourceWorkflowId(t.config, 'orders'), '--output', 'json'));
    const fields = described.workflowExecutionInfo.searchAttributes.indexedFields;
    expect(decodePayload(fields.CdfSource)).toBe('orders');
    expect(decodePayload(fields.CdfState)).toBe('capturing');
    expect(decodePayload(fields.CdfLastVersion)).toBe(5);
  });
});

/** The CLI prints json/plain payloads either decoded (its shorthand) or as {metadata, data} in base64. */
function decodePayload(payload: unknown): unknown {
  if (payload && typeof payload === 'object' && 'data' in payload) return JSON.parse(Buffer.from(String((payload as { data: string }).data), 'base64').toString('utf8'));
  return payload;
}

async function* historyEvents(t: TestPipeline, workflowId: string) {
  const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
  yield* history.events ?? [];
}
