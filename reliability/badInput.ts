/**
 * Bad input: more than 60 malformed inputs at every door of the pipeline (config fields, signal
 * and update payloads of a live source workflow, hostile uts_id values in the source tables, and
 * operator CLI arguments). Each one must be refused with an error that names the problem, or be
 * handled safely; a refused input must leave the database byte-for-byte as it was (so no input can
 * smuggle SQL in or write anything), and the pipeline must keep working afterwards.
 *
 * BUGS FOUND:
 * - A replayFromVersion payload of any size was echoed whole: the refusal quoted the raw value
 *   (`got ${JSON.stringify(fromVersion)}`) and the signal handler kept the raw request in
 *   status.lastRejected. A 200 KB fromVersion string made every status query ~400 KB (the SDK
 *   warned it was over its 512 KB payload limit after two such signals), was carried into the
 *   continue-as-new input, and came back whole in the update's refusal and in `cdf status`.
 *   Fixed: src/workflows/requests.ts `describeValue` (messages quote at most 100 characters) and
 *   `recordableRequest` (lastRejected keeps a request over 1,000 characters as cut JSON text),
 *   used by the replayFromVersion signal handler in src/workflows/sourceIngest.ts.
 * - (Found and fixed meanwhile in the same tree: the replayFromVersionSync update stored its
 *   reason uncut in pendingReplay; the handler now stores validateReplayRequest's result, which
 *   cuts it to 500 characters. The scenario checks it.)
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { ConfigError, parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { quoteIdent } from '../src/lakehouse/local/duck';
import { sourceStatusQuery, type SourceStatus } from '../src/workflows/messages';
import { ROOT, runProcess, writeConfigFile } from '../test/support/cli';
import { changedTables, pipelineChecksum, registryRowsHash, tableChecksums } from './checksum';
import { invariant, scenarioConfig, startInProcessPipeline, type InProcessPipeline, type Invariant, type ScenarioContext, type ScenarioResult } from './context';
import { auditPipeline } from './oracle';

type Category = 'config' | 'signals' | 'utsIds' | 'cli';

/** One malformed input and what became of it. */
interface Attempt {
  category: Category;
  /** What was sent, short enough to read in a report. */
  input: string;
  /** 'rejected': must be refused with a clear error and write nothing; 'handled': accepted and processed safely. */
  expect: 'rejected' | 'handled';
  /** It met its expectation (clear error, or safe handling). */
  ok: boolean;
  /** For rejected inputs: the database checksum after it equals the one before it. */
  databaseUnchanged: boolean | null;
  /** The error message, or what was checked. */
  detail: string;
}

/** A status query answer bigger than this means a payload was stored unbounded in the workflow's state. */
const STATUS_MAX_BYTES = 16 * 1024;
/** A refusal message longer than this echoes the payload instead of naming the problem. */
const MESSAGE_MAX_CHARS = 2000;
/** Pause reasons and replay reasons are cut to this many characters by the workflow. */
const REASON_MAX_CHARS = 500;
const HUGE = 200_000;

