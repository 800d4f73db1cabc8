import type { FanInRequestResult, FanInStarted } from '../activities';

/** Backoff after a failed fan-in: 5 s doubling to at most 5 minutes, then retried with the same pending sources. */
const FAILED_RUN_BACKOFF_MS = { initial: 5_000, max: 300_000 };

/** The config's default of fanIn.onChange.maxWaitSeconds (defaultMaxWaitSeconds), for signals sent before the setting existed. */
const DEFAULT_MAX_WAIT_SECONDS = 60;

export interface ChangesCaptured {
  source: string;
  offsetVersion: number;
  waitAfterLastChangeSeconds: number;
  /** Absent in signals from workers older than the setting. */
  maxWaitSeconds?: number;
  minSecondsBetweenRuns: number;
}

export interface FanInTriggerStatus {
  pendingSources: string[];
  lastChangeAt: string | null;
  /** When the oldest change not yet covered by a fan-in arrived; a fan-in starts at most maxWaitSeconds later. */
  firstPendingChangeAt: string | null;
  runsStarted: number;
  /** The fan-in the trigger started or joined and waits for; null when none. */
  fanInInFlight: string | null;
  lastRun: { workflowId: string; changedIds: number; batches: number; failed: boolean; joined: boolean } | null;
  /** Failed fan-ins in a row; the next try waits 5 s · 2^(n-1), at most 5 minutes. */
  consecutiveFailures: number;
}

interface TriggerSettings {
  waitAfterLastChangeSeconds: number;
  maxWaitSeconds: number;
  minSecondsBetweenRuns: number;
}

/** Changes no fan-in covers yet: the latest captured offset of each source, and when the first and the last arrived. */
export interface PendingChanges {
  offsets: Record<string, number>;
  firstAt: number;
  lastAt: number;
}

/** A fan-in the trigger started or joined and has not yet seen end, with the changes it was started for. */
export interface RunningFanIn extends FanInStarted {
  covered: PendingChanges;
}

/** What a run hands to the next one when it continues as new: nothing pending or in flight is dropped. */
export interface CarriedTriggerState {
  runsStarted: number;
  lastRunStartedAt: number | null;
  lastChangeAt?: number | null;
  pending?: PendingChanges | null;
  running?: RunningFanIn | null;
  settings?: TriggerSettings;
  lastRun?: FanInTriggerStatus['lastRun'];
  consecutiveFailures?: number;
  retryAt?: number | null;
}

/** The trigger's state; the workflow only waits and starts fan-ins. Times are workflow time in ms. */
export class FanInTriggerState {
  private pending: PendingChanges | null;
  running: RunningFanIn | null;
  private settings: TriggerSettings;
  private runsStarted: number;
  private lastRunStartedAt: number | null;
  private lastChangeAt: number | null;
  private lastRun: FanInTriggerStatus['lastRun'];
  private consecutiveFailures: number;
  private retryAt: number | null;

  constructor(carried?: CarriedTriggerState) {
    this.pending = carried?.pending ?? null;
    this.running = carried?.running ?? null;
    this.settings = carried?.settings ?? { waitAfterLastChangeSeconds: 2, maxWaitSeconds: DEFAULT_MAX_WAIT_SECONDS, minSecondsBetweenRuns: 5 };
    this.runsStarted = carried?.runsStarted ?? 0;
    this.lastRunStartedAt = carried?.lastRunStartedAt ?? null;
    this.lastChangeAt = carried?.lastChangeAt ?? null;
    this.lastRun = carried?.lastRun ?? null;
    this.consecutiveFailures = carried?.consecutiveFailures ?? 0;
    this.retryAt = carried?.retryAt ?? null;
  }

  changeCaptured(change: ChangesCaptured, now: number): void {
    this.addPending({ offsets: { [change.source]: change.offsetVersion }, firstAt: now, lastAt: now });
    this.lastChangeAt = now;
    this.settings = {
      waitAfterLastChangeSeconds: change.waitAfterLastChangeSeconds,
      maxWaitSeconds: change.maxWaitSeconds ?? Math.max(DEFAULT_MAX_WAIT_SECONDS, change.waitAfterLastChangeSeconds),
      minSecondsBetweenRuns: change.minSecondsBetweenRuns,
    };
  }

  hasPending(): boolean {
    return this.pending !== null;
  }

