import { setTimeout as sleep } from 'node:timers/promises';
import type { PurgeReport } from '../../src/activities';
import { captureUntilCaughtUp, runFanIn, startSourceWorkflows } from '../../src/client/operations';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { applyPlan } from '../../src/schedules/apply';
import { planSchedules, purgeScheduleId } from '../../src/schedules/plan';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { runPurge } from '../../src/cli/purge';
import { runCdf, writeConfigFile } from '../support/cli';
import { eventually } from '../support/eventually';
import { startWorkerOn, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/*
 * `cdf purge` and the purge schedule on a real worker and dev server: the retention is two
 * seconds, so everything dispatched before the purge is old. Checked against what the test wrote
 * upstream: the purge never takes what is not dispatched, and the pipeline keeps dispatching
 * exactly what changes afterwards, ids whose rows were purged included.
 */
const RETENTION_DAYS = 2 / 86_400;

/** A config whose retention is two seconds (and no consumer view, whose window may not exceed it). */
function shortRetentionConfig(): Config {
  const base = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], fanIn: { batchSize: 20 } });
  return parseConfig({ ...base, retention: { registryDays: RETENTION_DAYS, batchDays: RETENTION_DAYS, fanInRunDays: RETENTION_DAYS }, consumerView: { enabled: false } });
}

describe('the retention purge through cdf and its schedule', () => {
  let t: TestPipeline;
  let config: Config;
  let configFile: string;
  let first: FanInSummary;
  let firstWrite: WrittenChange[];
  const counts = async () => {
    const [row] = await t.lakehouse.db.all<Record<string, bigint>>(`SELECT
      (SELECT count(*) FROM cdf.change_registry) AS registry, (SELECT count(*) FROM cdf.dispatch_batches) AS batch_rows,
      (SELECT count(*) FROM cdf.dispatch_batch_states) AS batches, (SELECT count(*) FROM cdf.fan_in_runs) AS windows`);
    return Object.fromEntries(Object.entries(row!).map(([k, v]) => [k, Number(v)]));
  };

  beforeAll(async () => {
    config = shortRetentionConfig();
    configFile = writeConfigFile(config);
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    t = await startWorkerOn(config, lakehouse);
    firstWrite = await writeRandomTraffic(t.lakehouse, config.sources[0]!, { commits: 4, maxOpsPerCommit: 20, idSpace: 200, seed: 31 });
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'orders');
    first = await runFanIn(t.client, config);
    await sleep(2500); // older than the retention
  });

  afterAll(async () => {
    await t.client.schedule.getHandle(purgeScheduleId(config)).delete().catch(() => undefined);
    await terminateWorkflows(t.client, config);
    await t.stop();
  });

  it('cdf purge --dry-run reports what a purge would delete and deletes nothing', async () => {
    const before = await counts();
    const result = await runCdf(['--config', configFile, '--json', 'purge', '--dry-run']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as PurgeReport;
    expect(report).toEqual(expect.objectContaining({ dryRun: true, registryRows: before.registry, batchStates: first.batches, batchRows: first.changedIds, fanInRuns: 0 }));
    expect(await counts()).toEqual(before);
  });

  it('cdf purge deletes the dispatched changes and finished batches, keeps the dispatch watermark, and says so', async () => {
    const result = await runCdf(['--config', configFile, 'purge']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^deleted\n/);
    expect(result.stdout).toMatch(new RegExp(`batches succeeded before \\S+ \\(${RETENTION_DAYS} days\\)\\s+${first.batches} \\(${first.changedIds} ids\\)`));
    expect(await counts()).toEqual({ registry: 0, batch_rows: 0, batches: 0, windows: 1 });
  });

  it('dispatches afterwards exactly the ids that changed since, ids whose rows were purged included, and the target follows the master', async () => {
    const secondWrite = await writeRandomTraffic(t.lakehouse, config.sources[0]!, { commits: 3, maxOpsPerCommit: 15, idSpace: 200, seed: 32 });
    await captureUntilCaughtUp(t.client, config, 'orders');
    const second = await runFanIn(t.client, config);

    const changed = [...new Set(secondWrite.map((w) => w.utsId))].sort();
    expect(changed.some((id) => firstWrite.some((w) => w.utsId === id))).toBe(true);
    const dispatched = await t.lakehouse.db.all<{ uts_id: string }>(`SELECT uts_id FROM cdf.dispatch_batches WHERE run_key = ? ORDER BY uts_id`, [second.runKey]);
    expect(dispatched.map((r) => r.uts_id)).toEqual(changed);
    const [diff] = await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM demo.entity_master m FULL JOIN demo.entity_target t USING (uts_id)
      WHERE m.uts_id IS NULL OR t.uts_id IS NULL OR m.display_name <> t.display_name OR m.score <> t.score OR m.updated_at <> t.master_updated_at`);
    expect(Number(diff!.n)).toBe(0);
  });

  it('cdf schedules apply creates the purge schedule, and a scheduled purge runs and reports', async () => {
    const scheduled = parseConfig({ ...config, schedules: { purge: { every: '1d', offset: '3h' } } });
    const plan = await planSchedules(t.client, scheduled);
    expect(plan.create.map((d) => [d.scheduleId, d.workflowType])).toEqual([[purgeScheduleId(config), 'purge']]);
    await applyPlan(t.client, plan);
    const handle = t.client.schedule.getHandle(purgeScheduleId(config));
    await handle.trigger();
    const workflowId = await eventually(async () => (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId, 20_000, () => 'the schedule did not start a purge');
    const report = (await t.client.workflow.getHandle(workflowId).result()) as PurgeReport;
    expect(report).toEqual(expect.objectContaining({ dryRun: false, retention: { registryDays: RETENTION_DAYS, batchDays: RETENTION_DAYS, fanInRunDays: RETENTION_DAYS } }));
  });
});

describe('a purge whose delete landed but whose answer was lost', () => {
  let t: TestPipeline;
  let deleteCalls = 0;

  beforeAll(async () => {
    const config = shortRetentionConfig();
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    // The first registry delete runs, then the connection "drops": the activity is retried and deletes nothing more.
    const flaky = Object.create(lakehouse) as LocalLakehouse;
    flaky.deleteExpired = async (table, before) => {
      const deleted = await lakehouse.deleteExpired(table, before);
      if (table === 'registry' && ++deleteCalls === 1) throw new Error(`read ECONNRESET after ${deleted} rows were deleted`);
      return deleted;
    };
    t = await startWorkerOn(config, flaky);
    await writeRandomTraffic(lakehouse, config.sources[0]!, { commits: 2, maxOpsPerCommit: 10, idSpace: 100, seed: 33 });
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'orders');
    await runFanIn(t.client, config);
    await sleep(2500);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('still reports the rows it deleted, from the count taken before the delete', async () => {
    const [before] = await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry`);
    const report = await runPurge(t.client, t.config, {});
    expect(deleteCalls).toBe(2);
    expect(report.registryRows).toBe(Number(before!.n));
    expect(report.registryRows).toBeGreaterThan(0);
    expect(Number((await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry`))[0]!.n)).toBe(0);
  });
});
