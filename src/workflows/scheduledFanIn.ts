import type { FanInRequestResult } from '../activities';
import { requestFanIn } from './fanInRequests';

/** A schedule's action sends one object; there are no options yet. */
export type ScheduledFanInInput = Record<string, never>;

/**
 * A schedule's fan-in. A Schedule appends the start time to every workflow id it starts, so it
 * cannot start the fan-in's one fixed id itself: this short workflow starts (or joins) it and
 * waits for its summary, which then shows in the schedule's recent actions. A failed fan-in fails
 * this run too, visibly. The schedule's overlap policy applies to this workflow, not to the
 * fan-in: `cancel_other` or `terminate_other` stop the waiting, never a fan-in in flight.
 */
export async function scheduledFanIn(_input: ScheduledFanInInput = {}): Promise<FanInRequestResult> {
  return requestFanIn();
}
