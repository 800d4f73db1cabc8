import type { Config, SourceConfig } from '../../src/config/schema';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { realDeltaConfig, realDeltaLakehouse, Spark, uniqueSchema } from './support';

/*
 * A workspace whose TIMEZONE is not UTC: every session starts in Asia/Kolkata (+05:30, no DST) and
 * renders timestamps in that zone. The commit and batch times the adapter returns must still be the
 * true UTC instants, checked against the wall clock around the write that made them (same machine,
 * same clock): a zone mix-up shows as hours, a slow engine as a second at most.
 */
const WORKSPACE_TIME_ZONE = 'Asia/Kolkata';
const SLACK_MS = 1_000;

/** Wall-clock milliseconds just before and just after an action. */
interface ClockSpan {
  before: number;
  after: number;
}

/** How far `iso` lies outside [before, after], in seconds (0: inside, give or take SLACK_MS). */
function secondsOutside(iso: string | null | undefined, span: ClockSpan): number {
  const at = Date.parse(iso ?? '');
  if (Number.isNaN(at)) throw new Error(`not a timestamp: ${iso}`);
  if (at < span.before - SLACK_MS) return (at - span.before) / 1000;
  if (at > span.after + SLACK_MS) return (at - span.after) / 1000;
  return 0;
}

async function timed(action: () => Promise<unknown>): Promise<ClockSpan> {
  const before = Date.now();
  await action();
  return { before, after: Date.now() };
}

describe(`the Databricks adapter on real Delta, in a workspace whose time zone is ${WORKSPACE_TIME_ZONE}`, () => {
  const schema = uniqueSchema('timezone');
  const upstream = `${schema}_up.orders`;
  let config: Config;
  let source: SourceConfig;
  let spark: Spark;
  let lakehouse: DatabricksLakehouse;
  /** The adapter on a server that ignores the session's TIMEZONE parameter (open-source Spark does). */
  let unpinned: DatabricksLakehouse;
  /** When the upstream table's version 1 was written, by the wall clock. */
  let firstCommit: ClockSpan;
  let batch: Promise<{ runKey: string; snapshot: ClockSpan }> | undefined;

  /** One fan-in run with one batch, made once (memoized) for the tests that read batch states. */
  const oneBatch = () =>
    (batch ??= (async () => {
      const { tableId } = await lakehouse.describeSource(source);
      await lakehouse.appendRangeToRegistry(source, { fromVersion: 1, toVersion: 1 }, tableId);
      await lakehouse.refreshChangedIds();
      const { runKey } = await lakehouse.openFanInRun('fi-timezone-1');
      const snapshot = await timed(() => lakehouse.snapshotBatches(runKey, 10, 3));
      return { runKey, snapshot };
    })());

  beforeAll(async () => {
    config = realDeltaConfig(schema, [{ name: 'orders', table: upstream }]);
    source = config.sources[0]!;
    spark = new Spark(config);
    lakehouse = realDeltaLakehouse(config, { workspaceTimeZone: WORKSPACE_TIME_ZONE });
    unpinned = realDeltaLakehouse(config, { workspaceTimeZone: WORKSPACE_TIME_ZONE, honourTimeZoneParameter: false });
    await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
    await spark.sql(`CREATE TABLE ${upstream} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
    await lakehouse.ensurePipelineTables();
    firstCommit = await timed(() => spark.sql(`INSERT INTO ${upstream} VALUES ('a', 1), ('b', 2)`)); // v1
  });

  afterAll(async () => {
    await unpinned?.close();
    await lakehouse?.close();
    await spark?.close();
  });

  it("reports the latest commit, the captured range's end and the offset at the commit's UTC instant", async () => {
    const description = await lakehouse.describeSource(source);
    expect(description.latestVersion).toBe(1);
    expect(secondsOutside(description.latestCommitTimestamp, firstCommit)).toBe(0);
    await expect(lakehouse.latestCommit(source)).resolves.toEqual({ latestVersion: 1, latestCommitTimestamp: description.latestCommitTimestamp });

    const appended = await lakehouse.appendRangeToRegistry(source, { fromVersion: 1, toVersion: 1 }, description.tableId);
    expect(appended.toVersionCommitTimestamp).toBe(description.latestCommitTimestamp);
    await lakehouse.mergeOffset({ source: source.name, table: upstream, tableId: description.tableId, version: 1, commitTimestamp: appended.toVersionCommitTimestamp, replayGeneration: 0 });
    expect((await lakehouse.readOffset(source.name))?.lastCommitTimestamp).toBe(description.latestCommitTimestamp);
  });

  it("reports when a batch's state last changed at the change's UTC instant", async () => {
    const { runKey, snapshot } = await oneBatch();
    const state = await lakehouse.readBatchState({ runKey, batchNumber: 1 });
    expect(state?.status).toBe('pending');
    expect(secondsOutside(state?.updatedAt, snapshot)).toBe(0);
  });

  it("reads stored times back at their UTC instants even in a session left in the workspace's zone", async () => {
    const { tableId } = await unpinned.describeSource(source);
    await unpinned.mergeOffset({ source: 'fixed', table: upstream, tableId, version: 1, commitTimestamp: '2026-01-02T03:04:05.678Z', replayGeneration: 0 });
    expect((await unpinned.readOffset('fixed'))?.lastCommitTimestamp).toBe('2026-01-02T03:04:05.678Z');

    const { runKey } = await oneBatch();
    const launch = await timed(() => unpinned.recordBatchLaunch({ runKey, batchNumber: 1 }, 1, { runId: 'r1', runPageUrl: 'https://example/1' }));
    const state = await unpinned.readBatchState({ runKey, batchNumber: 1 });
    expect(state?.status).toBe('launched');
    expect(secondsOutside(state?.updatedAt, launch)).toBe(0);
  });
});
