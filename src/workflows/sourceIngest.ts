import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { CaughtUp } from '../activities/capture';
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
  type MergedReplay,
  type RejectedRequest,
  type ReplayAccepted,
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
/** Outcomes of applied replays kept for the update callers still waiting on them. */
const REPLAY_OUTCOMES_KEPT = 20;

/**
 * Every call is a regular activity, none a local one. A local activity holds its workflow task
 * open while it runs; on a busy worker (50 sources committing at once, one DuckDB) the SDK then
 * has to heartbeat that task, and the load scenario saw those tasks time out (and the core log
 * "Trying to send a new WFT for a run which already has one!"). A regular activity ends the task
 * at once, so a workflow task here is only ever workflow code, and a signal, a query or a pause
 * is heard while a capture runs.
 */
function captureActivities(state: Pick<SourceState, 'heartbeatTimeoutSeconds' | 'activityTimeoutSeconds'>, bursts = false) {
  return proxyActivities<Activities>({
    startToCloseTimeout: `${state.activityTimeoutSeconds} seconds`,
    // An activity on a worker that died is retried after this long, not after its start-to-close.
    heartbeatTimeout: `${state.heartbeatTimeoutSeconds} seconds`,
    // In bursts, the workflow sees each failed burst and shows it (visibleRetries.ts).
    retry: captureRetry(bursts),
  });
}

function captureRetry(bursts: boolean): RetryPolicy {
  const policy: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' };
  return bursts ? { ...policy, maximumAttempts: ATTEMPTS_PER_BURST } : policy;
}

export interface SourceIngestInput {
  source: string;
  /** State carried across continue-as-new; absent on the first run. */
  carried?: CarriedState;
}

/** A pending replay: the merge of every request received since the last rewind, and the tickets it covers. */
type PendingReplay = MergedReplay & { firstTicket: number; lastTicket: number };

/** What an applied (or refused) replay did, for the update callers whose tickets it covered. */
interface ReplayOutcome {
  firstTicket: number;
  lastTicket: number;
  fromVersion: number;
  redispatchFromVersion: number | null;
  redispatchMarked: boolean;
  requestsMerged: number;
  previousOffset: number | null;
  refusal: string | null;
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
  paused: SourceStatus['paused'];
  pendingReplay: PendingReplay | null;
  /** Replay requests received in the workflow's whole life; each request's ticket is its number. */
  replayTickets: number;
  lastRejected: RejectedRequest | null;
  latestCommitTimestamp: string | null;
  offsetCommitTimestamp: string | null;
  published: { state: string; version: number };
  notifyFanIn: boolean;
  /** The offset the fan-in trigger was last told about; a source notifies whenever its offset is past it. */
  notifiedOffset: number | null;
  deletedFileRetentionHours: number | null;
  /** The table id the last cycle read. */
  tableId: string | null;
  /** The offset's replay generation: a capture writes its offset only while no replay has rewound it since the capture began. */
  replayGeneration: number;
  heartbeatTimeoutSeconds: number;
  activityTimeoutSeconds: number;
  retrying: RetryingState | null;
  blockUnknownErrorsAfterAttempts: number;
}

interface SourceState extends CarriedState {
  source: string;
  cycleInProgress: boolean;
  /** Outcomes of the last replays, by ticket range; not carried (a continue-as-new waits for every update handler first). */
  replayOutcomes: ReplayOutcome[];
}

/**
 * One long-lived workflow per source table. Each cycle: read the latest version, cut the gap
 * into pinned ranges, and capture each range (registry append, then offset MERGE) in one
 * activity. Then wait for the poll interval or a signal. A permanent CDF error blocks the source
 * (visible in `status`) instead of failing the workflow; nothing advances while blocked.
 */
