import { Worker } from '@temporalio/worker';
import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { fanInStatusQuery } from '../../src/workflows/messages';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';
import { recordHistories } from '../replay/record';

/**
 * Three sources with random inserts, updates and deletes over several commits, captured and fanned
 * in by the real worker on the real dev server; every assertion compares against what the test
 * itself wrote upstream.
 */
describe('the pipeline end to end on a real Temporal dev server', () => {
  let t: TestPipeline;
  let written: WrittenChange[];
  let summary: FanInSummary;
  let fanInId: string;

  beforeAll(async () => {
    const config = testConfig({ fanIn: { batchSize: 40, concurrency: 3 }, capture: { maxVersionsPerRange: 2 } });
    t = await startTestPipeline(config);
    written = [];
    for (const [index, source] of config.sources.entries()) {
      written.push(...(await writeRandomTraffic(t.lakehouse, source, { commits: 6, maxOpsPerCommit: 30, idSpace: 400, seed: 1000 + index })));
    }
    await startSourceWorkflows(t.client, config);
    for (const source of config.sources) await captureUntilCaughtUp(t.client, config, source.name);
    fanInId = fanInWorkflowId(config);
    summary = await runFanIn(t.client, config);
  });

  afterAll(async () => {
    try {
      if (process.env.RECORD_HISTORIES) await recordHistories(t.client, { sourceIngest: sourceWorkflowId(t.config, 'orders'), fanIn: fanInId });
    } finally {
      await terminateWorkflows(t.client, t.config);
      await t.stop();
    }
  });

  const changedIds = () => new Set(written.map((w) => w.utsId));

  it('registers exactly the (source, uts_id, commit_version) set that was written upstream', async () => {
    const expected = new Set(written.map((w) => `${w.source}|${w.utsId}|${w.version}`));
    const rows = await t.lakehouse.db.all<{ k: string }>(`SELECT source || '|' || uts_id || '|' || commit_version AS k FROM cdf.change_registry`);
    expect(rows.length).toBe(expected.size);
    expect(new Set(rows.map((r) => r.k))).toEqual(expected);
  });

  it('records the change type of each registered change', async () => {
    const rows = await t.lakehouse.db.all<{ k: string; change_type: string }>(
      `SELECT source || '|' || uts_id || '|' || commit_version AS k, change_type FROM cdf.change_registry`,
    );
    const types = new Map(rows.map((r) => [r.k, r.change_type]));
    for (const w of written) {
      expect(types.get(`${w.source}|${w.utsId}|${w.version}`)).toBe(w.op === 'update' ? 'update_postimage' : w.op);
    }
  });

  it('moves every offset to its source table latest version', async () => {
    for (const source of t.config.sources) {
      const { latestVersion } = await t.lakehouse.engine.describe(source.table);
      expect((await t.lakehouse.readOffset(source.name))?.lastVersion).toBe(latestVersion);
    }
  });

  it('puts every changed uts_id in exactly one batch', async () => {
    const rows = await t.lakehouse.db.all<{ uts_id: string; batches: bigint }>(
      `SELECT uts_id, count(*) AS batches FROM cdf.dispatch_batches WHERE run_key = ? GROUP BY uts_id`,
      [summary.runKey],
    );
    expect(new Set(rows.map((r) => r.uts_id))).toEqual(changedIds());
    expect(rows.every((r) => r.batches === 1n)).toBe(true);
    expect(summary.changedIds).toBe(changedIds().size);
    expect(summary.batches).toBe(Math.ceil(changedIds().size / 40));
  });

  it('runs each batch once and every run succeeds', async () => {
    expect(summary.batchesSucceeded).toBe(summary.batches);
    expect(summary.launches).toBe(summary.batches);
    expect(await t.jobs.runCount()).toBe(summary.batches);
    const requests = await t.jobs.launchRequests();
    expect([...requests.keys()].sort()).toEqual(
      Array.from({ length: summary.batches }, (_, i) => `${summary.runKey}-b${i + 1}-a1`).sort(),
    );
  });

  it('leaves the target table equal to the master rows of the changed ids', async () => {
    const master = await t.lakehouse.db.all<{ k: string; uts_id: string }>(
      `SELECT uts_id, uts_id || '|' || display_name || '|' || score || '|' || updated_at AS k FROM demo.entity_master`,
    );
    const ids = changedIds();
    const expected = new Set(master.filter((m) => ids.has(m.uts_id)).map((m) => m.k));
    const target = await t.lakehouse.db.all<{ k: string }>(
      `SELECT uts_id || '|' || display_name || '|' || score || '|' || master_updated_at AS k FROM demo.entity_target`,
    );
    expect(expected.size).toBe(ids.size);
    expect(new Set(target.map((r) => r.k))).toEqual(expected);
  });

  it('commits the fan-in run and returns counts and run links, never id lists', () => {
    expect(summary.committed).toBe(true);
    expect(summary.batchResults).toHaveLength(summary.batches);
    expect(summary.batchResults[0]).toEqual(
      expect.objectContaining({ batchNumber: 1, attempts: 1, status: 'succeeded', runPageUrl: expect.stringMatching(/^local-runner:\/\/runs\//) }),
    );
    expect(JSON.stringify(summary)).not.toMatch(/u0000/);
  });

  it('answers the fanInStatus query of a finished fan-in with its phase and batch counts', async () => {
    const status = await t.client.workflow.getHandle(fanInId).query(fanInStatusQuery);
    expect(status).toEqual(
      expect.objectContaining({ runKey: summary.runKey, phase: 'done', changedIds: summary.changedIds, batches: summary.batches, batchesSucceeded: summary.batches, batchesRunning: 0, batchesParked: 0, runningBatches: [] }),
    );
  });

  it('replays its own recorded histories against the current workflow code', async () => {
    const workflowIds = [...t.config.sources.map((s) => sourceWorkflowId(t.config, s.name)), fanInId];
    for (const workflowId of workflowIds) {
      const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
      await expect(Worker.runReplayHistory({ workflowBundle: { codePath: process.env.CDF_TEST_WORKFLOW_BUNDLE! } }, history, workflowId)).resolves.toBeUndefined();
    }
  });

  it('dispatches nothing on the next fan-in when nothing changed', async () => {
    const next = await runFanIn(t.client, t.config);
    expect(next).toEqual(expect.objectContaining({ changedIds: 0, batches: 0, launches: 0 }));
    expect(await t.jobs.runCount()).toBe(summary.batches);
  });
});
