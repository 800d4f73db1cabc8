import { z } from 'zod';
import { BATCH_STATUSES, type BatchState, type BatchStatus } from './port';

// Both engines answer with the same columns; BIGINT arrives as bigint, number or digits.
const integer = z.union([z.bigint(), z.number(), z.string().regex(/^-?\d+$/)]).transform((v) => Number(v));
const text = z.string().nullish().transform((v) => v ?? null);

const batchStateRow = z.object({
  run_key: z.string(),
  batch_number: integer,
  status: z.enum(BATCH_STATUSES as [BatchStatus, ...BatchStatus[]]),
  attempts: integer,
  attempt_limit: integer,
  ids: integer,
  run_id: text,
  run_page_url: text,
  state_message: text,
  reason: text,
  updated_at: z.string(),
});

/** A row of the batch-state table (either engine) as the port's BatchState; throws on a malformed row. */
export function parseBatchState(row: unknown): BatchState {
  const r = batchStateRow.parse(row);
  return {
    runKey: r.run_key,
    batchNumber: r.batch_number,
    status: r.status,
    attempts: r.attempts,
    attemptLimit: r.attempt_limit,
    ids: r.ids,
    runId: r.run_id,
    runPageUrl: r.run_page_url,
    stateMessage: r.state_message,
    reason: r.reason,
    updatedAt: r.updated_at,
  };
}