export async function sourceIngest(input: SourceIngestInput): Promise<void> {
  const state = restoreState(input);
  registerHandlers(state);
  showDetails(state);
  for (;;) {
    // A paused source (also one that just continued as new) captures nothing and applies no replay until resume.
    if (state.paused) await condition(() => !state.paused);
    if (state.pendingReplay) await applyReplay(state);
    await runCycle(state);
    publishState(state);
    if (shouldNotifyFanIn(state)) await notifyFanIn(state);
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
  const interrupted = () => state.paused !== null || state.pendingReplay !== null;
  const step = <T>(call: () => Promise<T>): Promise<T> => withVisibleRetries(state, interrupted, () => publishState(state), call);
  try {
    const cycle = await step(() => captureActivities(state, true).describeSource({ source: state.source, caughtUp: caughtUp(state) }));
    state.tableId = cycle.tableId;
    state.latestVersion = report.latestVersion = cycle.latestVersion;
    state.latestCommitTimestamp = cycle.latestCommitTimestamp;
    state.offsetVersion = cycle.offsetVersion;
    state.offsetCommitTimestamp = cycle.offsetCommitTimestamp;
    state.replayGeneration = cycle.replayGeneration;
    state.pollIntervalSeconds = cycle.pollIntervalSeconds;
    state.notifyFanIn = cycle.notifyFanIn;
    state.deletedFileRetentionHours = cycle.deletedFileRetentionHours;
    state.heartbeatTimeoutSeconds = cycle.heartbeatTimeoutSeconds;
    state.activityTimeoutSeconds = cycle.activityTimeoutSeconds;
    state.blockUnknownErrorsAfterAttempts = cycle.blockUnknownErrorsAfterAttempts;
    const capture = captureActivities(state, true);
    for (const range of planRanges(cycle.nextVersion, cycle.latestVersion, cycle.maxVersionsPerRange)) {
      // Pause takes effect between ranges: the range in flight finishes, the next waits for resume.
      if (state.paused) break;
      // Summaries make the UI's timeline read like the data flow: which stage, which versions.
      const summary = `capture ${state.source} v${range.fromVersion}–${range.toVersion} → registry, offset`;
      const args = { source: state.source, ...range, tableId: cycle.tableId, replayGeneration: state.replayGeneration };
      const captured = await step(() => capture.captureRange.executeWithOptions({ summary }, [args]));
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

/** What an idle poll needs to know to read nothing but the latest version; undefined unless everything was captured. */
function caughtUp(state: SourceState): CaughtUp | undefined {
  const { offsetVersion, latestVersion, latestCommitTimestamp, tableId, deletedFileRetentionHours, replayGeneration } = state;
  if (offsetVersion === null || offsetVersion !== latestVersion || !latestCommitTimestamp || !tableId || deletedFileRetentionHours === null || state.blocked) return undefined;
  return { version: offsetVersion, latestCommitTimestamp, tableId, commitTimestamp: state.offsetCommitTimestamp, deletedFileRetentionHours, replayGeneration };
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
 * wait for a fan-in.
 */
function shouldNotifyFanIn(state: SourceState): boolean {
  return state.notifyFanIn && state.offsetVersion !== null && state.offsetVersion > (state.notifiedOffset ?? -1);
}

async function notifyFanIn(state: SourceState): Promise<void> {
  await captureActivities(state).notifyFanIn({ source: state.source, offsetVersion: state.offsetVersion ?? -1 });
  state.notifiedOffset = state.offsetVersion;
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

/**
 * Takes a replay request: merged into the one waiting, if any (capture again from the smaller
 * version; dispatch again from the smaller version of those asking for it), so no request is
 * dropped and none widens another's redispatch; returns the request's ticket.
 */
function acceptReplay(state: SourceState, request: ReplayRequest): number {
  const ticket = ++state.replayTickets;
  const waiting = state.pendingReplay;
  const redispatchFrom = request.redispatch ? request.fromVersion : null;
  const reason = [waiting?.reason, request.reason].filter(Boolean).join('; ').slice(0, 500);
  state.pendingReplay = {
    fromVersion: Math.min(waiting?.fromVersion ?? request.fromVersion, request.fromVersion),
    redispatchFromVersion: minOrNull(waiting?.redispatchFromVersion ?? null, redispatchFrom),
    ...(reason ? { reason } : {}),
    requestsMerged: (waiting?.requestsMerged ?? 0) + 1,
    firstTicket: waiting?.firstTicket ?? ticket,
    lastTicket: ticket,
  };
  showDetails(state);
  return ticket;
}

function minOrNull(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

/**
 * The one way the offset moves back; the registry stays deduplicated, so nothing is dispatched
 * twice. The rewind's failures are shown as `retrying`; one nothing recognises that persists (a
 * source missing from the worker's config) refuses the replay instead of retrying unseen forever.
 */
async function applyReplay(state: SourceState): Promise<void> {
  const request = state.pendingReplay!;
  state.pendingReplay = null;
  const outcome: ReplayOutcome = {
    firstTicket: request.firstTicket,
    lastTicket: request.lastTicket,
    fromVersion: request.fromVersion,
    redispatchFromVersion: request.redispatchFromVersion,
    redispatchMarked: false,
    requestsMerged: request.requestsMerged,
    previousOffset: state.offsetVersion,
    refusal: null,
  };
  const args = { source: state.source, fromVersion: request.fromVersion, ...(request.redispatchFromVersion === null ? {} : { redispatchFromVersion: request.redispatchFromVersion }) };
  try {
    const rewound = await withVisibleRetries(state, () => false, () => publishState(state), () => captureActivities(state, true).rewindOffset(args));
    state.offsetVersion = rewound.lastVersion;
    state.replayGeneration = rewound.replayGeneration;
    outcome.redispatchMarked = rewound.redispatchMarked;
    state.offsetCommitTimestamp = null;
    state.blocked = null;
    // A replay refused earlier is settled by this one; status shows refusals still waiting for an answer.
    if (state.lastRejected?.handler === 'replayFromVersion') state.lastRejected = null;
    // What is captured again must reach a fan-in again, even up to a version the trigger saw before.
    state.notifiedOffset = null;
  } catch (error) {
    if (!(error instanceof ActivityFailure) && !(error instanceof UnknownErrorPersisted)) throw error;
    outcome.refusal = error instanceof UnknownErrorPersisted ? `the rewind could not run: ${error.blocked.message}` : (error.cause?.message ?? error.message);
    state.lastRejected = { handler: 'replayFromVersion', request: withoutTickets(request), reason: outcome.refusal, at: new Date(Date.now()).toISOString() };
  } finally {
    state.replayOutcomes = [...state.replayOutcomes, outcome].slice(-REPLAY_OUTCOMES_KEPT);
    publishState(state);
  }
}

/** The update's answer once the replay holding its ticket was applied; throws the rewind's refusal. */
async function replayAnswer(state: SourceState, request: ReplayRequest): Promise<ReplayAccepted> {
  const previousOffset = state.offsetVersion;
  const ticket = acceptReplay(state, request);
  // The version is checked against the table's live latest version by the rewind itself (the one
  // this workflow last saw may be stale, e.g. while the source is blocked). Paused (now, or before
  // the rewind runs): the replay waits for resume, and the caller is told what is queued instead
  // of being kept waiting for an operator.
  const covering = () => state.replayOutcomes.find((o) => o.firstTicket <= ticket && ticket <= o.lastTicket);
  const queuedWhilePaused = () => state.paused !== null && state.pendingReplay !== null && state.pendingReplay.firstTicket <= ticket;
  await condition(() => covering() !== undefined || queuedWhilePaused());
  const outcome = covering();
  if (!outcome) {
    const queued = state.pendingReplay!;
    return answer(request, { ...queued, redispatchMarked: false, previousOffset, queued: true });
  }
  if (outcome.refusal) throw ApplicationFailure.nonRetryable(outcome.refusal, 'InvalidReplay');
  return answer(request, { ...outcome, queued: false });
}

function answer(
  request: ReplayRequest,
  applied: Pick<ReplayOutcome, 'fromVersion' | 'redispatchFromVersion' | 'redispatchMarked' | 'requestsMerged' | 'previousOffset'> & { queued: boolean },
): ReplayAccepted {
  return {
    fromVersion: applied.fromVersion,
    requestedFromVersion: request.fromVersion,
    redispatch: applied.redispatchFromVersion !== null,
    redispatchFromVersion: applied.redispatchFromVersion,
    redispatchMarked: applied.redispatchMarked,
    requestsMerged: applied.requestsMerged,
    previousOffset: applied.previousOffset,
    queued: applied.queued,
  };
}

function withoutTickets({ firstTicket: _first, lastTicket: _last, ...request }: PendingReplay): MergedReplay {
  return request;
}

/** The search attributes (for the UI's list) and the current details (for the workflow's page). */
function publishState(state: SourceState): void {
  publishSearchAttributes(state);
  showDetails(state);
}

/** CdfState and CdfLastVersion, so the UI's list can be filtered by them; only sent when they change. */
function publishSearchAttributes(state: SourceState): void {
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
  setHandler(pollNowSignal, () => void (state.pollRequested = true), { description: 'Start the next capture cycle now. Input: {}' });
  setHandler(replayFromVersionSignal, (request) => receiveReplaySignal(state, request), {
    description:
      'Capture again from a Delta version: rewinds the offset. Every change captured is dispatched once; with "redispatch": true the ids changed from that version on are dispatched again. Requests that arrive before the rewind runs are merged: captured again from the smallest version, dispatched again from the smallest version of those asking for redispatch. Input: {"fromVersion": 12, "redispatch": false, "reason": "…"}',
  });
  setHandler(replayFromVersionUpdate, (request) => replayAnswer(state, validateReplayRequest(request)), {
    validator: (request) => void validateReplayRequest(request),
    description:
      'Like the replayFromVersion signal, but waits until the offset is rewound, answers with the replay applied (merged with other requests, if any arrived before it ran) and fails with the reason if the version is refused. Input: {"fromVersion": 12, "redispatch": false, "reason": "…"}',
  });
  setHandler(pauseSignal, (request) => pause(state, request?.reason), { description: 'Stop capturing after the current range until resume. Input: {"reason": "…"}' });
  setHandler(resumeSignal, () => resume(state), { description: 'Resume capturing and run a cycle now. Input: {}' });
  setHandler(captureNowUpdate, () => captureNow(state), {
    validator: (_request: EmptyRequest) => refuseWhilePaused(state),
    description: 'Run a capture cycle now and return its report (ranges, counts, offset). Input: {}',
  });
}

/** A signal cannot refuse its sender: a bad payload is recorded in status.lastRejected and changes nothing. */
function receiveReplaySignal(state: SourceState, request: unknown): void {
  try {
    acceptReplay(state, validateReplayRequest(request));
  } catch (error) {
    state.lastRejected = { handler: 'replayFromVersion', request: recordableRequest(request), reason: (error as Error).message, at: new Date(Date.now()).toISOString() };
    showDetails(state);
  }
}

/** Pausing a paused source updates the reason; it has been paused since the first pause. */
function pause(state: SourceState, reason: unknown): void {
  state.paused = { reason: typeof reason === 'string' ? reason.slice(0, 500) : 'paused by an operator', since: state.paused?.since ?? new Date(Date.now()).toISOString() };
  publishState(state);
}

function resume(state: SourceState): void {
  state.paused = null;
  state.pollRequested = true;
  publishState(state);
}

/** Waits for a cycle that started after the request: one already running may have read the latest version before the caller's commit. */
async function captureNow(state: SourceState): Promise<CycleReport> {
  const target = state.cyclesCompleted + (state.cycleInProgress ? 2 : 1);
  state.pollRequested = true;
  await condition(() => state.cyclesCompleted >= target);
  return state.lastCycle!;
}

function refuseWhilePaused(state: SourceState): void {
  if (state.paused) throw ApplicationFailure.create({ message: `source ${state.source} is paused (${state.paused.reason}): send resume first`, type: 'SourcePaused', nonRetryable: true });
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
    pendingReplay: state.pendingReplay && withoutTickets(state.pendingReplay),
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
  const defaults: CarriedState = {
    cyclesCompleted: 0,
    totals: { ranges: 0, changesRead: 0, registryRowsInserted: 0 },
    lastCycle: null,
    offsetVersion: null,
    latestVersion: null,
    blocked: null,
    pollIntervalSeconds: 30,
    continuedAsNewTimes: 0,
    pollRequested: false,
    paused: null,
    pendingReplay: null,
    replayTickets: 0,
    lastRejected: null,
    latestCommitTimestamp: null,
    offsetCommitTimestamp: null,
    published: { state: '', version: -2 },
    notifyFanIn: false,
    notifiedOffset: null,
    deletedFileRetentionHours: null,
    tableId: null,
    replayGeneration: 0,
    heartbeatTimeoutSeconds: DEFAULT_HEARTBEAT_TIMEOUT_SECONDS,
    activityTimeoutSeconds: DEFAULT_ACTIVITY_TIMEOUT_SECONDS,
    retrying: null,
    blockUnknownErrorsAfterAttempts: DEFAULT_BLOCK_UNKNOWN_AFTER_ATTEMPTS,
  };
  // Defaults first: a state carried by an earlier build may lack a field added since.
  const carried = { ...defaults, ...input.carried };
  return { ...carried, pendingReplay: carriedReplay(carried.pendingReplay), source: input.source, cycleInProgress: false, replayOutcomes: [] };
}

/** A pending replay as an earlier build carried it (a plain request): no update waits on it, so it holds no ticket. */
function carriedReplay(pending: (Partial<PendingReplay> & ReplayRequest) | null): PendingReplay | null {
  if (!pending) return null;
  const { fromVersion, reason } = pending;
  const redispatchFromVersion = pending.redispatchFromVersion !== undefined ? pending.redispatchFromVersion : pending.redispatch ? fromVersion : null;
  return { fromVersion, redispatchFromVersion, ...(reason ? { reason } : {}), requestsMerged: pending.requestsMerged ?? 1, firstTicket: pending.firstTicket ?? 0, lastTicket: pending.lastTicket ?? 0 };
}

function carry(state: SourceState): CarriedState {
  const { source: _source, cycleInProgress: _cycle, replayOutcomes: _outcomes, ...carried } = state;
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
