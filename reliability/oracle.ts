import type { Config } from '../src/config/schema';
import type { LocalJobRunner } from '../src/jobs/local/localJobRunner';
import type { LifeCycleState } from '../src/jobs/port';
import type { FakeJobsApi } from '../test/support/fakeJobsApi';
import { quoteIdent } from '../src/lakehouse/local/duck';
import type { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { invariant, type Invariant } from './context';

/** Where the audit reads the downstream runs: the local runner, or the fake Jobs API (`jobsApiRunRecords`). */
export type RunRecords = Pick<LocalJobRunner, 'runRecords'>;

/** The fake Jobs API's runs as the audit reads them (a deleted run is gone, as it is from Databricks). */
export function jobsApiRunRecords(api: FakeJobsApi): RunRecords {
  return {
    runRecords: async () =>
      api.launchedRuns().map((r) => ({
        runKey: r.jobParameters.cdf_run_key!,
        batchNumber: Number(r.jobParameters.cdf_batch_number),
        attempt: Number(r.jobParameters.cdf_attempt),
        lifeCycleState: r.state as LifeCycleState,
        resultState: r.state !== 'TERMINATED' ? null : r.code === 'SUCCESS' ? 'SUCCESS' : r.code === 'USER_CANCELED' ? 'CANCELED' : 'FAILED',
        launchRequests: r.launchRequests,
      })),
  };
}

/** The end-to-end audit's figures; `lost`, `duplicated` and `duplicateLaunches` must all be 0. */
export interface Audit {
  changesChecked: number;
  changedIds: number;
  registryRows: number;
  fanInRuns: number;
  batches: number;
  runs: number;
  relaunchedAfterFailure: number;
  launchRequestsDeduplicated: number;
  lost: number;
  duplicated: number;
  duplicateLaunches: number;
  invariants: Invariant[];
}

const n = (value: unknown) => Number(value ?? 0);

/**
 * Audits the whole pipeline against an oracle read straight from the upstream tables' change
 * feeds (the emulated Delta log's change files, not the pipeline's CDF reads):
 * - registry = one row per (source, table id, uts_id, commit_version) of the feeds, with its change
 *   type (a table dropped and created again keeps its old feed, read here under its old id);
 * - every offset = its table's latest version;
 * - the committed fan-in windows tile each (source, table id)'s versions, and each run dispatched
 *   exactly the ids that changed inside its windows (so every change was dispatched, and none twice);
 * - each batch has exactly one successful downstream run (a parked one after an operator's retry),
 *   and no idempotency token started two;
 * - the target equals the master rows of every changed id.
 * Call it once the worker is idle (every source caught up, the last fan-in committed).
 */
export async function auditPipeline(config: Config, lakehouse: LocalLakehouse, runner: RunRecords): Promise<Audit> {
  const db = lakehouse.db;
  const t = config.tables;
  const registry = quoteIdent(t.registry);
  await db.run(`CREATE OR REPLACE TEMP TABLE oracle_changes (source VARCHAR, table_id VARCHAR, uts_id VARCHAR, commit_version BIGINT, change_type VARCHAR)`);
  for (const source of config.sources) {
    const [catalog] = await db.all<{ key_column: string }>(`SELECT key_column FROM _delta.tables WHERE name = ? AND NOT dropped`, [source.table]);
    if (!catalog) continue;
    const key = quoteIdent(catalog.key_column);
    for (const feed of await lakehouse.engine.changeFeeds(source.table)) {
      // Each version's table id from the log; precedence written independently of the registry's SQL: a delete wins, then an insert; an update shows as its post-image.
      await db.run(
        `INSERT INTO oracle_changes
         SELECT ?, c.table_id, CAST(f.${key} AS VARCHAR), f._commit_version,
                CASE WHEN bool_or(f._change_type = 'delete') THEN 'delete' WHEN bool_or(f._change_type = 'insert') THEN 'insert' ELSE 'update_postimage' END
         FROM ${quoteIdent(feed.shadow)} f JOIN _delta.commits c ON c.table_name = ? AND c.version = f._commit_version
         WHERE f.${key} IS NOT NULL
         GROUP BY ALL`,
        [source.name, feed.logName],
      );
    }
  }
  const [changes] = await db.all(`SELECT count(*) AS n, count(DISTINCT uts_id) AS ids FROM oracle_changes`);
  const [reg] = await db.all(`SELECT count(*) AS rows, count(DISTINCT (source, table_id, uts_id, commit_version)) AS keys FROM ${registry}`);
  const sameChange = 'r.source = o.source AND r.table_id = o.table_id AND r.uts_id = o.uts_id AND r.commit_version = o.commit_version';
  const [missingFromRegistry] = await db.all(`SELECT count(*) AS n FROM oracle_changes o ANTI JOIN ${registry} r ON ${sameChange}`);
  const [notInFeed] = await db.all(`SELECT count(*) AS n FROM ${registry} r ANTI JOIN oracle_changes o ON ${sameChange}`);
  const [wrongType] = await db.all(`SELECT count(*) AS n FROM ${registry} r JOIN oracle_changes o USING (source, table_id, uts_id, commit_version) WHERE r.change_type <> o.change_type`);
  const registryLost = n(missingFromRegistry!.n);
  const registryDuplicated = n(reg!.rows) - n(reg!.keys) + n(notInFeed!.n);

  const offsetProblems: string[] = [];
  for (const source of config.sources) {
    const offset = await lakehouse.readOffset(source.name);
    const described = await lakehouse.engine.describe(source.table).catch(() => null);
    if (described && offset?.lastVersion !== described.latestVersion) {
      offsetProblems.push(`${source.name}: offset ${offset?.lastVersion ?? 'none'}, latest ${described.latestVersion}`);
    }
  }

  const runs = quoteIdent(t.fanInRuns);
  const batches = quoteIdent(t.batches);
  const [open] = await db.all(`SELECT count(*) AS n FROM ${runs} WHERE status <> 'committed'`);
  // Windows of one (source, table id) must follow each other without gap or overlap (an operator's redispatch marker is not a window).
  const [badTiling] = await db.all(
    `SELECT count(*) AS n FROM (
       SELECT after_version, lag(through_version, 1, -1) OVER (PARTITION BY source, table_id ORDER BY after_version) AS previous_through
       FROM ${runs} WHERE status = 'committed' AND run_key NOT LIKE 'redispatch-%') WHERE after_version <> previous_through`,
  );
  const inWindow = `w.status = 'committed' AND w.source = o.source AND w.table_id = o.table_id AND o.commit_version > w.after_version AND o.commit_version <= w.through_version`;
  const [uncovered] = await db.all(`SELECT count(*) AS n FROM oracle_changes o ANTI JOIN ${runs} w ON ${inWindow}`);
  await db.run(`CREATE OR REPLACE TEMP TABLE expected_dispatch AS SELECT DISTINCT w.run_key, o.uts_id FROM oracle_changes o JOIN ${runs} w ON ${inWindow}`);
  const [notDispatched] = await db.all(
    `SELECT count(*) AS n FROM expected_dispatch e ANTI JOIN ${batches} b ON b.run_key = e.run_key AND b.uts_id = e.uts_id`,
  );
  const [dispatchedWithoutChange] = await db.all(
    `SELECT count(*) AS n FROM ${batches} b ANTI JOIN expected_dispatch e ON b.run_key = e.run_key AND b.uts_id = e.uts_id`,
  );
  const [batchDuplicates] = await db.all(`SELECT count(*) - count(DISTINCT (run_key, uts_id)) AS n FROM ${batches}`);
  const batchList = await db.all<{ run_key: string; batch_number: number }>(`SELECT DISTINCT run_key, batch_number FROM ${batches}`);
  const [runCount] = await db.all(`SELECT count(DISTINCT run_key) AS n FROM ${runs} WHERE status = 'committed'`);

  const records = await runner.runRecords();
  const successes = new Map<string, number>();
  for (const r of records) if (r.resultState === 'SUCCESS') successes.set(`${r.runKey}#${r.batchNumber}`, (successes.get(`${r.runKey}#${r.batchNumber}`) ?? 0) + 1);
  const batchesWithoutSuccess = batchList.filter((b) => !successes.has(`${b.run_key}#${b.batch_number}`)).length;
  const duplicateLaunches = [...successes.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  const relaunched = records.filter((r) => r.attempt > 1).length;
  const deduplicated = records.reduce((sum, r) => sum + r.launchRequests - 1, 0);

  const [targetMismatch] = await db.all(
    `SELECT count(*) AS n FROM ${quoteIdent(t.master)} m FULL JOIN ${quoteIdent(t.target)} g USING (uts_id)
     WHERE g.uts_id IS NULL OR m.uts_id IS NULL OR g.master_updated_at IS DISTINCT FROM m.updated_at OR g.score IS DISTINCT FROM m.score OR g.display_name IS DISTINCT FROM m.display_name`,
  );

  const lost = registryLost + n(uncovered!.n) + n(notDispatched!.n) + batchesWithoutSuccess;
  const duplicated = registryDuplicated + n(dispatchedWithoutChange!.n) + n(batchDuplicates!.n);
  return {
    changesChecked: n(changes!.n),
    changedIds: n(changes!.ids),
    registryRows: n(reg!.rows),
    fanInRuns: n(runCount!.n),
    batches: batchList.length,
    runs: records.length,
    relaunchedAfterFailure: relaunched,
    launchRequestsDeduplicated: deduplicated,
    lost,
    duplicated,
    duplicateLaunches,
    invariants: [
      invariant('registry equals the oracle from the source feeds', registryLost === 0 && registryDuplicated === 0 && n(wrongType!.n) === 0,
        `${n(changes!.n)} changes in the feeds; registry ${n(reg!.rows)} rows; missing ${registryLost}, extra or duplicate ${registryDuplicated}, wrong change type ${n(wrongType!.n)}`),
      invariant('every offset equals its table\'s latest version', offsetProblems.length === 0, offsetProblems.join('; ') || `${config.sources.length} sources at their latest version`),
      invariant('every fan-in run committed and windows tile each source', n(open!.n) === 0 && n(badTiling!.n) === 0 && n(uncovered!.n) === 0,
        `${n(open!.n)} runs not committed, ${n(badTiling!.n)} gaps or overlaps, ${n(uncovered!.n)} changes outside every committed window`),
      invariant('every changed uts_id was dispatched in the run of its change, and none without a change', n(notDispatched!.n) === 0 && n(dispatchedWithoutChange!.n) === 0 && n(batchDuplicates!.n) === 0,
        `${n(notDispatched!.n)} not dispatched, ${n(dispatchedWithoutChange!.n)} dispatched without a change, ${n(batchDuplicates!.n)} twice in one run`),
      invariant('each batch ran successfully exactly once', batchesWithoutSuccess === 0 && duplicateLaunches === 0,
        `${batchList.length} batches, ${records.length} runs (${relaunched} relaunches after a failed run, ${deduplicated} repeated launch requests answered with the existing run); ${batchesWithoutSuccess} batches without a successful run, ${duplicateLaunches} extra successful runs`),
      invariant('target equals the master rows of every changed id', n(targetMismatch!.n) === 0, `${n(targetMismatch!.n)} rows differ`),
    ],
  };
}
