import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import type { TestConfigOverrides } from '../support/pipeline';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { fetchHistory, maxActivityAttempt } from '../support/history';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

async function withPipeline(overrides: TestConfigOverrides, test: (t: TestPipeline) => Promise<void>): Promise<void> {
  const t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], ...overrides }));
  try {
    await test(t);
  } finally {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  }
}

const registryKeys = async (t: TestPipeline) =>
  new Set((await t.lakehouse.db.all<{ k: string }>(`SELECT uts_id || '|' || commit_version AS k FROM cdf.change_registry`)).map((r) => r.k));

const writtenKeys = (written: WrittenChange[]) => new Set(written.map((w) => `${w.utsId}|${w.version}`));

describe('failures on the way', () => {
  it('absorbs transient Delta write conflicts by retrying with backoff, and still registers every change once', () =>
    withPipeline({ faults: { transientConflictRate: 0.5 }, capture: { maxVersionsPerRange: 1 } }, async (t) => {
      const written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 12, maxOpsPerCommit: 15, idSpace: 200, seed: 5 });
      await startSourceWorkflows(t.client, t.config);
      const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect(report.blocked).toBeNull();
      expect(await registryKeys(t)).toEqual(writtenKeys(written));
      const history = await fetchHistory(t.client, sourceWorkflowId(t.config, 'orders'));
      expect(maxActivityAttempt(history)).toBeGreaterThan(1);
    }));

  it('relaunches a failed downstream run under a new token and commits once every batch succeeded', () =>
    // Which first attempts fail depends on the (time-based) run key: enough batches that some fail and some do not.
    withPipeline({ jobs: { failFirstAttemptRate: 0.5 }, fanIn: { batchSize: 2, concurrency: 4 } }, async (t) => {
      const written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 3, maxOpsPerCommit: 30, idSpace: 200, seed: 9 });
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const summary = await runFanIn(t.client, t.config);
      const runs = await t.jobs.runRecords();
      const relaunched = runs.filter((r) => r.attempt === 2);
      expect(relaunched.length).toBeGreaterThan(0);
      expect(runs.filter((r) => r.attempt === 1 && r.resultState === 'FAILED')).toHaveLength(relaunched.length);
      expect(summary).toEqual(expect.objectContaining({ outcome: 'dispatched', batchesSucceeded: summary.batches, batchesParked: 0, committed: true }));
      expect(summary.changedIds).toBe(new Set(written.map((w) => w.utsId)).size);
      expect(summary.launches).toBe(summary.batches + relaunched.length);
      expect(summary.relaunches).toBe(relaunched.length);
      expect(runs).toHaveLength(summary.batches + relaunched.length);
      expect([...(await t.jobs.launchRequests()).values()].every((n) => n === 1)).toBe(true);
    }));

  it('blocks a source whose next versions were vacuumed, with the remedy, and moves no offset', () =>
    withPipeline({}, async (t) => {
      const source = t.config.sources[0]!;
      await writeRandomTraffic(t.lakehouse, source, { commits: 2, maxOpsPerCommit: 10, idSpace: 100, seed: 3 });
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const offsetBefore = (await t.lakehouse.readOffset('orders'))!.lastVersion;
      await writeRandomTraffic(t.lakehouse, source, { commits: 3, maxOpsPerCommit: 10, idSpace: 100, seed: 4 });
      await t.lakehouse.engine.vacuum(source.table, offsetBefore + 3);
      const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect(report.blocked).toEqual(expect.objectContaining({ type: 'DELTA_FILE_NOT_FOUND_DETAILED', remedy: expect.stringMatching(/replay/i) }));
      expect((await t.lakehouse.readOffset('orders'))!.lastVersion).toBe(offsetBefore);
      const handle = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
      expect((await handle.query(sourceStatusQuery)).blocked?.type).toBe('DELTA_FILE_NOT_FOUND_DETAILED');
      expect((await handle.describe()).status.name).toBe('RUNNING');
    }));
});
