import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { payloadSizes } from '../test/support/history';

const EventType = temporal.api.enums.v1.EventType;

export interface HistoryStats {
  workflows: number;
  events: number;
  maxEventsInOneRun: number;
  maxPayloadBytes: number;
  workflowTaskTimeouts: number;
  activityTimeouts: number;
  activityFailures: number;
  files: string[];
}

/**
 * Saves every run (continued-as-new runs included) of every workflow of a task queue as text, with
 * each payload's bytes decoded, so the secret scan reads what Temporal stored, not its base64.
 */
export async function saveHistories(client: Client, taskQueue: string, dir: string): Promise<HistoryStats> {
  mkdirSync(dir, { recursive: true });
  const stats: HistoryStats = { workflows: 0, events: 0, maxEventsInOneRun: 0, maxPayloadBytes: 0, workflowTaskTimeouts: 0, activityTimeouts: 0, activityFailures: 0, files: [] };
  for await (const execution of client.workflow.list({ query: `TaskQueue = "${taskQueue}"` })) {
    const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    const events = history.events ?? [];
    stats.workflows += 1;
    stats.events += events.length;
    stats.maxEventsInOneRun = Math.max(stats.maxEventsInOneRun, events.length);
    stats.maxPayloadBytes = Math.max(stats.maxPayloadBytes, ...payloadSizes(history), 0);
    for (const event of events) {
      if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT) stats.workflowTaskTimeouts += 1;
      if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT) stats.activityTimeouts += 1;
      if (event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) stats.activityFailures += 1;
    }
    const file = join(dir, `${execution.workflowId}.${execution.runId}.json`);
    writeFileSync(file, JSON.stringify(history, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value)));
    stats.files.push(file);
  }
  return stats;
}
