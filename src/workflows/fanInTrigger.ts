import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  log,
  ParentClosePolicy,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { FanInRequestResult } from '../activities';
import type { FanInSummary } from './fanInProgress';
import { awaitFanIn, startFanIn } from './fanInRequests';
import { FanInTriggerState, type CarriedTriggerState, type ChangesCaptured, type FanInTriggerStatus, type PendingChanges } from './fanInTriggerState';

export type { ChangesCaptured, FanInTriggerStatus } from './fanInTriggerState';

/**
 * Events after which a run continues as new even if the server has not suggested it (at 4,096):
 * every change is a signal and a workflow task, so busy sources would otherwise grow one history
 * towards Temporal's 51,200-event termination; this keeps it, and each replay, small.
 */
export const MAX_TRIGGER_HISTORY_EVENTS = 500;

/** Sent by a source (through signal-with-start) each time it captured new changes. */
export const changesCapturedSignal = defineSignal<[ChangesCaptured]>('changesCaptured');
export const fanInTriggerStatusQuery = defineQuery<FanInTriggerStatus>('triggerStatus');

export interface FanInTriggerInput {
  carried?: CarriedTriggerState;
}

/**
 * Event-driven fan-in, like a Databricks table-update trigger but in seconds: waits for a change,
 * lets a burst settle (no new change for `waitAfterLastChangeSeconds`) but never holds a change
 * longer than `maxWaitSeconds`, keeps `minSecondsBetweenRuns` between run starts, and then runs one
 * fan-in for everything that arrived; changes that land during a run cause exactly one more. It
 * starts fan-ins through the one fan-in workflow id: if a schedule's or an operator's fan-in is
 * running, it waits for that one and then runs its own. A failed fan-in is retried with backoff
 * until one succeeds. While nothing is pending it holds no timer. It continues as new when the
 * server suggests it or at MAX_TRIGGER_HISTORY_EVENTS, carrying what is pending or in flight.
 */
export async function fanInTrigger(input: FanInTriggerInput = {}): Promise<void> {
  const state = new FanInTriggerState(input.carried);
  setHandler(changesCapturedSignal, (change) => state.changeCaptured(change, Date.now()), {
    description: 'A source captured new changes. Input: {"source": "orders", "offsetVersion": 12, "waitAfterLastChangeSeconds": 2, "maxWaitSeconds": 60, "minSecondsBetweenRuns": 5}',
  });
  setHandler(fanInTriggerStatusQuery, () => state.status());
  const continueAsNewNow = async () => {
    await condition(allHandlersFinished);
    return continueAsNew<typeof fanInTrigger>({ carried: state.carry() });
  };

  for (;;) {
    const running = state.running;
    if (running) {
      let result: FanInRequestResult | null;
      try {
        result = await awaitFanIn(running, mustContinueAsNew);
      } catch (error) {
        fanInFailed(state, running.covered, error);
        continue;
      }
      if (result === null) return continueAsNewNow();
      state.fanInEnded(result, running.covered);
    }
    await condition(() => state.hasPending() || mustContinueAsNew());
    if (mustContinueAsNew() || !(await waitUntil(() => state.fanInDueAt()))) return continueAsNewNow();

    const covered = state.startRun(Date.now(), fanInWorkflowId());
    if (!patched('trigger-requests-the-one-fan-in-v1')) {
      await legacyChildFanIn(state, covered);
      continue;
    }
    try {
      state.fanInStarted(await startFanIn());
    } catch (error) {
      fanInFailed(state, covered, error);
    }
  }
}

/** The one fan-in workflow id, next to the trigger's (`<prefix>-fan-in-trigger`). */
function fanInWorkflowId(): string {
  return workflowInfo().workflowId.replace(/-trigger$/, '');
}

/** True once this run's history is long enough to continue as new. */
function mustContinueAsNew(): boolean {
  const info = workflowInfo();
  return info.continueAsNewSuggested || info.historyLength >= MAX_TRIGGER_HISTORY_EVENTS;
}

/**
 * Waits until `dueAt()` has passed; false if the run must continue as new first. Changes move
 * `dueAt()` but do not restart the timer: it is checked again when the timer fires, so a busy
 * trigger adds a timer per quiet period, not per change.
 */
async function waitUntil(dueAt: () => number): Promise<boolean> {
  for (;;) {
    const remaining = dueAt() - Date.now();
    if (remaining <= 0) return true;
    if (await condition(mustContinueAsNew, remaining)) return false;
  }
}

function fanInFailed(state: FanInTriggerState, covered: PendingChanges, error: unknown): void {
  const consecutiveFailures = state.fanInFailed(covered, Date.now());
  log.warn('triggered fan-in failed; retrying after a backoff', { error: (error as Error).message, consecutiveFailures });
}

/**
 * How triggers started before the one fan-in workflow id ran a fan-in: as a child with an id of
 * its own. Kept only so their histories replay; such a fan-in now refuses to run, the failure is
 * retried, and the retry takes the current path.
 */
async function legacyChildFanIn(state: FanInTriggerState, covered: PendingChanges): Promise<void> {
  const { runsStarted, startedAt } = state.legacyRunKey();
  const workflowId = `${fanInWorkflowId()}-${runsStarted}-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}`;
  try {
    const summary: FanInSummary = await executeChild('fanIn', { workflowId, args: [{}], parentClosePolicy: ParentClosePolicy.ABANDON, staticSummary: 'Fan-in triggered by captured changes' });
    state.fanInEnded({ workflowId, joined: false, summary }, covered);
  } catch (error) {
    fanInFailed(state, covered, error);
  }
}