export async function badInputScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const config = scenarioConfig(ctx, 'badinput', {
    sources: [
      { name: 'orders', table: 'upstream.orders' },
      // Its own table, so the hostile ids can be checked exactly, apart from ordinary traffic.
      { name: 'weird', table: 'upstream.weird' },
    ],
  });
  const p = await startInProcessPipeline(ctx, config);
  const attempts: Attempt[] = [];
  const invariants: Invariant[] = [];
  try {
    ctx.progress('bad input: writing upstream traffic and capturing it');
    for (let i = 0; i < 3; i++) await p.lakehouse.writeUpstreamCommit('upstream.orders', { insert: 20 });
    await startSourceWorkflows(p.client, config);
    for (const source of config.sources) await captureUntilCaughtUp(p.client, config, source.name);
    const watch = new DatabaseWatch(p);
    await watch.rebase();

    ctx.progress('bad input: config fields');
    attempts.push(...(await configInputs(ctx, watch)));

    ctx.progress('bad input: signal and update payloads to a live source workflow');
    const signals = await signalInputs(p, watch, (m) => ctx.progress(`bad input: ${m}`));
    attempts.push(...signals.attempts);
    invariants.push(...signals.invariants);

    ctx.progress('bad input: operator CLI arguments');
    attempts.push(...(await cliInputs(p, watch)));

    ctx.progress('bad input: hostile uts_id values through capture and fan-in');
    const ids = await utsIdInputs(p);
    attempts.push(...ids.attempts);
    invariants.push(...ids.invariants);

    return result(config, attempts, invariants);
  } finally {
    await p.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The database must not change when an input is refused.

class DatabaseWatch {
  private baseline = '';

  constructor(private readonly p: InProcessPipeline) {}

  /** Takes the current contents as the reference (after a change the scenario made on purpose). */
  async rebase(): Promise<void> {
    this.baseline = await this.checksum();
  }

  async unchanged(): Promise<boolean> {
    return (await this.checksum()) === this.baseline;
  }

  checksum(): Promise<string> {
    return pipelineChecksum(this.p.lakehouse.db, this.p.config.tables);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Config fields: parseConfig must throw a ConfigError naming the field.

interface ConfigCase {
  input: string;
  /** The field path as ConfigError writes it (`sources[0].table`), or `(top level)`. */
  field: string;
  mutate(config: Record<string, any>): void;
}

const INJECTION = 'cdf.change_registry; DROP TABLE cdf.source_offsets';

const CONFIG_CASES: ConfigCase[] = [
  { input: 'table name closing a quote: upstream.orders"; DROP TABLE cdf.change_registry; --', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'upstream.orders"; DROP TABLE cdf.change_registry; --') },
  { input: 'table name with a semicolon', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'upstream.orders; DELETE FROM cdf.source_offsets') },
  { input: 'table name with a -- comment', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'upstream.orders -- comment') },
  { input: 'table name with a /* */ comment', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'upstream./* c */orders') },
  { input: 'table name with a single quote', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = "upstream.orders' OR '1'='1") },
  { input: 'table name with unicode letters (upstream.ördërs)', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'upstream.ördërs') },
  { input: 'empty table name', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = '') },
  { input: 'table name of 300 characters', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = `upstream.${'a'.repeat(300)}`) },
  { input: 'table name of 4 parts (a.b.c.d)', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'main.upstream.orders.extra') },
  { input: 'catalog.schema.table on the local lakehouse', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 'main.upstream.orders') },
  { input: 'table name that is a number', field: 'sources[0].table', mutate: (c) => (c.sources[0].table = 42) },
  { input: 'keyColumn with a double quote', field: 'sources[0].keyColumn', mutate: (c) => (c.sources[0].keyColumn = 'uts_id" FROM x; --') },
  { input: 'extraColumns with an injection', field: 'sources[0].extraColumns[1]', mutate: (c) => (c.sources[0].extraColumns = ['status', 'amount); DROP TABLE cdf.change_registry; --']) },
  { input: 'duplicate source names', field: 'sources[1].name', mutate: (c) => c.sources.push({ name: 'orders', table: 'upstream.orders_v2' }) },
  { input: 'source name with spaces', field: 'sources[0].name', mutate: (c) => (c.sources[0].name = 'my orders') },
  { input: "source name with a quote (o'rders)", field: 'sources[0].name', mutate: (c) => (c.sources[0].name = "o'rders") },
  { input: 'negative startingVersion', field: 'sources[0].startingVersion', mutate: (c) => (c.sources[0].startingVersion = -1) },
  { input: 'sources is a string', field: 'sources', mutate: (c) => (c.sources = 'orders') },
  { input: 'sources is empty', field: 'sources', mutate: (c) => (c.sources = []) },
  { input: 'a source that is null', field: 'sources[0]', mutate: (c) => (c.sources[0] = null) },
  { input: 'negative fanIn.batchSize', field: 'fanIn.batchSize', mutate: (c) => (c.fanIn = { batchSize: -1 }) },
  { input: 'NaN fanIn.batchSize', field: 'fanIn.batchSize', mutate: (c) => (c.fanIn = { batchSize: Number.NaN }) },
  { input: 'fanIn.batchSize as a string "1000"', field: 'fanIn.batchSize', mutate: (c) => (c.fanIn = { batchSize: '1000' }) },
  { input: 'fractional fanIn.concurrency', field: 'fanIn.concurrency', mutate: (c) => (c.fanIn = { concurrency: 1.5 }) },
  { input: 'fanIn.concurrency 1e9', field: 'fanIn.concurrency', mutate: (c) => (c.fanIn = { concurrency: 1e9 }) },
  { input: 'capture.pollIntervalSeconds 0', field: 'capture.pollIntervalSeconds', mutate: (c) => (c.capture = { pollIntervalSeconds: 0 }) },
  { input: 'capture.pollIntervalSeconds "30; DROP TABLE x"', field: 'capture.pollIntervalSeconds', mutate: (c) => (c.capture = { pollIntervalSeconds: '30; DROP TABLE x' }) },
  { input: 'fault rate 1.5', field: 'faults.sql.conflictRate', mutate: (c) => (c.faults = { sql: { conflictRate: 1.5 } }) },
  { input: 'failFirstAttemptRate 2', field: 'jobs.local.failFirstAttemptRate', mutate: (c) => (c.jobs.local.failFirstAttemptRate = 2) },
  { input: 'temporal.address with a path', field: 'temporal.address', mutate: (c) => (c.temporal = { address: 'localhost:7233/evil' }) },
  { input: 'temporal.address with a scheme and no port', field: 'temporal.address', mutate: (c) => (c.temporal = { address: 'http://localhost' }) },
  { input: 'uppercase workflowIdPrefix', field: 'temporal.workflowIdPrefix', mutate: (c) => (c.temporal = { workflowIdPrefix: 'CDF' }) },
  { input: 'taskQueue with spaces and a quote', field: 'temporal.taskQueue', mutate: (c) => (c.temporal = { taskQueue: "cdf 'queue'" }) },
  { input: 'unknown top-level key', field: '(top level)', mutate: (c) => (c.dropTables = true) },
  { input: `tables.registry injection (${INJECTION})`, field: 'tables.registry', mutate: (c) => (c.tables = { registry: INJECTION }) },
  { input: 'tables.target closing a quote', field: 'tables.target', mutate: (c) => (c.tables = { target: 'demo.entity_target"--' }) },
  { input: 'databricks.host with a path injection', field: 'databricks.host', mutate: (c) => (c.databricks = { host: 'adb-1.azuredatabricks.net/../../api/2.0/jobs/delete?x=' }) },
  { input: 'databricks.warehouseHttpPath with a query string', field: 'databricks.warehouseHttpPath', mutate: (c) => (c.databricks = { warehouseHttpPath: '/sql/1.0/warehouses/abc?x=1;DROP' }) },
  { input: 'lakehouse.target with a shell command', field: 'lakehouse.target', mutate: (c) => (c.lakehouse.target = 'local; rm -rf /') },
  { input: 'schedules.fanIn.every "15 minutes"', field: 'schedules.fanIn.every', mutate: (c) => (c.schedules = { fanIn: { every: '15 minutes' } }) },
];

