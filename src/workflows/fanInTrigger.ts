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
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { FanInRequestResult } from '../activities';
import type { FanInSummary } from './fanInProgress';
import { requestFanIn } from './fanInRequests';

/** Backoff after a failed fan-in: 5 s doubling to at most 5 minutes, then retried with the same pending sources. */
const FAILED_RUN_BACKOFF_MS = { initial: 5_000, max: 300_000 };

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
  lastRun: { workflowId: string; changedIds: number; batches: number; failed: boolean; joined: boolean } | null;
  /** Failed fan-ins in a row; the next try waits 5 s · 2^(n-1), at most 5 minutes. */
  consecutiveFailures: number;
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
 * arrived; changes that land during a run cause exactly one more. It starts fan-ins through the
 * one fan-in workflow id: if a schedule's or an operator's fan-in is running, it waits for that
 * one and then runs its own. A failed fan-in is retried with backoff until one succeeds.
 */
export async function fanInTrigger(input: FanInTriggerInput = {}): Promise<void> {
  const pending = new Set<string>();
  let lastChangeAt: number | null = null;
  let settings = { waitAfterLastChangeSeconds: 2, minSecondsBetweenRuns: 5 };
  let runsStarted = input.carried?.runsStarted ?? 0;
  let lastRunStartedAt = input.carried?.lastRunStartedAt ?? null;
  let lastRun: FanInTriggerStatus['lastRun'] = null;
  let consecutiveFailures = 0;

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
    consecutiveFailures,
  }));

  for (;;) {
    await condition(() => pending.size > 0);
    await settle(() => lastChangeAt!, () => settings.waitAfterLastChangeSeconds * 1000);
    if (lastRunStartedAt !== null) {
      const wait = lastRunStartedAt + settings.minSecondsBetweenRuns * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    const covered = [...pending];
    pending.clear();
    lastRunStartedAt = Date.now();
    runsStarted += 1;
    try {
      const result = patched('trigger-requests-the-one-fan-in-v1') ? await requestFanIn() : await legacyChildFanIn(runsStarted, lastRunStartedAt);
      lastRun = { workflowId: result.workflowId, changedIds: result.summary.changedIds, batches: result.summary.batches, failed: false, joined: result.joined };
      consecutiveFailures = 0;
      // A fan-in that was already running opened its window before these changes: run one more.
      if (result.joined) covered.forEach((source) => pending.add(source));
    } catch (error) {
      // Nothing is lost (the run stays open and the next fan-in resumes it), but the changes must not wait for the next one.
      consecutiveFailures += 1;
      log.warn('triggered fan-in failed; retrying after a backoff', { error: (error as Error).message, consecutiveFailures });
      lastRun = { workflowId: '', changedIds: 0, batches: 0, failed: true, joined: false };
      covered.forEach((source) => pending.add(source));
      await sleep(Math.min(FAILED_RUN_BACKOFF_MS.max, FAILED_RUN_BACKOFF_MS.initial * 2 ** (consecutiveFailures - 1)));
    }
    if (workflowInfo().continueAsNewSuggested && pending.size === 0) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof fanInTrigger>({ carried: { runsStarted, lastRunStartedAt } });
    }
  }
}

/**
 * How triggers started before the one fan-in workflow id ran a fan-in: as a child with an id of
 * its own. Kept only so their histories replay; such a fan-in now refuses to run, the failure is
 * retried, and the retry takes the current path.
 */
async function legacyChildFanIn(runsStarted: number, startedAt: number): Promise<FanInRequestResult> {
  const workflowId = `${workflowInfo().workflowId.replace(/-trigger$/, '')}-${runsStarted}-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}`;
  const summary: FanInSummary = await executeChild('fanIn', { workflowId, args: [{}], parentClosePolicy: ParentClosePolicy.ABANDON, staticSummary: 'Fan-in triggered by captured changes' });
  return { workflowId, joined: false, summary };
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
