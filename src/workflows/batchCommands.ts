import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BatchState, BatchStatus } from '../lakehouse/port';

const batches = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

export type BatchCommand =
  | { action: 'list'; statuses?: BatchStatus[]; runKey?: string; limit?: number }
  | { action: 'show'; runKey: string; batchNumber: number }
  | { action: 'retry'; runKey: string; batchNumber: number }
  | { action: 'abandon'; runKey: string; batchNumber: number; reason: string };

export interface BatchCommandResult {
  action: BatchCommand['action'];
  /** list: the rows; retry/abandon: the batch after the change (unchanged when refused). */
  batches: BatchState[];
  /** retry/abandon: why nothing changed, with the next step (no such batch, its state, a fan-in holding it, its run still running). */
  refused: string | null;
}

const LIST_LIMIT = { default: 100, max: 1000 };

/**
 * An operator's command on dispatch batches (`cdf batches list|retry|abandon`), as a short
 * workflow: the lakehouse is reached only through the worker, and the command stays in the
 * workflow list as an audit of who asked for what. Retry queues a parked, failed or launched batch
 * for the next fan-in with `fanIn.maxAttemptsPerBatch` more attempts; abandon gives it up for good,
 * keeping its ids and the reason. A failed or launched batch only while no fan-in runs, and a
 * launched one only once its run ended or was deleted (see the activities' changeBatch).
 */
export async function batchCommand(command: BatchCommand): Promise<BatchCommandResult> {
  const request = validate(command);
  if (request.action === 'list') {
    const rows = await batches.listBatches({ statuses: request.statuses, runKey: request.runKey, limit: request.limit ?? LIST_LIMIT.default });
    return { action: 'list', batches: rows, refused: null };
  }
  const key = { runKey: request.runKey, batchNumber: request.batchNumber };
  if (request.action === 'show') {
    const state = await batches.readBatchStateOf(key);
    return { action: 'show', batches: state ? [state] : [], refused: state ? null : `there is no batch ${request.batchNumber} in fan-in run ${request.runKey}: see \`cdf batches list\`` };
  }
  const { before, after, refused } = request.action === 'retry' ? await batches.requeueBatch(key) : await batches.abandonBatch({ ...key, reason: request.reason });
  return { action: request.action, batches: after ? [after] : before ? [before] : [], refused };
}

/** Input from the UI's start dialog or the CLI: refused with what is wrong and what to send. */
function validate(command: unknown): BatchCommand {
  const bad = (message: string) => ApplicationFailure.nonRetryable(message, 'InvalidBatchCommand');
  if (typeof command !== 'object' || command === null) throw bad('expected one object such as {"action": "list"}');
  const c = command as Record<string, unknown>;
  if (c.action === 'list') {
    if (c.limit !== undefined && (!Number.isSafeInteger(c.limit) || (c.limit as number) < 1 || (c.limit as number) > LIST_LIMIT.max)) {
      throw bad(`limit must be a whole number from 1 to ${LIST_LIMIT.max}, got ${JSON.stringify(c.limit)}`);
    }
    return c as BatchCommand;
  }
  if (c.action !== 'show' && c.action !== 'retry' && c.action !== 'abandon') throw bad(`action must be "list", "show", "retry" or "abandon", got ${JSON.stringify(c.action)}`);
  if (typeof c.runKey !== 'string' || c.runKey.length === 0) throw bad('runKey must be the fan-in run key, e.g. "fi-20261125123456-abcdef0123"');
  if (!Number.isSafeInteger(c.batchNumber) || (c.batchNumber as number) < 1) throw bad(`batchNumber must be a whole number from 1, got ${JSON.stringify(c.batchNumber)}`);
  if (c.action === 'abandon') {
    if (typeof c.reason !== 'string' || c.reason.trim().length === 0) throw bad('reason is required to abandon a batch: say why (it is kept with the batch)');
    return { action: 'abandon', runKey: c.runKey, batchNumber: c.batchNumber as number, reason: c.reason.trim().slice(0, 500) };
  }
  return c as BatchCommand;
}
