import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CaughtUp, RangeCaptured } from '../activities/capture';
import type { ChangeCounts } from '../lakehouse/port';
import {
  captureNowUpdate,
  pauseSignal,
  pollNowSignal,
  replayFromVersionSignal,
  replayFromVersionUpdate,
  resumeSignal,
  sourceStatusQuery,
  type BlockedState,
  type RetryingState,
  type CycleReport,
  type EmptyRequest,
  type RejectedRequest,
  type ReplayRequest,
  type SourceStatus,
} from './messages';
import { sourceDetails, sourceState } from './currentDetails';
import { planRanges } from './ranges';
import { recordableRequest, validateReplayRequest } from './requests';
import { CdfLastVersion, CdfState } from './searchAttributes';
import { activityFailureCause, ATTEMPTS_PER_BURST, CycleInterrupted, DEFAULT_BLOCK_UNKNOWN_AFTER_ATTEMPTS, UnknownErrorPersisted, withVisibleRetries } from './visibleRetries';

/** Until the first cycle reads worker.heartbeatTimeoutSeconds from the worker's config. */
const DEFAULT_HEARTBEAT_TIMEOUT_SECONDS = 20;
const DEFAULT_ACTIVITY_TIMEOUT_SECONDS = 600;
/** A local activity holds its workflow task: describing a source takes seconds at most, never the capture's ten minutes. */
const LOCAL_ACTIVITY_TIMEOUT_SECONDS = 60;
/**
 * A range runs as a local activity when the source's previous range took less than this: the
 * small, frequent commits of a busy table then cost no activity task (about 40 ms of dispatch and
 * an extra workflow task on a dev server), while a range after a slow one keeps a regular
 * activity, its heartbeats and its own line in the UI.
 */
const LOCAL_CAPTURE_BELOW_MS = 1000;
/**
 * Local activities in a row share one workflow task, and a signal (a pause, a replay) or a query
 * waits for the task to end: after this much capture time in a row, the next range is a regular
 * activity, which ends the task, so an operator is heard within about a second.
 */
const LOCAL_CAPTURE_CHAIN_MS = 1000;

/**
 * The capture activities, with the heartbeat timeout the worker's config gave in the last cycle:
 * an activity on a worker that died is retried after that long, not after its start-to-close.
 */
