import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ChangeCounts } from '../lakehouse/port';

/*
 * Signals, queries and updates, declared once and shared by the workflows, the CLI and tests.
 * Every handler takes one JSON object, because the Web UI's dialogs and
 * `temporal workflow signal --input '{…}'` send exactly one payload.
 */

export interface CycleReport {
  /** Cycle number within the workflow's whole life (carried across continue-as-new). */
  cycle: number;
  startedAt: string;
  durationMs: number;
  latestVersion: number | null;
  offsetVersion: number | null;
  ranges: number;
  changes: ChangeCounts;
  registryRowsInserted: number;
  blocked: BlockedState | null;
}

export interface BlockedState {
  /** The error class, e.g. DELTA_MISSING_CHANGE_DATA. */
  type: string;
  message: string;
  remedy: string;
  since: string;
}

/** A capture step failing and being retried: shown in `status` (and CdfState "retrying") after its first burst. */
export interface RetryingState {
  /** The error class or type, e.g. DELTA_CONCURRENT_APPEND or UNCLASSIFIED. */
  type: string;
  message: string;
  /** Attempts so far (counted in bursts of the activity's own retries). */
  attempts: number;
  /** False: nothing recognised the error, and the source blocks after capture.blockUnknownErrorsAfterAttempts. */
  recognised: boolean;
  since: string;
}

export interface ReplayRequest {
  /** First Delta version to capture again: 0 ≤ fromVersion ≤ latest version. */
  fromVersion: number;
  /**
   * false (default): every change the replay captures reaches a fan-in once; ids already
   * dispatched are not dispatched again. true: the dispatch watermark goes back too, and every id
   * changed from `fromVersion` on is dispatched again (e.g. after downstream lost its output).
   */
  redispatch?: boolean;
  reason?: string;
}

/**
 * Replay requests that arrive before the rewind runs, merged into one: capture again from the
 * smallest `fromVersion` asked for, and dispatch again from the smallest `fromVersion` of those
 * that asked for `redispatch` (null: none did). So no request is dropped, and none widens another's
 * redispatch.
 */
export interface MergedReplay {
  fromVersion: number;
  redispatchFromVersion: number | null;
  reason?: string;
  /** Requests merged into this one (1: it was alone). */
  requestsMerged: number;
}

/** The replay that was applied for a request (merged with others that arrived before it ran, if any). */
export interface ReplayAccepted {
  /** The version the offset was rewound to capture again from (the merged request's). */
  fromVersion: number;
  /** The version this request asked for. */
  requestedFromVersion: number;
  /** Whether the applied replay re-dispatches (this request's or a merged one's), and from which version. */
  redispatch: boolean;
  redispatchFromVersion: number | null;
  /** false with `redispatch`: nothing from that version on had been dispatched or opened for dispatch yet, so there was nothing to dispatch again. */
  redispatchMarked: boolean;
  /** Requests merged into the applied one, this one included (1: it was alone). */
  requestsMerged: number;
  previousOffset: number | null;
  /** True when the source is paused: the replay is queued and applied on resume; the other fields say what is queued so far. */
  queued: boolean;
}

export interface PauseRequest {
  reason?: string;
}

export interface RejectedRequest {
  handler: string;
  request: unknown;
  reason: string;
  at: string;
}

export interface SourceStatus {
  source: string;
  paused: { reason: string; since: string } | null;
  /** A replay accepted but not applied yet (it runs before the next cycle); requests arriving meanwhile are merged into it. */
  pendingReplay: MergedReplay | null;
  /** The last signal payload that was refused (signals cannot reject their sender). */
  lastRejected: RejectedRequest | null;
  offsetVersion: number | null;
  latestVersion: number | null;
  lagVersions: number | null;
  /** Seconds between the newest commit and the offset's commit; 0 when caught up. */
  lagSeconds: number | null;
  /**
   * Hours left before the offset's commit falls out of delta.deletedFileRetentionDuration and the
   * next read fails; null when caught up or unknown. `retentionAtRisk` when under a quarter left.
   */
  retentionHeadroomHours: number | null;
  retentionAtRisk: boolean;
  cyclesCompleted: number;
  lastCycle: CycleReport | null;
  /**
   * `changesRead`: the changes the ranges captured, one per uts_id and commit version (an
   * update's two images count once), counted again when a replay captures a range again.
   * `registryRowsInserted`: the rows that were new to the registry.
   */
  totals: { ranges: number; changesRead: number; registryRowsInserted: number };
  blocked: BlockedState | null;
  /** A capture step failing and being retried; null while steps succeed. */
  retrying: RetryingState | null;
  continuedAsNewTimes: number;
}

/** Handlers without options still take one object (`{}`), because the UI and CLI send one payload. */
export type EmptyRequest = Record<string, never>;

export const sourceStatusQuery = defineQuery<SourceStatus>('status');

/** Runs a capture cycle now and returns its report (waits for one that started after the request). */
export const captureNowUpdate = defineUpdate<CycleReport, [EmptyRequest]>('captureNow');

/** Starts the next capture cycle without waiting for the poll interval. */
export const pollNowSignal = defineSignal<[EmptyRequest]>('pollNow');

/** Replays from a version; a bad payload is recorded in status.lastRejected and changes nothing. */
export const replayFromVersionSignal = defineSignal<[ReplayRequest]>('replayFromVersion');
/** The same as an update: the caller sees a rejection (negative, past latest, not an integer). */
export const replayFromVersionUpdate = defineUpdate<ReplayAccepted, [ReplayRequest]>('replayFromVersionSync');

export const pauseSignal = defineSignal<[PauseRequest]>('pause');
export const resumeSignal = defineSignal<[EmptyRequest]>('resume');

export interface FanInStatus {
  runKey: string | null;
  phase: 'refreshing' | 'snapshotting' | 'dispatching' | 'committing' | 'retrying requeued batches' | 'done' | 'failed';
  /** Executions of this fan-in so far: it continues as new every few thousand batches to keep each history small. */
  execution: number;
  changedIds: number;
  batches: number;
  batchesSucceeded: number;
  batchesParked: number;
  batchesRunning: number;
  /** Batches waiting out the backoff before their next attempt. */
  batchesWaitingToRelaunch: number;
  /** Batches in flight (at most 20); their run links are in `cdf batches list --status launched`. */
  runningBatches: { runKey: string; batchNumber: number }[];
}

export const fanInStatusQuery = defineQuery<FanInStatus>('fanInStatus');
