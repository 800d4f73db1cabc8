import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';

export const HISTORIES_DIR = join(__dirname, 'histories');

/**
 * Saves one history per workflow type as a replay fixture. Run
 * `RECORD_HISTORIES=1 npx jest test/e2e/pipeline.test.ts` after a deliberate, compatible change
 * to the workflows, and keep the old files too: they are what running workflows still replay.
 */
export async function recordHistories(client: Client, workflowIdsByType: Record<string, string>, label?: string): Promise<void> {
  for (const [type, workflowId] of Object.entries(workflowIdsByType)) {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    // Date and time in the name: a second recording on one day must not replace the first.
    const stamp = new Date().toISOString().slice(0, 16).replace(':', '');
    writeFileSync(join(HISTORIES_DIR, `${type}-${label ? `${label}-` : ''}${stamp}.json`), historyToJSON(history));
  }
}
