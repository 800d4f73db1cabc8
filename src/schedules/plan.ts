import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import { durationMs, type Config, type OverlapPolicyName, type ScheduleConfig } from '../config/schema';

/** Marks a schedule as ours (and whose prefix), so apply never touches or deletes anyone else's. */
export const MANAGED_BY = 'cdf-orchestrator';

export const fanInScheduleId = (config: Config) => `${config.temporal.workflowIdPrefix}-fan-in`;
export const pollScheduleId = (config: Config, source: string) => `${config.temporal.workflowIdPrefix}-poll-${source}`;
export const purgeScheduleId = (config: Config) => `${config.temporal.workflowIdPrefix}-purge`;

/** A schedule as the config wants it: plain values (durations in ms), comparable with a describe(). */
export interface DesiredSchedule {
  scheduleId: string;
  /** Where it comes from in the config, for messages: "schedules.fanIn". */
  configPath: string;
  workflowType: 'scheduledFanIn' | 'purge';
  workflowId: string;
  taskQueue: string;
  args: unknown[];
  staticSummary: string;
  everyMs: number;
  offsetMs: number;
  jitterMs: number;
  catchupWindowMs: number;
  overlap: ScheduleOverlapPolicy;
  paused: boolean;
}

/** The fields compared between the config and the server; each name appears in an update's `fields`. */
export const COMPARED_FIELDS = ['workflowType', 'workflowId', 'taskQueue', 'args', 'staticSummary', 'intervals', 'calendars', 'jitter', 'overlap', 'catchupWindow'] as const;
export type ComparedField = (typeof COMPARED_FIELDS)[number];

export interface SchedulePlan {
  /** The workflowIdPrefix whose schedules this plan covers. */
  prefix: string;
  create: DesiredSchedule[];
  update: { desired: DesiredSchedule; fields: ComparedField[] }[];
  pause: string[];
  unpause: string[];
  /** Managed schedules of this prefix that the config no longer has. */
  delete: string[];
  unchanged: string[];
  /** Ids the config wants that belong to someone else: apply refuses to touch them. */
  conflicts: { scheduleId: string; reason: string }[];
}

/**
 * The schedules `config.schedules` asks for: the fan-in and the retention purge. (Poll schedules per source,
 * `<prefix>-poll-<source>`, came from the removed `schedules.sources`; apply deletes them as
 * managed schedules the config no longer names.)
 */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const desired: DesiredSchedule[] = [];
  const { fanIn } = config.schedules;
  if (fanIn) {
    desired.push({
      scheduleId: fanInScheduleId(config),
      configPath: 'schedules.fanIn',
      // The schedule's short workflow starts or joins the one fan-in workflow id (<prefix>-fan-in).
      workflowType: 'scheduledFanIn',
      workflowId: `${config.temporal.workflowIdPrefix}-fan-in-scheduled`,
      taskQueue: config.temporal.taskQueue,
      args: [{}],
      staticSummary: 'Scheduled fan-in: dispatch changed ids to downstream jobs',
      ...timing(fanIn),
    });
  }
  const { purge } = config.schedules;
  if (purge) {
    desired.push({
      scheduleId: purgeScheduleId(config),
      configPath: 'schedules.purge',
      workflowType: 'purge',
      workflowId: `${config.temporal.workflowIdPrefix}-purge-scheduled`,
      taskQueue: config.temporal.taskQueue,
      args: [{}],
      staticSummary: 'Scheduled retention purge: delete dispatched changes and finished batches past retention',
      ...timing(purge),
    });
  }
  return desired;
}

/**
 * Compares the config's schedules with the server's. The ones the config names are read by id
 * (describe is consistent); only deletions rely on list(), which is eventually consistent, so a
 * schedule created a moment ago and already removed from the config may be deleted by the next run.
 */
