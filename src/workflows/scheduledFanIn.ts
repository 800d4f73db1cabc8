import { proxyActivities } from '@temporalio/workflow';
import type { Activities, FanInRequestResult } from '../activities';

const { requestFanIn } = proxyActivities<Activities>({
  startToCloseTimeout: '24 hours',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** A schedule's action sends one object; there are no options yet. */
export type ScheduledFanInInput = Record<string, never>;

/**
 * A schedule's fan-in. A Schedule appends the start time to every workflow id it starts, so it
 * cannot start the fan-in's one fixed id itself: this short workflow starts (or joins) it and
 * waits for its summary, which then shows in the schedule's recent actions. A failed fan-in fails
 * this run too, visibly.
 */
export async function scheduledFanIn(_input: ScheduledFanInInput = {}): Promise<FanInRequestResult> {
  return requestFanIn();
}
