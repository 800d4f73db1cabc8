import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { replayFromVersionUpdate } from '../../src/workflows/messages';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

async function withPipeline(test: (t: TestPipeline) => Promise<void>): Promise<void> {
  const t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], fanIn: { batchSize: 25 } }));
  try {
    await test(t);
  } finally {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  }
}

const traffic = (t: TestPipeline, seed: number, commits = 3) => writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits, maxOpsPerCommit: 15, idSpace: 120, seed });
const idsOf = (written: WrittenChange[]) => new Set(written.map((w) => w.utsId));
const replay = (t: TestPipeline, request: { fromVersion: number; redispatch?: boolean }) =>
  t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders')).executeUpdate(replayFromVersionUpdate, { args: [request] });

/** The ids of one run's batches. */
async function dispatched(t: TestPipeline, runKey: string): Promise<Set<string>> {
  const rows = await t.lakehouse.db.all<{ uts_id: string }>(`SELECT uts_id FROM cdf.dispatch_batches WHERE run_key = ?`, [runKey]);
  return new Set(rows.map((r) => r.uts_id));
}

describe('a source table that is dropped and created again', () => {
  it('is blocked, and after a replay from 0 every change of the new table is registered and dispatched, although its keys collide with the old table\'s', () =>
    withPipeline(async (t) => {
      const table = t.config.sources[0]!.table;
      const old = await traffic(t, 71);
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect((await runFanIn(t.client, t.config)).changedIds).toBe(idsOf(old).size);
      const oldId = (await t.lakehouse.engine.describe(table)).tableId;

      // DROP + CREATE: a new id, versions from 0 again; the same seed writes the same ids at the same versions.
      await t.lakehouse.engine.dropTable(table);
      await ensureDemoSourceTable(t.lakehouse, t.config.sources[0]!);
      const recreated = await traffic(t, 71);
      const { tableId: newId, latestVersion } = await t.lakehouse.engine.describe(table);
      expect(newId).not.toBe(oldId);
      expect(recreated.map((w) => `${w.utsId}@${w.version}`)).toEqual(old.map((w) => `${w.utsId}@${w.version}`));
      const blocked = await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect(blocked.blocked?.type).toBe('CDF_TABLE_REPLACED');

      await replay(t, { fromVersion: 0 });
      const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect(report).toEqual(expect.objectContaining({ blocked: null, offsetVersion: latestVersion }));
      const registered = await t.lakehouse.db.all<{ k: string }>(`SELECT uts_id || '@' || commit_version AS k FROM cdf.change_registry WHERE table_id = ?`, [newId]);
      expect(new Set(registered.map((r) => r.k))).toEqual(new Set(recreated.map((w) => `${w.utsId}@${w.version}`)));

      const next = await runFanIn(t.client, t.config);
      expect(next).toEqual(expect.objectContaining({ committed: true, changedIds: idsOf(recreated).size }));
      expect(next.windows).toEqual([expect.objectContaining({ source: 'orders', tableId: newId, afterVersion: -1, throughVersion: latestVersion })]);
      expect(await dispatched(t, next.runKey)).toEqual(idsOf(recreated));
    }));
});

describe('a source table that is replaced (CREATE OR REPLACE)', () => {
  it('is blocked, and after a replay from the replace every change of the new table is dispatched', () =>
    withPipeline(async (t) => {
      const table = t.config.sources[0]!.table;
      await traffic(t, 72);
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      await runFanIn(t.client, t.config);

      // Versions continue; the replace commit deletes every row under the new id.
      const before = new Set((await t.lakehouse.db.all<{ k: string }>(`SELECT uts_id AS k FROM ${table}`)).map((r) => r.k));
      const { version: replacedAt, tableId: newId } = await t.lakehouse.engine.replaceTable(table);
      const after = await traffic(t, 73);
      expect((await captureUntilCaughtUp(t.client, t.config, 'orders')).blocked?.type).toBe('CDF_TABLE_REPLACED');

      await replay(t, { fromVersion: replacedAt });
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const next = await runFanIn(t.client, t.config);
      const expected = new Set([...before, ...idsOf(after)]);
      expect(next).toEqual(expect.objectContaining({ committed: true, changedIds: expected.size }));
      expect(next.windows).toEqual([expect.objectContaining({ tableId: newId, afterVersion: -1 })]);
      expect(await dispatched(t, next.runKey)).toEqual(expected);
    }));
});

describe('replay and dispatch', () => {
  it('a replay without redispatch dispatches nothing already dispatched', () =>
    withPipeline(async (t) => {
      await traffic(t, 74);
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      await runFanIn(t.client, t.config);
      await replay(t, { fromVersion: 1 });
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      expect(await runFanIn(t.client, t.config)).toEqual(expect.objectContaining({ outcome: 'nothing to dispatch', changedIds: 0 }));
    }));

  it('a replay with redispatch from above the dispatch watermark leaves the changes waiting for dispatch in the window', () =>
    withPipeline(async (t) => {
      await traffic(t, 76, 2);
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      await runFanIn(t.client, t.config);
      const pending = await traffic(t, 77, 3); // captured, not dispatched yet
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const { latestVersion } = await t.lakehouse.engine.describe(t.config.sources[0]!.table);
      await replay(t, { fromVersion: latestVersion, redispatch: true });
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const next = await runFanIn(t.client, t.config);
      expect(await dispatched(t, next.runKey)).toEqual(idsOf(pending));
    }));

  it('a replay with redispatch: true dispatches every id changed from that version again', () =>
    withPipeline(async (t) => {
      const written = await traffic(t, 75, 4);
      await startSourceWorkflows(t.client, t.config);
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      await runFanIn(t.client, t.config);
      await replay(t, { fromVersion: 3, redispatch: true });
      await captureUntilCaughtUp(t.client, t.config, 'orders');
      const again = await runFanIn(t.client, t.config);
      // An id whose newest change is at version 3 or later: the view keys ids by their newest change.
      const newest = new Map<string, number>();
      for (const w of written) newest.set(w.utsId, Math.max(newest.get(w.utsId) ?? 0, w.version));
      const expected = new Set([...newest].filter(([, version]) => version >= 3).map(([id]) => id));
      expect(again).toEqual(expect.objectContaining({ committed: true, changedIds: expected.size }));
      expect(await dispatched(t, again.runKey)).toEqual(expected);
      expect(expected.size).toBeGreaterThan(0);
    }));
});