  /**
   * When the next fan-in starts: once the burst has settled (no change for waitAfterLastChange)
   * or the first pending change has waited maxWait, whichever comes first; but not sooner than
   * minSecondsBetweenRuns after the last start, nor before a failed run's backoff has passed.
   */
  fanInDueAt(): number {
    const { waitAfterLastChangeSeconds, maxWaitSeconds, minSecondsBetweenRuns } = this.settings;
    const pending = this.pending!;
    const settled = Math.min(pending.lastAt + waitAfterLastChangeSeconds * 1000, pending.firstAt + maxWaitSeconds * 1000);
    const spaced = this.lastRunStartedAt === null ? 0 : this.lastRunStartedAt + minSecondsBetweenRuns * 1000;
    return Math.max(settled, spaced, this.retryAt ?? 0);
  }

  /** A fan-in of the one fan-in workflow id starts now for everything pending; returns what it covers. */
  startRun(now: number, fanInWorkflowId: string): PendingChanges {
    const covered = this.pending!;
    this.pending = null;
    this.runsStarted += 1;
    this.lastRunStartedAt = now;
    // In flight from now on, so the status never shows a moment with nothing pending and nothing running.
    this.running = { workflowId: fanInWorkflowId, joined: false, covered };
    return covered;
  }

  /** For fan-in ids of triggers started before the one fan-in workflow id. */
  legacyRunKey(): { runsStarted: number; startedAt: number } {
    return { runsStarted: this.runsStarted, startedAt: this.lastRunStartedAt! };
  }

  fanInStarted(started: FanInStarted): void {
    this.running = { ...started, covered: this.running!.covered };
  }

  fanInEnded(result: FanInRequestResult, covered: PendingChanges): void {
    this.running = null;
    this.lastRun = { workflowId: result.workflowId, changedIds: result.summary.changedIds, batches: result.summary.batches, failed: false, joined: result.joined };
    this.consecutiveFailures = 0;
    this.retryAt = null;
    // A fan-in that was already running opened its window before these changes: run one more.
    if (result.joined) this.addPending(covered);
  }

  /**
   * Nothing is lost (the run stays open and the next fan-in resumes it), but the changes must not
   * wait for the next one: they are pending again, retried after a backoff. Returns the attempt count.
   */
  fanInFailed(covered: PendingChanges, now: number): number {
    this.running = null;
    this.consecutiveFailures += 1;
    this.lastRun = { workflowId: '', changedIds: 0, batches: 0, failed: true, joined: false };
    this.addPending(covered);
    this.retryAt = now + Math.min(FAILED_RUN_BACKOFF_MS.max, FAILED_RUN_BACKOFF_MS.initial * 2 ** (this.consecutiveFailures - 1));
    return this.consecutiveFailures;
  }

  status(): FanInTriggerStatus {
    const iso = (at: number | null | undefined) => (at === null || at === undefined ? null : new Date(at).toISOString());
    return {
      pendingSources: Object.keys(this.pending?.offsets ?? {}),
      lastChangeAt: iso(this.lastChangeAt),
      firstPendingChangeAt: iso(this.pending?.firstAt),
      runsStarted: this.runsStarted,
      fanInInFlight: this.running?.workflowId ?? null,
      lastRun: this.lastRun,
      consecutiveFailures: this.consecutiveFailures,
    };
  }

  carry(): CarriedTriggerState {
    return {
      runsStarted: this.runsStarted,
      lastRunStartedAt: this.lastRunStartedAt,
      lastChangeAt: this.lastChangeAt,
      pending: this.pending,
      running: this.running,
      settings: this.settings,
      lastRun: this.lastRun,
      consecutiveFailures: this.consecutiveFailures,
      retryAt: this.retryAt,
    };
  }

  /** Merges changes into the pending ones: the later offset of each source, the earlier first arrival. */
  private addPending(changes: PendingChanges): void {
    if (this.pending === null) {
      this.pending = { offsets: { ...changes.offsets }, firstAt: changes.firstAt, lastAt: changes.lastAt };
      return;
    }
    for (const [source, offset] of Object.entries(changes.offsets)) this.pending.offsets[source] = Math.max(this.pending.offsets[source] ?? offset, offset);
    this.pending.firstAt = Math.min(this.pending.firstAt, changes.firstAt);
    this.pending.lastAt = Math.max(this.pending.lastAt, changes.lastAt);
  }
}
