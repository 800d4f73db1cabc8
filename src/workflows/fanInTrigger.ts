import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  executeChild,
  log,
  ParentClosePolicy,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { FanInSummary } from './fanIn';

export interface ChangesCaptured {
  source: string;
  offsetVersion: number;
  waitAfterLastChangeSeconds: number;
  minSecondsBetweenRuns: number;
}

export interface FanInTriggerStatus {
  pendingSources: string[];
  lastChangeAt: string | null;
  runsStarted: number;
  lastRun: { workflowId: string; changedIds: number; batches: number; failed: boolean } | null;
}

/** Sent by a source (through signal-with-start) each time it captured new changes. */
export const changesCapturedSignal = defineSignal<[ChangesCaptured]>('changesCaptured');
export const fanInTriggerStatusQuery = defineQuery<FanInTriggerStatus>('triggerStatus');

export interface FanInTriggerInput {
  carried?: { runsStarted: number; lastRunStartedAt: number | null };
}

/**
 * Event-driven fan-in, like a Databricks table-update trigger but in seconds: waits for a change,
 * lets a burst settle (no new change for `waitAfterLastChangeSeconds`), keeps
 * `minSecondsBetweenRuns` between run starts, and then runs one fan-in for everything that
 * arrived; changes that land during a run cause exactly one more. Schedules can run fan-ins
 * beside it: fan-ins resume one another's open run, so overlaps dispatch nothing twice.
 */
export async function fanInTrigger(input: FanInTriggerInput = {}): Promise<void> {
  const pending = new Set<string>();
  let lastChangeAt: number | null = null;
  let settings = { waitAfterLastChangeSeconds: 2, minSecondsBetweenRuns: 5 };
  let runsStarted = input.carried?.runsStarted ?? 0;
  let lastRunStartedAt = input.carried?.lastRunStartedAt ?? null;
  let lastRun: FanInTriggerStatus['lastRun'] = null;

  setHandler(
    changesCapturedSignal,
    (change) => {
      pending.add(change.source);
      lastChangeAt = Date.now();
      settings = { waitAfterLastChangeSeconds: change.waitAfterLastChangeSeconds, minSecondsBetweenRuns: change.minSecondsBetweenRuns };
    },
    { description: 'A source captured new changes. Input: {"source": "orders", "offsetVersion": 12, "waitAfterLastChangeSeconds": 2, "minSecondsBetweenRuns": 5}' },
  );
  setHandler(fanInTriggerStatusQuery, () => ({
    pendingSources: [...pending],
    lastChangeAt: lastChangeAt === null ? null : new Date(lastChangeAt).toISOString(),
    runsStarted,
    lastRun,
  }));

  for (;;) {
    await condition(() => pending.size > 0);
    await settle(() => lastChangeAt!, () => settings.waitAfterLastChangeSeconds * 1000);
    if (lastRunStartedAt !== null) {
      const wait = lastRunStartedAt + settings.minSecondsBetweenRuns * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    pending.clear();
    lastRunStartedAt = Date.now();
    runsStarted += 1;
    const workflowId = `${workflowInfo().workflowId.replace(/-trigger$/, '')}-${runsStarted}-${new Date(lastRunStartedAt).toISOString().replace(/[:.]/g, '-')}`;
    try {
      const summary: FanInSummary = await executeChild('fanIn', {
        workflowId,
        args: [{}],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: 'Fan-in triggered by captured changes',
      });
      lastRun = { workflowId, changedIds: summary.changedIds, batches: summary.batches, failed: false };
    } catch (error) {
      // The run stays open and the next trigger resumes it; the trigger itself keeps going.
      log.warn('triggered fan-in failed', { workflowId, error: (error as Error).message });
      lastRun = { workflowId, changedIds: 0, batches: 0, failed: true };
    }
    if (workflowInfo().continueAsNewSuggested && pending.size === 0) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof fanInTrigger>({ carried: { runsStarted, lastRunStartedAt } });
    }
  }
}

/** Debounce: returns once `quietMs()` has passed since `lastAt()` without a newer change. */
async function settle(lastAt: () => number, quietMs: () => number): Promise<void> {
  for (;;) {
    const seen = lastAt();
    const remaining = seen + quietMs() - Date.now();
    if (remaining <= 0) return;
    const changed = await condition(() => lastAt() !== seen, remaining);
    if (!changed) return;
  }
}
