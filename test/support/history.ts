import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import Long from 'long';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = temporal.api.enums.v1.EventType;

export async function fetchHistory(client: Client, workflowId: string, runId?: string): Promise<temporal.api.history.v1.IHistory> {
  return client.workflow.getHandle(workflowId, runId).fetchHistory();
}

/** The WorkflowTaskCompleted event right after the first completion of `activityType`: a reset point. */
export function resetPointAfterActivity(events: HistoryEvent[], activityType: string): number {
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
  if (!scheduled) throw new Error(`no ${activityType} activity in the history`);
  const completed = events.find((e) => Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === Number(scheduled.eventId));
  if (!completed) throw new Error(`${activityType} never completed`);
  const taskDone = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && Number(e.eventId) > Number(completed.eventId));
  if (!taskDone) throw new Error(`no workflow task completed after ${activityType}`);
  return Number(taskDone.eventId);
}

/** The WorkflowTaskCompleted event of the task that first scheduled `activityType`: resetting there runs that task, and the activity, again. */
export function resetPointAtFirstSchedule(events: HistoryEvent[], activityType: string): number {
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
  if (!scheduled) throw new Error(`no ${activityType} activity in the history`);
  return Number(scheduled.activityTaskScheduledEventAttributes!.workflowTaskCompletedEventId);
}

/** Resets a workflow to `eventId` through the real server API; returns the new run id. */
export async function resetWorkflow(client: Client, workflowId: string, runId: string, eventId: number): Promise<string> {
  const response: temporal.api.workflowservice.v1.IResetWorkflowExecutionResponse = await client.workflowService.resetWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId, runId },
    workflowTaskFinishEventId: Long.fromNumber(eventId),
    reason: 'idempotency test',
    requestId: randomUUID(),
  });
  return response.runId!;
}

/** Every payload's data in a history: inputs, results, signal/update/query args, failure details. */
export function payloadSizes(history: temporal.api.history.v1.IHistory): number[] {
  const sizes: number[] = [];
  const visit = (node: unknown): void => {
    if (!node || typeof node !== 'object') return;
    if (node instanceof Uint8Array) return;
    const maybePayload = node as { metadata?: unknown; data?: unknown };
    if (maybePayload.data instanceof Uint8Array && maybePayload.metadata && typeof maybePayload.metadata === 'object') {
      sizes.push(maybePayload.data.length);
      return;
    }
    for (const value of Object.values(node)) visit(value);
  };
  visit(history.events);
  return sizes;
}

/**
 * The highest attempt any activity reached: regular activities from their started events, local
 * activities from the JSON metadata core writes into each `core_local_activity` marker (the
 * attempt that produced the recorded result); 1 when nothing was retried.
 */
export function maxActivityAttempt(history: temporal.api.history.v1.IHistory): number {
  return Math.max(1, ...(history.events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? localActivityAttempt(e)));
}

function localActivityAttempt(event: HistoryEvent): number {
  return localActivityMarker(event)?.attempt ?? 0;
}

/** The activity type of a local activity's marker, or undefined for any other event. */
export function localActivityType(event: HistoryEvent): string | undefined {
  return localActivityMarker(event)?.activity_type;
}

/** The JSON metadata core writes into each `core_local_activity` marker. */
function localActivityMarker(event: HistoryEvent): { attempt?: number; activity_type?: string } | undefined {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = marker.details?.['data']?.payloads?.[0]?.data;
  return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { attempt?: number; activity_type?: string }) : undefined;
}

/** An event's time in epoch milliseconds. */
export function eventTimeMs(event: HistoryEvent): number {
  const time = event.eventTime;
  return time ? Number(time.seconds ?? 0) * 1000 + Math.floor((time.nanos ?? 0) / 1e6) : 0;
}