async function configInputs(ctx: ScenarioContext, watch: DatabaseWatch): Promise<Attempt[]> {
  const dir = join(ctx.workDir, 'badinput-config');
  const valid = () => ({
    sources: [{ name: 'orders', table: 'upstream.orders' }],
    lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
    jobs: { local: { path: join(dir, 'jobs.duckdb') } },
  });
  // Without this, a base that is itself invalid would make every case "pass".
  parseConfig(valid(), 'bad-input base config');
  const attempts: Attempt[] = [];
  for (const testCase of CONFIG_CASES) {
    const raw: Record<string, any> = valid();
    testCase.mutate(raw);
    let error: unknown = null;
    try {
      parseConfig(raw, 'bad-input config');
    } catch (caught) {
      error = caught;
    }
    const unchanged = await watch.unchanged();
    const problems = error instanceof ConfigError ? error.problems : [];
    // Each mutation breaks one field: every problem must be about it (the rest of the config is valid).
    const namesField = problems.length > 0 && problems.every((problem) => problem.startsWith(`${testCase.field}:`));
    const ok = error instanceof ConfigError && namesField && error.message.length < MESSAGE_MAX_CHARS;
    const detail = error === null ? 'accepted' : error instanceof ConfigError ? problems.join(' | ') : `not a ConfigError: ${String(error)}`;
    attempts.push({ category: 'config', input: testCase.input, expect: 'rejected', ok, databaseUnchanged: unchanged, detail: preview(detail, 300) });
  }
  return attempts;
}

// ---------------------------------------------------------------------------------------------
// 2. Signal and update payloads to a live source workflow.

interface PayloadCase {
  input: string;
  payload: unknown;
  /** What the refusal must say. */
  says: RegExp;
}

function replayPayloads(latest: number): PayloadCase[] {
  const huge = (fill: string) => fill.repeat(HUGE);
  return [
    { input: '-1 (not an object)', payload: -1, says: /one JSON object/ },
    { input: '{fromVersion: -1}', payload: { fromVersion: -1 }, says: /0 or more/ },
    { input: '{fromVersion: 1.5}', payload: { fromVersion: 1.5 }, says: /whole number/ },
    { input: '{fromVersion: "3; DROP TABLE cdf.change_registry"}', payload: { fromVersion: '3; DROP TABLE cdf.change_registry' }, says: /whole number/ },
    { input: '"1 OR 1=1" (not an object)', payload: '1 OR 1=1', says: /one JSON object/ },
    { input: 'null', payload: null, says: /one JSON object/ },
    { input: '{}', payload: {}, says: /fromVersion must be a whole number/ },
    { input: '[]', payload: [], says: /one JSON object/ },
    { input: '[{fromVersion: 1}]', payload: [{ fromVersion: 1 }], says: /one JSON object/ },
    { input: '{fromVersion: 1e300}', payload: { fromVersion: 1e300 }, says: /whole number/ },
    { input: '{fromVersion: 2^53 + 2}', payload: { fromVersion: Number.MAX_SAFE_INTEGER + 3 }, says: /whole number/ },
    { input: `{fromVersion: latest + 1000 = ${latest + 1000}}`, payload: { fromVersion: latest + 1000 }, says: /past the latest version/ },
    { input: '{fromVersion: "NaN"}', payload: { fromVersion: 'NaN' }, says: /whole number/ },
    { input: '{fromVersion: NaN} (JSON sends null)', payload: { fromVersion: Number.NaN }, says: /whole number/ },
    { input: '{fromVersion: "1"} (a string)', payload: { fromVersion: '1' }, says: /whole number/ },
    { input: '{fromVersion: {$gt: 0}}', payload: { fromVersion: { $gt: 0 } }, says: /whole number/ },
    { input: '{fromVersion: 1, reason: 123}', payload: { fromVersion: 1, reason: 123 }, says: /reason must be a string/ },
    { input: '{fromVersion: "🔥３"} (emoji, fullwidth digit)', payload: { fromVersion: '🔥３' }, says: /whole number/ },
    { input: '{fromVersion: <200 KB string>}', payload: { fromVersion: huge('9') }, says: /whole number/ },
    { input: '{fromVersion: -1, reason: <200 KB string>}', payload: { fromVersion: -1, reason: huge('r') }, says: /0 or more/ },
  ];
}

