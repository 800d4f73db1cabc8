import type { Client, ScheduleOptions, ScheduleUpdateOptions } from '@temporalio/client';
import { MANAGED_BY, type DesiredSchedule, type SchedulePlan } from './plan';

/** A plan that names schedules we may not touch; nothing was changed. */
export class ScheduleConflictError extends Error {
  override readonly name = 'ScheduleConflictError';
  constructor(readonly conflicts: SchedulePlan['conflicts']) {
    super(conflicts.map((c) => c.reason).join('\n'));
  }
}

/**
 * Makes the server match a plan from planSchedules: create, update, pause/unpause, delete. Each
 * step converges on the config, so applying a fresh plan again finds everything unchanged.
 */
export async function applyPlan(client: Client, plan: SchedulePlan): Promise<void> {
  if (plan.conflicts.length > 0) throw new ScheduleConflictError(plan.conflicts);
  for (const want of plan.create) {
    await client.schedule.create({ ...scheduleBody(want), scheduleId: want.scheduleId, memo: { managedBy: MANAGED_BY, workflowIdPrefix: plan.prefix } } as ScheduleOptions);
  }
  for (const { desired } of plan.update) {
    // Called with the current description and possibly more than once: it must only build the new body.
    await client.schedule.getHandle(desired.scheduleId).update((previous) => ({ ...scheduleBody(desired), state: { paused: previous.state.paused, note: previous.state.note } }));
  }
  for (const id of plan.pause) await client.schedule.getHandle(id).pause(`paused by ${MANAGED_BY}: paused is true for it in the config's schedules section`);
  for (const id of plan.unpause) await client.schedule.getHandle(id).unpause(`unpaused by ${MANAGED_BY}: paused is false in the config`);
  for (const id of plan.delete) await client.schedule.getHandle(id).delete();
}

/** Spec, action, policies and state of a schedule, every policy explicit (see the catch-up window note). */
function scheduleBody(want: DesiredSchedule): ScheduleUpdateOptions {
  return {
    spec: { intervals: [{ every: want.everyMs, offset: want.offsetMs }], jitter: want.jitterMs },
    action: {
      type: 'startWorkflow',
      workflowType: want.workflowType,
      workflowId: want.workflowId,
      taskQueue: want.taskQueue,
      args: want.args,
      staticSummary: want.staticSummary,
    },
    // describe() reports an unset catch-up window as 60 s while the server applies one year: always set it.
    policies: { overlap: want.overlap, catchupWindow: want.catchupWindowMs, pauseOnFailure: false },
    state: { paused: want.paused, note: `managed by ${MANAGED_BY} (${want.configPath} in the config): change it there and run \`cdf schedules apply\`` },
  };
}