function captureActivities(state: Pick<SourceState, 'heartbeatTimeoutSeconds' | 'activityTimeoutSeconds'>, bursts = false) {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${state.activityTimeoutSeconds} seconds`,
    heartbeatTimeout: `${state.heartbeatTimeoutSeconds} seconds`,
    // In bursts, the workflow sees each failed burst and shows it (visibleRetries.ts); before, Temporal retried unseen.
    retry: captureRetry(bursts),
  });
}

/**
 * The short calls of every poll (describe the source; signal the fan-in trigger) as local
 * activities: they run inside the workflow task on the worker that holds the workflow, so an idle
 * poll is one workflow task (timer fired, a marker, the next timer) instead of an activity task
 * and two more workflow tasks, and a capture reaches the trigger without a trip through the
 * matching service.
 */
function pollActivities(state: Pick<SourceState, 'activityTimeoutSeconds'>, bursts = false) {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: `${Math.min(state.activityTimeoutSeconds, LOCAL_ACTIVITY_TIMEOUT_SECONDS)} seconds`,
    retry: captureRetry(bursts),
    localRetryThreshold: LOCAL_RETRY_THRESHOLD,
  });
}

/** A quick range's capture, in the workflow task: a worker that dies mid-range fails the task, and the retry runs the range again (both writes are idempotent). */
function quickCaptureActivities(state: Pick<SourceState, 'activityTimeoutSeconds'>, bursts: boolean) {
  return proxyLocalActivities<Activities>({
    startToCloseTimeout: `${state.activityTimeoutSeconds} seconds`,
    retry: captureRetry(bursts),
    localRetryThreshold: LOCAL_RETRY_THRESHOLD,
  });
}

/**
 * A local activity's retry waits for its backoff inside the workflow task unless the backoff
 * exceeds this (the SDK's default is a minute): a pause, a replay or a status query would then wait
 * out every backoff. Below every backoff of captureRetry, so each retry waits on a server timer
 * and the task ends in between.
 */
const LOCAL_RETRY_THRESHOLD = '100 milliseconds';

function captureRetry(bursts: boolean): RetryPolicy {
  const policy: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' };
  return bursts ? { ...policy, maximumAttempts: ATTEMPTS_PER_BURST } : policy;
}

export interface SourceIngestInput {
  source: string;
  /** State carried across continue-as-new; absent on the first run. */
  carried?: CarriedState;
}

interface CarriedState {
  cyclesCompleted: number;
  totals: SourceStatus['totals'];
  lastCycle: CycleReport | null;
  offsetVersion: number | null;
  latestVersion: number | null;
  blocked: BlockedState | null;
  pollIntervalSeconds: number;
  continuedAsNewTimes: number;
  pollRequested: boolean;
  paused?: SourceStatus['paused'];
  pendingReplay?: ReplayRequest | null;
  lastRejected?: RejectedRequest | null;
  latestCommitTimestamp?: string | null;
  offsetCommitTimestamp?: string | null;
  published?: { state: string; version: number };
  notifyFanIn?: boolean;
  /** The offset the fan-in trigger was last told about; a source notifies whenever its offset is past it. */
  notifiedOffset?: number | null;
  deletedFileRetentionHours?: number | null;
  /** The table id the last cycle read. */
  tableId?: string | null;
  /** How long the last range's capture took (null: unknown, or captured by the three activities of older histories). */
  lastCaptureMs?: number | null;
  heartbeatTimeoutSeconds?: number;
  activityTimeoutSeconds?: number;
  retrying?: RetryingState | null;
  blockUnknownErrorsAfterAttempts?: number;
}

interface SourceState extends Required<CarriedState> {
  source: string;
  cycleInProgress: boolean;
  /** Replays applied (or refused by the rewind) in this run, whether one is being applied, and why the last one was refused. */
  replaysApplied: number;
  replayInProgress: boolean;
  lastReplayRefusal: string | null;
}

/**
 * One long-lived workflow per source table. Each cycle: read the latest version, cut the gap
 * into pinned ranges, and for each range read the change counts, append to the registry and
 * MERGE the offset. Then wait for the poll interval or a signal. A permanent CDF error blocks the
 * source (visible in `status`) instead of failing the workflow; nothing advances while blocked.
 */
export async function sourceIngest(input: SourceIngestInput): Promise<void> {
  const state = restoreState(input);
  registerHandlers(state);
  showDetails(state);
  for (;;) {
    // A paused source (also one that just continued as new) captures nothing and applies no replay until resume.
    if (state.paused && patched('paused-source-waits-before-cycle-v1')) await condition(() => !state.paused);
    if (state.pendingReplay) await applyReplay(state);
    await runCycle(state);
    publishState(state);
    if (shouldNotifyFanIn(state)) {
      const notify = patched('poll-calls-as-local-activities-v1') ? pollActivities(state).notifyFanIn : captureActivities(state).notifyFanIn;
      await notify({ source: state.source, offsetVersion: state.offsetVersion ?? -1 });
      state.notifiedOffset = state.offsetVersion;
    }
    if (await readyToContinueAsNew(state)) {
      return continueAsNew<typeof sourceIngest>({ source: state.source, carried: carry(state) });
    }
    await waitForNextCycle(state);
  }
}

async function runCycle(state: SourceState): Promise<void> {
  state.cycleInProgress = true;
  state.pollRequested = false;
  const startedAt = Date.now();
  const report: CycleReport = {
    cycle: state.cyclesCompleted + 1,
    startedAt: new Date(startedAt).toISOString(),
    durationMs: 0,
    latestVersion: null,
    offsetVersion: state.offsetVersion,
    ranges: 0,
    changes: emptyCounts(),
    registryRowsInserted: 0,
    blocked: null,
  };
  // Each capture step runs through withVisibleRetries; histories from before it keep Temporal's unseen retries.
  const visible = patched('visible-capture-retries-v1');
  const interrupted = () => state.paused !== null || state.pendingReplay !== null;
  const step = <T>(call: () => Promise<T>): Promise<T> => (visible ? withVisibleRetries(state, interrupted, () => publishState(state), call) : call());
  try {
    const cycle = patched('poll-calls-as-local-activities-v1')
      ? await step(() => pollActivities(state, visible).describeSource({ source: state.source, caughtUp: caughtUp(state) }))
      : await step(() => captureActivities(state, visible).describeSource({ source: state.source }));
    state.tableId = cycle.tableId;
    state.latestVersion = report.latestVersion = cycle.latestVersion;
    state.latestCommitTimestamp = cycle.latestCommitTimestamp;
    state.offsetVersion = cycle.offsetVersion;
    state.offsetCommitTimestamp = cycle.offsetCommitTimestamp;
    state.pollIntervalSeconds = cycle.pollIntervalSeconds;
    state.notifyFanIn = cycle.notifyFanIn;
    state.deletedFileRetentionHours = cycle.deletedFileRetentionHours;
    state.heartbeatTimeoutSeconds = cycle.heartbeatTimeoutSeconds ?? state.heartbeatTimeoutSeconds;
    state.activityTimeoutSeconds = cycle.activityTimeoutSeconds ?? state.activityTimeoutSeconds;
    state.blockUnknownErrorsAfterAttempts = cycle.blockUnknownErrorsAfterAttempts ?? state.blockUnknownErrorsAfterAttempts;
    const capture = captureActivities(state, visible);
    const oneActivityPerRange = patched('one-activity-per-range-v1');
    let quickChainMs = 0;
    for (const range of planRanges(cycle.nextVersion, cycle.latestVersion, cycle.maxVersionsPerRange)) {
      // Pause takes effect between ranges: the range in flight finishes, the next waits for resume.
      if (state.paused && patched('pause-between-ranges-v1')) break;
      // Summaries make the UI's timeline read like the data flow: which stage, which versions.
      const versions = `${state.source} v${range.fromVersion}–${range.toVersion}`;
      const args = { source: state.source, ...range, tableId: cycle.tableId };
      const summary = `capture ${versions} → registry, offset`;
      const quick =
        state.lastCaptureMs !== null && state.lastCaptureMs < LOCAL_CAPTURE_BELOW_MS && quickChainMs < LOCAL_CAPTURE_CHAIN_MS && patched('quick-ranges-as-local-activities-v1');
      const captured = !oneActivityPerRange
        ? await capturedInThreeActivities(capture, step, versions, args)
        : quick
          ? await step(() => quickCaptureActivities(state, visible).captureRange.executeWithOptions({ summary }, [args]))
          : await step(() => capture.captureRange.executeWithOptions({ summary }, [args]));
      state.lastCaptureMs = captured.durationMs ?? null;
      quickChainMs = quick ? quickChainMs + (captured.durationMs ?? 0) : 0;
      state.offsetVersion = report.offsetVersion = captured.lastVersion;
      state.offsetCommitTimestamp = captured.lastVersion === cycle.latestVersion ? cycle.latestCommitTimestamp : state.offsetCommitTimestamp;
      addCounts(report.changes, captured.counts);
      report.ranges += 1;
      report.registryRowsInserted += captured.rowsInserted;
      showDetails(state);
      // A long backlog is cut here and finished by the next run, so one cycle never outgrows the history.
      if (workflowInfo().continueAsNewSuggested) break;
    }
    state.blocked = null;
  } catch (error) {
    // Paused, a replay waiting, or a history long enough to continue as new: the main loop takes over.
    if (error instanceof CycleInterrupted) return endCycle(state, report, startedAt);
    const blocked = asBlocked(error);
    if (!blocked) throw error;
    state.blocked = report.blocked = state.blocked?.type === blocked.type ? state.blocked : blocked;
  }
  endCycle(state, report, startedAt);
}

/** Histories from before captureRange: the CDF read, the registry append and the offset MERGE, one activity each. */
async function capturedInThreeActivities(
  capture: ReturnType<typeof captureActivities>,
  step: <T>(call: () => Promise<T>) => Promise<T>,
  versions: string,
  args: { source: string; fromVersion: number; toVersion: number; tableId: string },
): Promise<RangeCaptured> {
  const { tableId, ...range } = args;
  const counts = await step(() => capture.readChangeSummary.executeWithOptions({ summary: `CDF read ${versions}` }, [range]));
  const appended = await step(() => capture.appendToRegistry.executeWithOptions({ summary: `registry append ${versions}` }, [args]));
  const offset = await step(() => capture.commitOffset.executeWithOptions({ summary: `offset → ${args.toVersion}` }, [{ source: args.source, version: args.toVersion, tableId }]));
  return { rowsInserted: appended.rowsInserted, counts, ...offset };
}

/** What an idle poll needs to know to read nothing but the latest version; undefined unless everything was captured. */
function caughtUp(state: SourceState): CaughtUp | undefined {
  const { offsetVersion, latestVersion, latestCommitTimestamp, tableId, deletedFileRetentionHours } = state;
  if (offsetVersion === null || offsetVersion !== latestVersion || !latestCommitTimestamp || !tableId || deletedFileRetentionHours === null || state.blocked) return undefined;
  return { version: offsetVersion, latestCommitTimestamp, tableId, commitTimestamp: state.offsetCommitTimestamp, deletedFileRetentionHours };
}

function endCycle(state: SourceState, report: CycleReport, startedAt: number): void {
  report.durationMs = Date.now() - startedAt;
  state.totals.ranges += report.ranges;
  state.totals.changesRead += totalChanges(report.changes);
  state.totals.registryRowsInserted += report.registryRowsInserted;
  state.lastCycle = report;
  state.cyclesCompleted += 1;
  state.cycleInProgress = false;
}

/**
 * The trigger is told whenever the offset is past what it was last told, not only when this
 * attempt inserted rows: an append retried after a crash inserts nothing, yet its changes still
 * wait for a fan-in. (Histories from before this rule keep the old one.)
 */
function shouldNotifyFanIn(state: SourceState): boolean {
  if (!state.notifyFanIn) return false;
  if (patched('notify-when-offset-ahead-v1')) return state.offsetVersion !== null && state.offsetVersion > (state.notifiedOffset ?? -1);
  return Boolean(state.lastCycle?.registryRowsInserted) && patched('notify-fan-in-v1');
}

/**
 * Paused sources wait for resume; blocked ones for an operator (replay, pollNow, captureNow)
 * instead of hitting the same error on every poll; the others for the poll interval.
 */
async function waitForNextCycle(state: SourceState): Promise<void> {
  const woken = () => !state.paused && (state.pollRequested || state.pendingReplay !== null);
  if (state.paused || state.blocked) await condition(woken);
  else await condition(woken, state.pollIntervalSeconds * 1000);
}

/** The one way the offset moves back; the registry stays deduplicated, so nothing is dispatched twice. */
async function applyReplay(state: SourceState): Promise<void> {
  const request = state.pendingReplay!;
  state.pendingReplay = null;
  state.replayInProgress = true;
  try {
    const rewound = await captureActivities(state).rewindOffset({ source: state.source, fromVersion: request.fromVersion, redispatch: request.redispatch === true });
    state.offsetVersion = rewound.lastVersion;
    state.offsetCommitTimestamp = null;
    state.blocked = null;
    state.lastReplayRefusal = null;
    // A replay refused earlier is settled by this one; status shows refusals still waiting for an answer.
    if (state.lastRejected?.handler === 'replayFromVersion') state.lastRejected = null;
    // What is captured again must reach a fan-in again, even up to a version the trigger saw before.
    state.notifiedOffset = null;
  } catch (error) {
    if (!(error instanceof ActivityFailure)) throw error;
    state.lastReplayRefusal = error.cause?.message ?? error.message;
    state.lastRejected = { handler: 'replayFromVersion', request, reason: state.lastReplayRefusal, at: new Date(Date.now()).toISOString() };
  } finally {
    state.replaysApplied += 1;
    state.replayInProgress = false;
    showDetails(state);
  }
}

/** The search attributes (for the UI's list) and the current details (for the workflow's page). */
function publishState(state: SourceState): void {
  publishSearchAttributes(state);
  showDetails(state);
}

/** CdfState and CdfLastVersion, so the UI's list can be filtered by them; only sent when they change. */
function publishSearchAttributes(state: SourceState): void {
  if (!patched('search-attributes-v1')) return;
  const published = sourceState(state);
  const version = state.offsetVersion ?? -1;
  if (published === state.published.state && version === state.published.version) return;
  upsertSearchAttributes([
    { key: CdfState, value: published },
    { key: CdfLastVersion, value: version },
  ]);
  state.published = { state: published, version };
}

/** State, offset, lag, and why it is blocked, retrying or paused, on the workflow's page in the UI. */
function showDetails(state: SourceState): void {
  setCurrentDetails(sourceDetails(status(state)));
}

/**
 * A captureNow caller waits either for the cycle that just ended (its handler finishes before we
 * continue as new) or for the next one (it set pollRequested, so that cycle runs here first).
 */
async function readyToContinueAsNew(state: SourceState): Promise<boolean> {
  // A replay update waits for its rewind, which the next loop applies: it must come first too.
  const workPending = () => state.pollRequested || (state.pendingReplay !== null && !state.paused);
  if (!workflowInfo().continueAsNewSuggested || workPending()) return false;
  await condition(() => allHandlersFinished() || workPending());
  return !workPending();
}

function registerHandlers(state: SourceState): void {
  setHandler(sourceStatusQuery, () => status(state), { description: 'Offset, latest version, lag, last cycle, the blocked reason and remedy, and a step being retried (error and attempts) of this source.' });
  setHandler(
    pollNowSignal,
    () => {
      state.pollRequested = true;
    },
    { description: 'Start the next capture cycle now. Input: {}' },
  );
  setHandler(
    replayFromVersionSignal,
    (request) => {
      try {
        state.pendingReplay = validateReplayRequest(request);
      } catch (error) {
        state.lastRejected = { handler: 'replayFromVersion', request: recordableRequest(request), reason: (error as Error).message, at: new Date(Date.now()).toISOString() };
      }
      showDetails(state);
    },
    {
      description:
        'Capture again from a Delta version: rewinds the offset. Every change captured is dispatched once; with "redispatch": true the ids changed from that version on are dispatched again. Input: {"fromVersion": 12, "redispatch": false, "reason": "…"}',
    },
  );
  setHandler(
    replayFromVersionUpdate,
    async (request) => {
      const previousOffset = state.offsetVersion;
      state.pendingReplay = validateReplayRequest(request);
      showDetails(state);
      // The version is checked against the table's live latest version by the rewind itself (the
      // one this workflow last saw may be stale, e.g. while the source is blocked); the caller
      // waits for that answer, unless the source is paused and the replay waits for resume.
      if (state.paused || !patched('replay-update-waits-for-rewind-v1')) return { fromVersion: request.fromVersion, previousOffset };
      // A rewind already running was asked for before this request: wait for the one after it.
      const ticket = state.replaysApplied + (state.replayInProgress ? 2 : 1);
      await condition(() => state.replaysApplied >= ticket);
      if (state.lastReplayRefusal) throw ApplicationFailure.nonRetryable(state.lastReplayRefusal, 'InvalidReplay');
      return { fromVersion: request.fromVersion, previousOffset };
    },
    {
      validator: (request) => void validateReplayRequest(request),
      description:
        'Like the replayFromVersion signal, but waits until the offset is rewound and fails with the reason if the version is refused. Input: {"fromVersion": 12, "redispatch": false, "reason": "…"}',
    },
  );
  setHandler(
    pauseSignal,
    (request) => {
      // Pausing a paused source updates the reason; it has been paused since the first pause.
      state.paused = { reason: typeof request?.reason === 'string' ? request.reason.slice(0, 500) : 'paused by an operator', since: state.paused?.since ?? new Date(Date.now()).toISOString() };
      publishState(state);
    },
    { description: 'Stop capturing after the current range until resume. Input: {"reason": "…"}' },
  );
  setHandler(
    resumeSignal,
    () => {
      state.paused = null;
      state.pollRequested = true;
      publishState(state);
    },
    { description: 'Resume capturing and run a cycle now. Input: {}' },
  );
  setHandler(
    captureNowUpdate,
    async () => {
      // A cycle already running may have read the latest version before the caller's commit.
      const target = state.cyclesCompleted + (state.cycleInProgress ? 2 : 1);
      state.pollRequested = true;
      await condition(() => state.cyclesCompleted >= target);
      return state.lastCycle!;
    },
    {
      validator: (_request: EmptyRequest) => {
        if (state.paused) throw ApplicationFailure.create({ message: `source ${state.source} is paused (${state.paused.reason}): send resume first`, type: 'SourcePaused', nonRetryable: true });
      },
      description: 'Run a capture cycle now and return its report (ranges, counts, offset). Input: {}',
    },
  );
}

function asBlocked(error: unknown): BlockedState | null {
  if (error instanceof UnknownErrorPersisted) return error.blocked;
  const cause = activityFailureCause(error);
  if (!(cause instanceof ApplicationFailure) || !cause.nonRetryable) return null;
  const details = cause.details?.[0] as { remedy?: string } | undefined;
  return {
    type: cause.type ?? 'UNKNOWN',
    message: cause.message,
    remedy: details?.remedy ?? 'See the message; fix the cause, then signal pollNow.',
    since: new Date(Date.now()).toISOString(),
  };
}

function status(state: SourceState): SourceStatus {
  const lag = state.latestVersion !== null ? state.latestVersion - (state.offsetVersion ?? -1) : null;
  const lagSeconds =
    lag === 0 ? 0 : state.latestCommitTimestamp && state.offsetCommitTimestamp ? Math.max(0, (Date.parse(state.latestCommitTimestamp) - Date.parse(state.offsetCommitTimestamp)) / 1000) : null;
  const headroom =
    lag !== null && lag > 0 && state.offsetCommitTimestamp && state.deletedFileRetentionHours
      ? state.deletedFileRetentionHours - (Date.now() - Date.parse(state.offsetCommitTimestamp)) / 3_600_000
      : null;
  return {
    source: state.source,
    retentionHeadroomHours: headroom === null ? null : Math.round(headroom * 100) / 100,
    retentionAtRisk: headroom !== null && state.deletedFileRetentionHours !== null && headroom < state.deletedFileRetentionHours / 4,
    paused: state.paused,
    pendingReplay: state.pendingReplay,
    lastRejected: state.lastRejected,
    lagSeconds,
    offsetVersion: state.offsetVersion,
    latestVersion: state.latestVersion,
    lagVersions: lag,
    cyclesCompleted: state.cyclesCompleted,
    lastCycle: state.lastCycle,
    totals: state.totals,
    blocked: state.blocked,
    retrying: state.retrying,
    continuedAsNewTimes: state.continuedAsNewTimes,
  };
}

function restoreState(input: SourceIngestInput): SourceState {
  const carried: CarriedState = input.carried ?? {
    cyclesCompleted: 0,
    totals: { ranges: 0, changesRead: 0, registryRowsInserted: 0 },
    lastCycle: null,
    offsetVersion: null,
    latestVersion: null,
    blocked: null,
    pollIntervalSeconds: 30,
    continuedAsNewTimes: 0,
    pollRequested: false,
  };
  return {
    paused: null,
    pendingReplay: null,
    lastRejected: null,
    latestCommitTimestamp: null,
    offsetCommitTimestamp: null,
    published: { state: '', version: -2 },
    notifyFanIn: false,
    notifiedOffset: null,
    deletedFileRetentionHours: null,
    tableId: null,
    lastCaptureMs: null,
    heartbeatTimeoutSeconds: DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    activityTimeoutSeconds: DEFAULT_ACTIVITY_TIMEOUT_SECONDS,
    retrying: null,
    blockUnknownErrorsAfterAttempts: DEFAULT_BLOCK_UNKNOWN_AFTER_ATTEMPTS,
    ...carried,
    source: input.source,
    cycleInProgress: false,
    replaysApplied: 0,
    replayInProgress: false,
    lastReplayRefusal: null,
  };
}

function carry(state: SourceState): CarriedState {
  const { source: _source, cycleInProgress: _cycle, replaysApplied: _applied, replayInProgress: _replaying, lastReplayRefusal: _refusal, ...carried } = state;
  return { ...carried, continuedAsNewTimes: carried.continuedAsNewTimes + 1 };
}

function emptyCounts(): ChangeCounts {
  return { insert: 0, update_preimage: 0, update_postimage: 0, delete: 0, nullKeys: 0 };
}

function addCounts(into: ChangeCounts, add: ChangeCounts): void {
  for (const key of Object.keys(into) as (keyof ChangeCounts)[]) into[key] = (into[key] ?? 0) + (add[key] ?? 0);
}

function totalChanges(counts: ChangeCounts): number {
  return counts.insert + counts.update_preimage + counts.update_postimage + counts.delete;
}
