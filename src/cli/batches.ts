import type { Client } from '@temporalio/client';
import type { Config } from '../config/schema';
import type { BatchState } from '../lakehouse/port';
import type { BatchCommand, BatchCommandResult } from '../workflows/batchCommands';

/** Runs one batch command as the short `batchCommand` workflow and returns its result. */
export async function runBatchCommand(client: Client, config: Config, command: BatchCommand): Promise<BatchCommandResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return client.workflow.execute('batchCommand', {
    workflowId: `${config.temporal.workflowIdPrefix}-batches-${command.action}-${stamp}`,
    taskQueue: config.temporal.taskQueue,
    args: [command],
    staticSummary: command.action === 'list' ? 'List dispatch batches' : `${command.action} batch ${command.batchNumber} of ${command.runKey}`,
  }) as Promise<BatchCommandResult>;
}

/** One line per batch: run key, number, status, attempts, ids and the last run's message or the abandon reason. */
export function formatBatchTable(batches: BatchState[]): string {
  const table = [['RUN', 'BATCH', 'STATUS', 'ATTEMPTS', 'IDS', 'UPDATED', 'NOTE']];
  for (const b of batches) {
    table.push([b.runKey, String(b.batchNumber), b.status, `${b.attempts}/${b.attemptLimit}`, String(b.ids), b.updatedAt, b.reason ?? b.stateMessage ?? '']);
  }
  const widths = table[0]!.map((_, column) => Math.max(...table.map((line) => line[column]!.length)));
  return table.map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n');
}