async function signalInputs(p: InProcessPipeline, watch: DatabaseWatch, progress: (message: string) => void): Promise<{ attempts: Attempt[]; invariants: Invariant[] }> {
  const config = p.config;
  const handle = p.client.workflow.getHandle(sourceWorkflowId(config, 'orders'));
  const latest = (await p.lakehouse.engine.describe('upstream.orders')).latestVersion;
  const offsetNow = async () => (await p.lakehouse.readOffset('orders'))?.lastVersion ?? null;
  const offsetBefore = await offsetNow();
  const attempts: Attempt[] = [];
  const record = (attempt: Omit<Attempt, 'category'>) => attempts.push({ category: 'signals', ...attempt });

  // The update: its validator must refuse the payload to the caller, before anything is recorded.
  for (const c of replayPayloads(latest)) {
    let message = 'accepted';
    let refused = false;
    try {
      await handle.executeUpdate('replayFromVersionSync', { args: [c.payload] });
    } catch (error) {
      refused = error instanceof WorkflowUpdateFailedError;
      message = refused ? ((error as WorkflowUpdateFailedError).cause?.message ?? (error as Error).message) : `unexpected ${String(error)}`;
    }
    const status = await handle.query(sourceStatusQuery);
    const unchanged = await watch.unchanged();
    const ok = refused && c.says.test(message) && message.length < MESSAGE_MAX_CHARS && status.pendingReplay === null && (await offsetNow()) === offsetBefore;
    record({ input: `replayFromVersionSync ${c.input}`, expect: 'rejected', ok, databaseUnchanged: unchanged, detail: preview(message, 300) });
  }
  progress(`${attempts.length} update payloads sent`);

  // The signal cannot answer its sender: the refusal must show in status.lastRejected, bounded.
  for (const c of replayPayloads(latest)) {
    const before = JSON.stringify((await handle.query(sourceStatusQuery)).lastRejected);
    await handle.signal('replayFromVersion', c.payload);
    // A version past the latest is refused by the rewind activity, a moment after the signal.
    const status = await waitFor(() => statusWhere(handle, (s) => JSON.stringify(s.lastRejected) !== before));
    const unchanged = await watch.unchanged();
    const rejected = status?.lastRejected;
    const size = status ? Buffer.byteLength(JSON.stringify(status)) : 0;
    const ok =
      rejected !== undefined && rejected !== null && c.says.test(rejected.reason) && rejected.reason.length < MESSAGE_MAX_CHARS &&
      size < STATUS_MAX_BYTES && status!.pendingReplay === null && status!.offsetVersion === offsetBefore && (await offsetNow()) === offsetBefore;
    const detail = !status
      ? 'nothing recorded in status within the time limit'
      : `lastRejected.reason: ${preview(rejected?.reason ?? null, 200)}; status query ${size} bytes; pendingReplay ${preview(status.pendingReplay, 60)}`;
    record({ input: `replayFromVersion signal ${c.input}`, expect: 'rejected', ok, databaseUnchanged: unchanged, detail });
  }
  progress(`${attempts.length} update and signal payloads sent`);

  const handled = await pauseResumeInputs(p, handle, watch, latest);
  for (const attempt of handled) record(attempt);

  // After all this the workflow must still be running and capture ordinary traffic.
  const description = await handle.describe();
  const registryBefore = await countRows(p, config.tables.registry);
  const commit = await p.lakehouse.writeUpstreamCommit('upstream.orders', { insert: 20 });
  const report = await captureUntilCaughtUp(p.client, config, 'orders');
  const registryAfter = await countRows(p, config.tables.registry);
  await watch.rebase();
  const stillWorks = description.status.name === 'RUNNING' && report.offsetVersion === commit.version && registryAfter === registryBefore + 20 && !report.blocked;
  const failing = (filter: (a: Attempt) => boolean) => attempts.filter((a) => filter(a) && !a.ok).map((a) => `${a.input}: ${a.detail}`);
  return {
    attempts,
    invariants: [
      invariant(
        'signals: every bad replayFromVersionSync payload is refused to the caller with a reason naming the problem',
        failing((a) => a.input.startsWith('replayFromVersionSync')).length === 0,
        failing((a) => a.input.startsWith('replayFromVersionSync')).join('; ') ||
          `${attempts.filter((a) => a.input.startsWith('replayFromVersionSync')).length} payloads refused (WorkflowUpdateFailedError), none pending, offset still ${offsetBefore}`,
      ),
      invariant(
        'signals: every bad replayFromVersion signal is recorded in status.lastRejected with its reason, bounded, and changes nothing',
        failing((a) => a.input.startsWith('replayFromVersion signal')).length === 0,
        failing((a) => a.input.startsWith('replayFromVersion signal')).join('; ') ||
          `${attempts.filter((a) => a.input.startsWith('replayFromVersion signal')).length} payloads rejected; status stayed under ${STATUS_MAX_BYTES} bytes; offset still ${offsetBefore}`,
      ),
      invariant(
        'signals: odd pause/resume/pollNow/captureNow payloads and 200 KB reasons are handled safely',
        failing((a) => handled.some((h) => h.input === a.input)).length === 0,
        failing((a) => handled.some((h) => h.input === a.input)).join('; ') || `${handled.length} payloads: reasons bounded to ${REASON_MAX_CHARS} characters, workflow running, nothing written but the replay's offset (and its ranges' registry rows again, the same rows at a new capture time)`,
      ),
      invariant(
        'signals: the source workflow is still running and captures new traffic normally afterwards',
        stillWorks,
        `workflow ${description.status.name}; capture after the bad payloads reached version ${report.offsetVersion} of ${commit.version}, registry ${registryBefore} → ${registryAfter} rows (+20 expected)`,
      ),
    ],
  };
}

/**
 * Pause with hostile or oversized reasons, replays with 200 KB reasons while paused, and junk
 * payloads to resume, pollNow and captureNow. These are accepted, so the checks are: the workflow
 * keeps running, what it stores is bounded, and the only write is the replay's own offset rewind.
 */
