import { ApplicationFailure, condition, proxyActivities } from '@temporalio/workflow';
import type { Activities, FanInRequestResult, FanInStarted } from '../activities';

const { startOrJoinFanIn, fanInState } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/** Checks of a running fan-in: soon at first, then every minute, so an hour-long fan-in costs about 70 checks. */
const CHECK_INTERVAL_MS = { first: 2_000, max: 60_000 };

/**
 * Starts or joins the one fan-in and waits, with timers, until it ends; returns its summary or
 * fails with its failure (type FanInFailed).
 */
export async function requestFanIn(): Promise<FanInRequestResult> {
  return (await awaitFanIn(await startOrJoinFanIn()))!;
}

/** Starts the one fan-in, or joins the one running. */
export async function startFanIn(): Promise<FanInStarted> {
  return startOrJoinFanIn();
}

/**
 * Waits, with timers, until a started or joined fan-in ends; returns its summary or fails with
 * its failure (type FanInFailed). Returns null instead, between two checks, once `stopWaiting()`
 * holds (a caller that must continue as new waits again in its next run).
 */
export async function awaitFanIn(started: FanInStarted, stopWaiting: () => boolean = () => false): Promise<FanInRequestResult | null> {
  for (let wait = CHECK_INTERVAL_MS.first; ; wait = Math.min(CHECK_INTERVAL_MS.max, wait * 2)) {
    const state = await fanInState({ workflowId: started.workflowId });
    if (!state.running) {
      if (state.summary) return { ...started, summary: state.summary };
      throw ApplicationFailure.nonRetryable(`fan-in ${started.workflowId} failed: ${state.failure}`, 'FanInFailed');
    }
    if (await condition(stopWaiting, wait)) return null;
  }
}
