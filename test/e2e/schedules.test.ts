import { ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import { sourceWorkflowId } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import { applyPlan } from '../../src/schedules/apply';
import { desiredSchedules, fanInScheduleId, isEmptyPlan, planSchedules, type SchedulePlan } from '../../src/schedules/plan';
import { runCdf, withSchedules, writeConfigFile } from '../support/cli';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';

/** `cdf schedules apply`: the server's schedules follow the config's schedules section. */
describe('schedules from the config', () => {
  let t: TestPipeline;
  const created = new Set<string>();
  const schedules = {
    fanIn: { every: '1d', offset: '5h', jitter: '30s', overlap: 'buffer_one', catchupWindow: '10m' },
  };
  const describe_ = (id: string) => t.client.schedule.getHandle(id).describe();

  /** Plans and applies, remembering every schedule the config names so afterAll can delete it. */
  async function apply(config: Config): Promise<SchedulePlan> {
    desiredSchedules(config).forEach((d) => created.add(d.scheduleId));
    const plan = await planSchedules(t.client, config);
    await applyPlan(t.client, plan);
    return plan;
  }

  beforeAll(async () => {
    t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }] }));
  });

  afterAll(async () => {
    for (const id of created) await t.client.schedule.getHandle(id).delete().catch(() => undefined);
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('creates the fan-in schedule with the overlap policy, catch-up window and jitter of the config', async () => {
    const config = withSchedules(t.config, schedules);
    const plan = await apply(config);
    expect(plan.create.map((d) => d.scheduleId)).toEqual([fanInScheduleId(config)]);

    const fanIn = await describe_(fanInScheduleId(config));
    expect(fanIn.policies).toEqual(expect.objectContaining({ overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: 10 * 60_000 }));
    expect(fanIn.spec.jitter).toBe(30_000);
    expect(fanIn.spec.intervals).toEqual([{ every: 86_400_000, offset: 5 * 3_600_000 }]);
    expect(fanIn.action).toEqual(expect.objectContaining({ workflowType: 'scheduledFanIn', args: [{}], taskQueue: config.temporal.taskQueue, workflowId: `${config.temporal.workflowIdPrefix}-fan-in-scheduled` }));
    expect(fanIn.memo).toEqual({ managedBy: 'cdf-orchestrator', workflowIdPrefix: config.temporal.workflowIdPrefix });
    expect(fanIn.state.paused).toBe(false);
  });

  it('applying the same config twice leaves every schedule unchanged', async () => {
    const config = withSchedules(t.config, schedules);
    await apply(config);
    const second = await planSchedules(t.client, config);
    expect(isEmptyPlan(second)).toBe(true);
    expect(second.unchanged.sort()).toEqual(desiredSchedules(config).map((d) => d.scheduleId).sort());
  });

  it('plans a changed jitter and overlap as an update naming those fields, and applies it', async () => {
    const config = withSchedules(t.config, { fanIn: schedules.fanIn });
    await apply(config);
    const changed = withSchedules(config, { fanIn: { ...schedules.fanIn, jitter: '1m', overlap: 'allow_all' } }, { freshPrefix: false });
    const plan = await apply(changed);
    expect(plan.update).toEqual([expect.objectContaining({ fields: ['jitter', 'overlap'] })]);
    const fanIn = await describe_(fanInScheduleId(config));
    expect(fanIn.spec.jitter).toBe(60_000);
    expect(fanIn.policies.overlap).toBe(ScheduleOverlapPolicy.ALLOW_ALL);
    expect(fanIn.policies.catchupWindow).toBe(10 * 60_000); // still the configured window, not the 60 s describe() shows when unset
    expect(isEmptyPlan(await planSchedules(t.client, changed))).toBe(true);
  });

  it('deletes the fan-in schedule once the config no longer has it, and leaves a schedule it does not manage', async () => {
    const config = withSchedules(t.config, schedules);
    await apply(config);
    const foreignId = `${config.temporal.workflowIdPrefix}-someone-elses`;
    created.add(foreignId);
    await t.client.schedule.create({ scheduleId: foreignId, spec: { intervals: [{ every: '1d' }] }, action: { type: 'startWorkflow', workflowType: 'scheduledFanIn', taskQueue: config.temporal.taskQueue, args: [{}] }, state: { paused: true } });
    const without = withSchedules(config, {}, { freshPrefix: false });
    // list() is eventually consistent: a schedule created a moment ago may need a moment to be listed.
    const plan = await eventually(() => planSchedules(t.client, without), (p) => p.delete.length > 0);
    expect(plan.delete).toEqual([fanInScheduleId(config)]);
    await applyPlan(t.client, plan);
    await expect(describe_(fanInScheduleId(config))).rejects.toBeInstanceOf(ScheduleNotFoundError);
    expect((await describe_(foreignId)).state.paused).toBe(true);
  });

  it('deletes the poll schedules an earlier version created for schedules.sources, which was removed', async () => {
    const config = withSchedules(t.config, schedules);
    const pollId = `${config.temporal.workflowIdPrefix}-poll-orders`;
    created.add(pollId);
    // As the earlier version created it: managed memo, a pollSource action.
    await t.client.schedule.create({
      scheduleId: pollId,
      spec: { intervals: [{ every: '12h' }] },
      action: { type: 'startWorkflow', workflowType: 'pollSource', workflowId: `${pollId}-scheduled`, taskQueue: config.temporal.taskQueue, args: [{ source: 'orders', workflowId: sourceWorkflowId(config, 'orders') }] },
      memo: { managedBy: 'cdf-orchestrator', workflowIdPrefix: config.temporal.workflowIdPrefix },
    });
    const plan = await eventually(() => planSchedules(t.client, config), (p) => p.delete.length > 0);
    expect(plan.delete).toEqual([pollId]);
    await applyPlan(t.client, plan);
    await expect(describe_(pollId)).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('pauses a schedule whose config says paused: true and unpauses it when that is taken back', async () => {
    const config = withSchedules(t.config, { fanIn: { ...schedules.fanIn, paused: true } });
    await apply(config);
    expect((await describe_(fanInScheduleId(config))).state.paused).toBe(true);
    const resumed = withSchedules(config, { fanIn: schedules.fanIn }, { freshPrefix: false });
    const plan = await apply(resumed);
    expect(plan.unpause).toEqual([fanInScheduleId(config)]);
    expect((await describe_(fanInScheduleId(config))).state.paused).toBe(false);
  });

  it('`cdf schedules apply --dry-run` prints the plan and changes nothing', async () => {
    const config = withSchedules(t.config, { fanIn: schedules.fanIn });
    await apply(config);
    const changed = withSchedules(config, { fanIn: { ...schedules.fanIn, catchupWindow: '1h' } }, { freshPrefix: false });
    desiredSchedules(changed).forEach((d) => created.add(d.scheduleId));
    const result = await runCdf(['schedules', 'apply', '--dry-run', '--config', writeConfigFile(changed)]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`update +${fanInScheduleId(config)} +catchupWindow`));
    expect(result.stdout).toContain('dry run: nothing changed');
    expect((await describe_(fanInScheduleId(config))).policies.catchupWindow).toBe(10 * 60_000);

    const applied = await runCdf(['schedules', 'apply', '--json', '--config', writeConfigFile(changed)]);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toEqual(expect.objectContaining({ applied: true, dryRun: false }));
    expect((await describe_(fanInScheduleId(config))).policies.catchupWindow).toBe(3_600_000);
  });
});

/** Retries `read` until `done` holds (at most ~20 s), for eventually consistent reads. */
async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const value = await read();
    if (done(value) || attempt >= 80) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