async function pauseResumeInputs(p: InProcessPipeline, handle: WorkflowHandle, watch: DatabaseWatch, latest: number): Promise<Omit<Attempt, 'category'>[]> {
  const attempts: Omit<Attempt, 'category'>[] = [];
  const injectionReason = `maintenance'); DROP TABLE cdf.change_registry; -- "quoted" ; /* */`;
  const huge = 'p'.repeat(HUGE);
  const safely = async (input: string, send: () => Promise<unknown>, check: (s: SourceStatus) => boolean, describe: (s: SourceStatus) => string, opts: { writes?: boolean } = {}) => {
    let sendError: string | null = null;
    try {
      await send();
    } catch (error) {
      sendError = (error as Error).message;
    }
    const status = await waitFor(() => statusWhere(handle, check));
    const running = (await handle.describe()).status.name === 'RUNNING';
    const last = status ?? (await handle.query(sourceStatusQuery));
    const size = Buffer.byteLength(JSON.stringify(last));
    const unchanged = opts.writes ? null : await watch.unchanged();
    const ok = sendError === null && status !== undefined && running && size < STATUS_MAX_BYTES && unchanged !== false;
    attempts.push({
      input,
      expect: 'handled',
      ok,
      databaseUnchanged: unchanged,
      detail: `${sendError ? `send failed: ${sendError}; ` : ''}${status ? '' : 'expected state not reached; '}${describe(last)}; status ${size} bytes; running ${running}`,
    });
  };
  const pausedReason = (s: SourceStatus) => `paused: ${preview(s.paused?.reason ?? null, 80)}`;

  await safely('pause {reason: <SQL injection with quotes and semicolons>}', () => handle.signal('pause', { reason: injectionReason }), (s) => s.paused?.reason === injectionReason, pausedReason);
  await safely('pause {reason: <200 KB string>}', () => handle.signal('pause', { reason: huge }), (s) => s.paused !== null && s.paused.reason.length <= REASON_MAX_CHARS && s.paused.reason.startsWith('ppp'), pausedReason);
  await safely('pause null', () => handle.signal('pause', null), (s) => s.paused?.reason === 'paused by an operator', pausedReason);
  await safely('pause "just a string"', () => handle.signal('pause', 'just a string'), (s) => s.paused?.reason === 'paused by an operator', pausedReason);
  await safely('pause {reason: {nested: "object"}}', () => handle.signal('pause', { reason: { nested: 'object' } }), (s) => s.paused?.reason === 'paused by an operator', pausedReason);
  await safely('pause {reason: <injection>} again (kept for the captureNow below)', () => handle.signal('pause', { reason: injectionReason }), (s) => s.paused?.reason === injectionReason, pausedReason);

  // captureNow while paused: refused, and the refusal quotes the (bounded) reason as plain text.
  let captureMessage = 'accepted';
  try {
    await handle.executeUpdate('captureNow', { args: [{ evil: "'; DROP TABLE x; --" }] });
  } catch (error) {
    captureMessage = error instanceof WorkflowUpdateFailedError ? (error.cause?.message ?? error.message) : `unexpected ${String(error)}`;
  }
  attempts.push({
    input: 'captureNow {evil: "\'; DROP TABLE x; --"} while paused',
    expect: 'rejected',
    ok: /is paused/.test(captureMessage) && captureMessage.length < MESSAGE_MAX_CHARS,
    databaseUnchanged: await watch.unchanged(),
    detail: preview(captureMessage, 200),
  });

  // Valid replays with 200 KB reasons, held while paused so their stored form can be inspected.
  const reasonBounded = (s: SourceStatus) => s.pendingReplay !== null && (s.pendingReplay.reason ?? '').length <= REASON_MAX_CHARS;
  const pending = (s: SourceStatus) => `pendingReplay from ${s.pendingReplay?.fromVersion ?? '-'} with a ${s.pendingReplay?.reason?.length ?? 0}-character reason`;
  await safely(
    `replayFromVersionSync {fromVersion: ${latest}, reason: <200 KB string>} while paused`,
    () => handle.executeUpdate('replayFromVersionSync', { args: [{ fromVersion: latest, reason: 'u'.repeat(HUGE) }] }),
    (s) => s.pendingReplay?.fromVersion === latest && reasonBounded(s),
    pending,
  );
  await safely(
    'replayFromVersion signal {fromVersion: 1, reason: <200 KB string>} while paused',
    () => handle.signal('replayFromVersion', { fromVersion: 1, reason: 's'.repeat(HUGE) }),
    (s) => s.pendingReplay?.fromVersion === 1 && reasonBounded(s),
    pending,
  );

  // Resume with a junk payload: the replay from version 1 runs; the registry stays deduplicated,
  // so the only tables that may change are the offsets (rewound, then advanced again) and the
  // registry's capture times (its ranges written again, the same rows).
  const before = await tableChecksums(p.lakehouse.db, p.config.tables);
  const registryBefore = await registryRowsHash(p.lakehouse.db, p.config.tables);
  const cyclesBefore = (await handle.query(sourceStatusQuery)).cyclesCompleted;
  await safely(
    'resume {fromVersion: "DROP TABLE"} (replays the pending request)',
    () => handle.signal('resume', { fromVersion: 'DROP TABLE' }),
    (s) => s.paused === null && s.pendingReplay === null && s.cyclesCompleted > cyclesBefore && s.offsetVersion === latest,
    (s) => `paused ${s.paused !== null}, pendingReplay ${preview(s.pendingReplay, 40)}, offset ${s.offsetVersion}, cycles ${cyclesBefore} → ${s.cyclesCompleted}`,
    { writes: true },
  );
  const changed = changedTables(before, await tableChecksums(p.lakehouse.db, p.config.tables));
  const registryRowsKept = (await registryRowsHash(p.lakehouse.db, p.config.tables)) === registryBefore;
  const replayWroteOnlyOffsets = registryRowsKept && changed.every((table) => table === 'offsets' || table === 'registry');
  const resumeAttempt = attempts[attempts.length - 1]!;
  resumeAttempt.ok &&= replayWroteOnlyOffsets;
  resumeAttempt.detail += `; tables changed by the replay: ${changed.join(', ') || 'none'}; registry rows ${registryRowsKept ? 'the same (capture times aside)' : 'CHANGED'}`;
  await watch.rebase();

  // Junk in handlers that take `{}`: ignored, a cycle runs and finds nothing new to write.
  const cycles = async () => (await handle.query(sourceStatusQuery)).cyclesCompleted;
  const beforePoll = await cycles();
  await safely('pollNow {fromVersion: "x", reason: <injection>}', () => handle.signal('pollNow', { fromVersion: 'x', reason: injectionReason }), (s) => s.cyclesCompleted > beforePoll, (s) => `cycles ${beforePoll} → ${s.cyclesCompleted}`);
  const beforeCapture = await cycles();
  await safely(
    'captureNow {fromVersion: -1, "\'; DROP TABLE x": 1}',
    () => handle.executeUpdate('captureNow', { args: [{ fromVersion: -1, "'; DROP TABLE x": 1 }] }),
    (s) => s.cyclesCompleted > beforeCapture && s.offsetVersion === latest,
    (s) => `cycles ${beforeCapture} → ${s.cyclesCompleted}, offset ${s.offsetVersion}`,
  );
  return attempts;
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile uts_id values: bound as parameters everywhere, stored and dispatched byte-for-byte.

const HOSTILE_IDS: { input: string; id: string }[] = [
  { input: "single quote (o'brien)", id: "o'brien" },
  { input: 'double quotes', id: 'say "hi"' },
  { input: "x'); DROP TABLE cdf.change_registry; --", id: "x'); DROP TABLE cdf.change_registry; --" },
  { input: '/* c */ comment', id: 'a /* c */ b' },
  { input: '-- c comment', id: 'a -- c' },
  { input: 'backslashes', id: String.raw`back\slash\\ and \' and \n` },
  { input: 'newline, tab, carriage return', id: 'line\nbreak\ttab\rreturn' },
  { input: 'NUL character', id: 'nul\u0000byte' },
  { input: 'unicode letters (ünïcödé)', id: 'ünïcödé' },
  { input: 'emoji with ZWJ sequence', id: '🔥👩‍👩‍👧 emoji' },
  { input: 'RTL text with a right-to-left override', id: 'שלום עולם \u202Eevil' },
  { input: '% and _ (LIKE wildcards)', id: '100%_like' },
  { input: 'the text NULL', id: 'NULL' },
  { input: 'empty string', id: '' },
  { input: 'leading and trailing spaces', id: '  padded  ' },
  { input: '10,000-character id', id: `long10k-${'k'.repeat(10_000 - 8)}` },
  { input: '100,000-character id', id: `long100k-${'m'.repeat(100_000 - 9)}` },
];

async function utsIdInputs(p: InProcessPipeline): Promise<{ attempts: Attempt[]; invariants: Invariant[] }> {
  const { config, lakehouse } = p;
  const table = 'upstream.weird';
  const ids = HOSTILE_IDS.map((h) => h.id);
  const pick = (...inputs: number[]) => inputs.map((i) => ids[i]!);

  // Expected registry rows, (commit_version, change_type) per id, in the order the commits make them.
  const expected = new Map<string, string[]>(ids.map((id) => [id, []]));
  const note = (version: number, type: string, list: string[]) => list.forEach((id) => expected.get(id)!.push(`${version}:${type}`));

  const c1 = await lakehouse.writeUpstreamCommit(table, { insert: ids });
  note(c1.version, 'insert', ids);
  const update2 = pick(0, 2, 9, 15, 16);
  const delete2 = pick(1, 5);
  const c2 = await lakehouse.writeUpstreamCommit(table, { update: update2, delete: delete2 });
  note(c2.version, 'update_postimage', update2);
  note(c2.version, 'delete', delete2);
  const update3 = pick(8, 12, 13);
  const delete3 = pick(2, 16, 7);
  const c3 = await lakehouse.writeUpstreamCommit(table, { update: update3, delete: delete3 });
  note(c3.version, 'update_postimage', update3);
  note(c3.version, 'delete', delete3);
  const deleted = new Set([...delete2, ...delete3]);
  const commitsOk = c1.inserted === ids.length && c2.updated === update2.length && c2.deleted === delete2.length && c3.updated === update3.length && c3.deleted === delete3.length;

  const report = await captureUntilCaughtUp(p.client, config, 'weird');
  const summary = await runFanIn(p.client, config);

  const registry = await lakehouse.db.all<{ uts_id: string; commit_version: bigint; change_type: string }>(
    `SELECT uts_id, commit_version, change_type FROM ${quoteIdent(config.tables.registry)} WHERE source = 'weird' ORDER BY commit_version, change_type`,
  );
  const stored = new Map<string, string[]>();
  for (const row of registry) stored.set(row.uts_id, [...(stored.get(row.uts_id) ?? []), `${row.commit_version}:${row.change_type}`]);
  const strangers = [...stored.keys()].filter((id) => !expected.has(id));

  // The demo job merges master rows into the target; deletes do not remove master rows, so every
  // id ever inserted (deleted ones too) is in the target, as 'Entity ' || id.
  const ordinaryId = `regexp_full_match(uts_id, 'u[0-9]{9}')`;
  const targetRows = await lakehouse.db.all<{ uts_id: string; display_name: string }>(
    `SELECT uts_id, display_name FROM ${quoteIdent(config.tables.target)} WHERE NOT ${ordinaryId}`,
  );
  const target = new Map(targetRows.map((r) => [r.uts_id, r.display_name]));
  const upstream = new Set((await lakehouse.db.all<{ uts_id: string }>(`SELECT uts_id FROM ${quoteIdent(table)}`)).map((r) => r.uts_id));

  const attempts: Attempt[] = HOSTILE_IDS.map(({ input, id }) => {
    const want = expected.get(id)!.sort().join(',');
    const got = (stored.get(id) ?? []).sort().join(',');
    const problems = [
      want !== got ? `registry ${got || 'none'}, expected ${want}` : '',
      target.get(id) !== `Entity ${id}` ? `target display_name ${preview(target.get(id) ?? null, 40)}` : '',
      upstream.has(id) === deleted.has(id) ? `upstream table ${upstream.has(id) ? 'still holds it' : 'lost it'}` : '',
    ].filter(Boolean);
    return { category: 'utsIds', input, expect: 'handled', ok: problems.length === 0, databaseUnchanged: null, detail: problems.join('; ') || `${id.length} characters, registry ${got}` };
  });

  const checksums = await tableChecksums(lakehouse.db, config.tables);
  const missingTables = Object.entries(checksums).filter(([, hash]) => hash === 'missing').map(([key]) => key);
  const audit = await auditPipeline(config, lakehouse, p.runner);
  const auditFailures = audit.invariants.filter((i) => !i.held).map((i) => `${i.name}: ${i.detail}`);
  const failing = attempts.filter((a) => !a.ok).map((a) => `${a.input}: ${a.detail}`);
  const extraTarget = [...target.keys()].filter((id) => !expected.has(id));
  return {
    attempts,
    invariants: [
      invariant(
        'utsIds: the registry holds every hostile uts_id byte-for-byte with its commit versions and change types, and the target its master row',
        commitsOk && failing.length === 0 && strangers.length === 0 && extraTarget.length === 0 && !report.blocked,
        [
          commitsOk ? '' : `commits did not apply as written (${JSON.stringify([c1, c2, c3].map((c) => [c.inserted, c.updated, c.deleted]))})`,
          report.blocked ? `capture blocked: ${report.blocked.message}` : '',
          strangers.length ? `registry ids not written upstream: ${strangers.map((s) => preview(s, 40)).join(', ')}` : '',
          extraTarget.length ? `target ids not written upstream: ${extraTarget.map((s) => preview(s, 40)).join(', ')}` : '',
          ...failing,
        ]
          .filter(Boolean)
          .join('; ') || `${ids.length} ids over versions ${c1.version}–${c3.version}: ${registry.length} registry rows as expected; ${target.size} target rows; fan-in dispatched ${summary.changedIds} ids in ${summary.batches} batches`,
      ),
      invariant(
        'utsIds: every pipeline table still exists and the whole pipeline audits clean (nothing lost, nothing duplicated)',
        missingTables.length === 0 && auditFailures.length === 0 && audit.lost === 0 && audit.duplicated === 0 && audit.duplicateLaunches === 0,
        [missingTables.length ? `missing tables: ${missingTables.join(', ')}` : '', ...auditFailures].filter(Boolean).join('; ') ||
          `${Object.keys(checksums).length} tables present; audit: ${audit.changesChecked} changes, ${audit.registryRows} registry rows, ${audit.batches} batches, lost 0, duplicated 0`,
      ),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Operator CLI arguments: non-zero exit, a message naming the problem, nothing changed.

interface CliCase {
  input: string;
  args: (configFile: string, latest: number) => string[];
  says: RegExp;
}

const CLI_CASES: CliCase[] = [
  { input: 'replay orders --from abc', args: (f) => ['--config', f, 'replay', 'orders', '--from', 'abc'], says: /--from.*invalid.*whole number/s },
  { input: 'replay orders --from -1', args: (f) => ['--config', f, 'replay', 'orders', '--from', '-1'], says: /--from.*'-1' is invalid.*whole number/s },
  { input: 'replay orders --from 1e3x', args: (f) => ['--config', f, 'replay', 'orders', '--from', '1e3x'], says: /--from.*invalid.*whole number/s },
  { input: 'replay orders --from 1.5', args: (f) => ['--config', f, 'replay', 'orders', '--from', '1.5'], says: /--from.*invalid.*whole number/s },
  { input: 'replay orders --from 9007199254740993', args: (f) => ['--config', f, 'replay', 'orders', '--from', '9007199254740993'], says: /--from.*invalid.*whole number/s },
  { input: 'replay orders --from <latest + 1000>', args: (f, latest) => ['--config', f, 'replay', 'orders', '--from', String(latest + 1000)], says: /past the latest version/ },
  { input: 'replay "orders; DROP TABLE x" --from 1', args: (f) => ['--config', f, 'replay', 'orders; DROP TABLE x', '--from', '1'], says: /orders; DROP TABLE x is not in the config/ },
  { input: 'replay orders (no --from)', args: (f) => ['--config', f, 'replay', 'orders'], says: /required option '--from/ },
  { input: 'status nosuchsource', args: (f) => ['--config', f, 'status', 'nosuchsource'], says: /nosuchsource is not in the config/ },
  { input: "pause \"orders' --\"", args: (f) => ['--config', f, 'pause', "orders' --"], says: /orders' -- is not in the config/ },
  { input: 'unknown command drop-tables', args: (f) => ['--config', f, 'drop-tables'], says: /unknown command 'drop-tables'/ },
  { input: '--config /nonexistent.yaml status', args: () => ['--config', '/nonexistent.yaml', 'status'], says: /nonexistent\.yaml.*does not exist/s },
];

async function cliInputs(p: InProcessPipeline, watch: DatabaseWatch): Promise<Attempt[]> {
  const configFile = writeConfigFile(p.config);
  const latest = (await p.lakehouse.engine.describe('upstream.orders')).latestVersion;
  const handle = p.client.workflow.getHandle(sourceWorkflowId(p.config, 'orders'));
  // The config file decides; overrides the caller's shell may carry would point elsewhere.
  const env = { TEMPORAL_ADDRESS: p.config.temporal.address, TEMPORAL_NAMESPACE: undefined, CDF_TASK_QUEUE: undefined, CDF_CONFIG: undefined };
  const attempts: Attempt[] = [];
  for (const c of CLI_CASES) {
    const run = await runProcess(join(ROOT, 'bin', 'cdf'), c.args(configFile, latest), env);
    const status = await handle.query(sourceStatusQuery);
    const unchanged = await watch.unchanged();
    const ok = run.code !== 0 && run.code !== null && c.says.test(run.stderr) && status.pendingReplay === null && status.paused === null;
    attempts.push({
      category: 'cli',
      input: `cdf ${c.input}`,
      expect: 'rejected',
      ok,
      databaseUnchanged: unchanged,
      detail: `exit ${run.code}: ${preview(run.stderr.trim().split('\n').slice(0, 2).join(' / '), 200)}`,
    });
  }
  return attempts;
}

// ---------------------------------------------------------------------------------------------
// The result.

function result(config: Config, attempts: Attempt[], categoryInvariants: Invariant[]): ScenarioResult {
  const count = (category: Category) => attempts.filter((a) => a.category === category).length;
  const failing = (filter: (a: Attempt) => boolean) => attempts.filter(filter).map((a) => `${a.input}: ${a.detail}`);
  const configFailures = failing((a) => a.category === 'config' && !a.ok);
  const cliFailures = failing((a) => a.category === 'cli' && !a.ok);
  const rejected = attempts.filter((a) => a.expect === 'rejected');
  const changedOnRejection = failing((a) => a.databaseUnchanged === false);
  const invariants: Invariant[] = [
    invariant(`at least 60 malformed inputs tried`, attempts.length >= 60, `${attempts.length} inputs`),
    invariant(
      'config: every malformed config is refused with a ConfigError naming the field',
      configFailures.length === 0,
      configFailures.join('; ') || `${count('config')} configs refused, each problem naming its field`,
    ),
    ...categoryInvariants,
    invariant('cli: every bad command line exits non-zero with a message naming the problem', cliFailures.length === 0, cliFailures.join('; ') || `${count('cli')} command lines refused`),
    invariant(
      'database unchanged after every rejected input',
      changedOnRejection.length === 0 && rejected.every((a) => a.databaseUnchanged !== null),
      changedOnRejection.join('; ') || `checksum of every pipeline, upstream and _delta table identical after each of ${rejected.length} rejected inputs`,
    ),
  ];
  return {
    name: 'badInput',
    figures: {
      badInputs: attempts.length,
      byCategory: { config: count('config'), signals: count('signals'), utsIds: count('utsIds'), cli: count('cli') },
      rejectedWithClearError: rejected.filter((a) => a.ok).length,
      handledSafely: attempts.filter((a) => a.expect === 'handled' && a.ok).length,
      failed: attempts.filter((a) => !a.ok).length,
      inputs: attempts.map((a) => ({ category: a.category, input: a.input, expect: a.expect, ok: a.ok, databaseUnchanged: a.databaseUnchanged, detail: a.detail })),
    },
    invariants,
    taskQueues: [config.temporal.taskQueue],
    logFiles: [],
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/** A value as short readable text: JSON, cut with its full length noted. */
function preview(value: unknown, max: number): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** The status when it satisfies `check`, else undefined. */
async function statusWhere(handle: WorkflowHandle, check: (status: SourceStatus) => boolean): Promise<SourceStatus | undefined> {
  const status = await handle.query(sourceStatusQuery);
  return check(status) ? status : undefined;
}

/** Polls `probe` until it returns a value or the time is up (then undefined: the caller records the failure). */
async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined || Date.now() > deadline) return value;
    await sleep(100);
  }
}

async function countRows(p: InProcessPipeline, table: string): Promise<number> {
  const [row] = await p.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM ${quoteIdent(table)}`);
  return Number(row!.n);
}