export async function planSchedules(client: Client, config: Config): Promise<SchedulePlan> {
  const prefix = config.temporal.workflowIdPrefix;
  const plan: SchedulePlan = { prefix, create: [], update: [], pause: [], unpause: [], delete: [], unchanged: [], conflicts: [] };
  const desired = desiredSchedules(config);
  for (const want of desired) {
    const current = await describeOrNull(client, want.scheduleId);
    if (!current) {
      plan.create.push(want);
      continue;
    }
    if (!isManaged(current.memo, prefix)) {
      plan.conflicts.push({
        scheduleId: want.scheduleId,
        reason: `schedule ${want.scheduleId} exists but was not created by ${MANAGED_BY} for prefix "${prefix}": delete it (temporal schedule delete --schedule-id ${want.scheduleId}) or choose another temporal.workflowIdPrefix`,
      });
      continue;
    }
    const fields = differingFields(want, current);
    if (fields.length > 0) plan.update.push({ desired: want, fields });
    if (want.paused && !current.state.paused) plan.pause.push(want.scheduleId);
    if (!want.paused && current.state.paused) plan.unpause.push(want.scheduleId);
    if (fields.length === 0 && want.paused === current.state.paused) plan.unchanged.push(want.scheduleId);
  }
  const wanted = new Set(desired.map((d) => d.scheduleId));
  for await (const listed of client.schedule.list()) {
    if (!listed.scheduleId.startsWith(`${prefix}-`) || wanted.has(listed.scheduleId) || !isManaged(listed.memo, prefix)) continue;
    plan.delete.push(listed.scheduleId);
  }
  plan.delete.sort();
  return plan;
}

/** True when the plan would change nothing on the server. */
export function isEmptyPlan(plan: SchedulePlan): boolean {
  return plan.create.length + plan.update.length + plan.pause.length + plan.unpause.length + plan.delete.length === 0;
}

/** One line per schedule, for people: `create  cdf-fan-in  every 15m …`. */
export function formatPlan(plan: SchedulePlan): string {
  const lines: string[] = [];
  const row = (action: string, id: string, detail = '') => lines.push(`${action.padEnd(9)} ${id}${detail ? `  ${detail}` : ''}`);
  for (const want of plan.create) row('create', want.scheduleId, describeTiming(want));
  for (const { desired, fields } of plan.update) row('update', desired.scheduleId, `${fields.join(', ')} → ${describeTiming(desired)}`);
  for (const id of plan.pause) row('pause', id);
  for (const id of plan.unpause) row('unpause', id);
  for (const id of plan.delete) row('delete', id, 'no longer in the config');
  for (const id of plan.unchanged) row('unchanged', id);
  for (const conflict of plan.conflicts) row('conflict', conflict.scheduleId, conflict.reason);
  if (lines.length === 0) lines.push(`no schedules configured for prefix "${plan.prefix}" and none to delete (add a schedules section to the config)`);
  return lines.join('\n');
}

export function describeTiming(want: DesiredSchedule): string {
  const seconds = (ms: number) => `${ms / 1000}s`;
  return `${want.workflowType} every ${seconds(want.everyMs)} offset ${seconds(want.offsetMs)} jitter ${seconds(want.jitterMs)} overlap ${want.overlap} catchupWindow ${seconds(want.catchupWindowMs)}${want.paused ? ' paused' : ''}`;
}

export function isManaged(memo: Record<string, unknown> | undefined, prefix: string): boolean {
  return memo?.managedBy === MANAGED_BY && memo?.workflowIdPrefix === prefix;
}

const OVERLAP: Record<OverlapPolicyName, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  buffer_all: ScheduleOverlapPolicy.BUFFER_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
};

function timing(schedule: ScheduleConfig) {
  return {
    everyMs: durationMs(schedule.every),
    offsetMs: durationMs(schedule.offset),
    jitterMs: durationMs(schedule.jitter),
    catchupWindowMs: durationMs(schedule.catchupWindow),
    overlap: OVERLAP[schedule.overlap],
    paused: schedule.paused,
  };
}

async function describeOrNull(client: Client, scheduleId: string): Promise<ScheduleDescription | null> {
  try {
    return await client.schedule.getHandle(scheduleId).describe();
  } catch (error) {
    if (error instanceof ScheduleNotFoundError) return null;
    throw error;
  }
}

function differingFields(want: DesiredSchedule, current: ScheduleDescription): ComparedField[] {
  const action = current.action;
  const has: Record<ComparedField, boolean> = {
    workflowType: action.workflowType === want.workflowType,
    workflowId: action.workflowId === want.workflowId,
    taskQueue: action.taskQueue === want.taskQueue,
    args: JSON.stringify(action.args ?? []) === JSON.stringify(want.args),
    staticSummary: (action.staticSummary ?? '') === want.staticSummary,
    intervals: JSON.stringify(current.spec.intervals ?? []) === JSON.stringify([{ every: want.everyMs, offset: want.offsetMs }]),
    calendars: (current.spec.calendars ?? []).length === 0,
    jitter: (current.spec.jitter ?? 0) === want.jitterMs,
    // An unset policy reads back as undefined (the server's SKIP); we always set one, so undefined differs.
    overlap: current.policies.overlap === want.overlap,
    catchupWindow: current.policies.catchupWindow === want.catchupWindowMs,
  };
  return COMPARED_FIELDS.filter((field) => !has[field]);
}
