import { sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { Lakehouse } from '../../src/lakehouse/port';
import { pauseSignal, pollNowSignal, replayFromVersionUpdate, resumeSignal, sourceStatusQuery, type SourceStatus } from '../../src/workflows/messages';
import { recordHistories } from '../replay/record';
import { CdfState } from '../../src/workflows/searchAttributes';
import { UNKNOWN_ERROR_REMEDY } from '../../src/workflows/visibleRetries';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { eventTimeMs, fetchHistory, localActivityType } from '../support/history';
import { writeRandomTraffic } from '../support/traffic';

/**
 * A capture step that keeps failing is never silent: after its first burst of attempts the
 * source's status (and CdfState) says `retrying`, with the error and the attempts so far. An error
 * nothing recognises blocks the source after capture.blockUnknownErrorsAfterAttempts; a
 * recognised transient one retries for as long as it lasts.
 */
describe('a capture step that keeps failing', () => {
  let t: TestPipeline<Lakehouse>;
  let real: LocalLakehouse;
  let failWith: Error | null = null;

  const handle = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
  const status = () => handle().query(sourceStatusQuery);
  const cdfState = async () => (await handle().describe()).typedSearchAttributes.get(CdfState);

  async function waitFor(what: string, done: (s: SourceStatus) => boolean, timeoutMs = 60_000): Promise<SourceStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const current = await status();
      if (done(current)) return current;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last status ${JSON.stringify(current)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** The longest a status query took, querying every 200 ms for this long. */
  async function slowestQueryOver(periodMs: number): Promise<number> {
    let slowest = 0;
    for (const end = Date.now() + periodMs; Date.now() < end; ) {
      const started = Date.now();
      await status();
      slowest = Math.max(slowest, Date.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return slowest;
  }

  beforeAll(async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], capture: { blockUnknownErrorsAfterAttempts: 6 } });
    real = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    // The lakehouse as the worker sees it: reading the feed throws whatever the test sets.
    const flaky = new Proxy(real, {
      get(target, property, receiver) {
        if (property === 'appendRangeToRegistry') {
          return async (...args: Parameters<Lakehouse['appendRangeToRegistry']>) => {
            if (failWith) throw failWith;
            return target.appendRangeToRegistry(...args);
          };
        }
        const value = Reflect.get(target, property, receiver) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    t = await startWorkerOn<Lakehouse>(config, flaky);
    await writeRandomTraffic(real, config.sources[0]!, { commits: 3, maxOpsPerCommit: 10, idSpace: 100, seed: 7 });
  });

  afterAll(async () => {
    // This history holds failed bursts, the waits between them, a block and a recovery: the paths a happy-path recording never takes.
    if (process.env.RECORD_HISTORIES) await recordHistories(t.client, { sourceIngest: sourceWorkflowId(t.config, 'orders') }, 'retries');
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('shows an unrecognised error as retrying with its attempts, then blocks with its message and a remedy', async () => {
    failWith = new Error('the warehouse said something nobody planned for');
    await startSourceWorkflows(t.client, t.config);

    const retrying = await waitFor('retrying', (s) => s.retrying !== null);
    expect(retrying.retrying).toMatchObject({ type: 'UNCLASSIFIED', attempts: 3, recognised: false, message: expect.stringContaining('nobody planned for') });
    expect(retrying.blocked).toBeNull();
    expect(await cdfState()).toBe('retrying');

    const blocked = await waitFor('blocked', (s) => s.blocked !== null);
    expect(blocked.blocked).toMatchObject({ type: 'UNCLASSIFIED', remedy: UNKNOWN_ERROR_REMEDY });
    expect(blocked.blocked!.message).toMatch(/nobody planned for \(failed 6 times since /);
    expect(blocked.retrying).toBeNull();
    expect(await cdfState()).toBe('blocked');
  });

  it('captures again once the cause is fixed and an operator signals pollNow', async () => {
    failWith = null;
    await handle().signal(pollNowSignal, {});
    const recovered = await waitFor('caught up', (s) => s.blocked === null && s.lagVersions === 0);
    expect(recovered.retrying).toBeNull();
    expect(await cdfState()).toBe('capturing');
  });

  it('retries a recognised transient error past that limit without blocking, and shows it meanwhile', async () => {
    failWith = new Error('[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent update. SQLSTATE: 2D521');
    await writeRandomTraffic(real, t.config.sources[0]!, { commits: 1, maxOpsPerCommit: 5, idSpace: 100, seed: 8 });
    await handle().signal(pollNowSignal, {});
    const stillRetrying = await waitFor('9 attempts', (s) => (s.retrying?.attempts ?? 0) >= 9);
    expect(stillRetrying.retrying).toMatchObject({ type: 'DELTA_CONCURRENT_APPEND', recognised: true });
    expect(stillRetrying.blocked).toBeNull();

    failWith = null;
    await handle().signal(pollNowSignal, {});
    const recovered = await waitFor('caught up', (s) => s.retrying === null && s.lagVersions === 0);
    expect(recovered.blocked).toBeNull();
  });

  it('answers a status query within a second while a failing range waits out its backoff', async () => {
    const since = Date.now();
    failWith = new Error('[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent update. SQLSTATE: 2D521');
    await writeRandomTraffic(real, t.config.sources[0]!, { commits: 1, maxOpsPerCommit: 5, idSpace: 100, seed: 10 });
    await handle().signal(pollNowSignal, {});
    await waitFor('retrying', (s) => s.retrying !== null);
    const slowest = await slowestQueryOver(8_000);
    expect(slowest).toBeLessThan(1_000);

    failWith = null;
    await handle().signal(pollNowSignal, {});
    await waitFor('caught up', (s) => s.retrying === null && s.lagVersions === 0);
    // No capture step runs as a local activity, which would hold the workflow task a query waits for.
    const events = ((await fetchHistory(t.client, sourceWorkflowId(t.config, 'orders'))).events ?? []).filter((e) => eventTimeMs(e) >= since);
    expect(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'captureRange').length).toBeGreaterThan(0);
    expect(events.filter((e) => localActivityType(e) !== undefined)).toHaveLength(0);
  });

  it('gives way to a replay and to a pause while retrying: neither waits for the error to clear', async () => {
    failWith = new Error('[DELTA_CONCURRENT_APPEND] Files were added to the root of the table by a concurrent update. SQLSTATE: 2D521');
    await writeRandomTraffic(real, t.config.sources[0]!, { commits: 1, maxOpsPerCommit: 5, idSpace: 100, seed: 9 });
    await handle().signal(pollNowSignal, {});
    await waitFor('retrying', (s) => s.retrying !== null);

    const accepted = await handle().executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 1, reason: 'test' }] });
    expect(accepted).toMatchObject({ fromVersion: 1 });
    await waitFor('the rewound offset', (s) => s.offsetVersion === 0 && s.retrying !== null);

    await handle().signal(pauseSignal, { reason: 'investigating' });
    await waitFor('paused', (s) => s.paused !== null);
    // The step in flight when the pause arrived (at most one burst: 1 s + 2 s) may still finish ...
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    const settled = await status();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    // ... and after it nothing runs while paused: no cycle, no attempt.
    const later = await status();
    expect(later.cyclesCompleted).toBe(settled.cyclesCompleted);
    expect(later.retrying?.attempts ?? 0).toBe(settled.retrying?.attempts ?? 0);
    expect(await cdfState()).toBe('paused');

    failWith = null;
    await handle().signal(resumeSignal, {});
    const recovered = await waitFor('caught up', (s) => s.paused === null && s.retrying === null && s.lagVersions === 0);
    expect(recovered.blocked).toBeNull();
  });
});
