import { parseConfig } from '../../src/config/load';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import type { CommitSpec } from '../../src/lakehouse/local/deltaEngine';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';

const config = parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
const orders = config.sources[0]!;
const TABLE = orders.table;

/** Three random new keys from a small id space (a small space keeps the random pick fast). */
const threeNewRows: CommitSpec = { insert: 3, idSpace: 100 };

const opened: LocalLakehouse[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((lakehouse) => lakehouse.close()));
});

/** A fresh in-memory lakehouse with an empty `upstream.orders` table in the demo shape (version 0). */
async function lakehouseWithOrders(): Promise<LocalLakehouse> {
  const lakehouse = await LocalLakehouse.open(':memory:', config.tables);
  opened.push(lakehouse);
  await ensureDemoSourceTable(lakehouse, orders);
  return lakehouse;
}

/** Writes the commits in order and returns the lakehouse. */
async function lakehouseWithCommits(...commits: CommitSpec[]): Promise<LocalLakehouse> {
  const lakehouse = await lakehouseWithOrders();
  for (const spec of commits) await lakehouse.engine.commit(TABLE, spec);
  return lakehouse;
}

interface FeedRow {
  uts_id: string;
  status: string;
  amount: number;
  _change_type: string;
  _commit_version: bigint;
}

/** The CDF rows of `table_changes(TABLE, from, to)`, in a stable order. */
async function readFeed(lakehouse: LocalLakehouse, fromVersion: number, toVersion: number): Promise<FeedRow[]> {
  const { sql } = await lakehouse.engine.changesRelation(TABLE, fromVersion, toVersion);
  return lakehouse.db.all<FeedRow & Record<string, unknown>>(
    `SELECT uts_id, status, amount, _change_type, _commit_version FROM ${sql} ORDER BY _commit_version, uts_id, _change_type`,
  );
}

/** A commit timestamp (`YYYY-MM-DD HH:MM:SS.mmm`, no zone) as milliseconds, for ordering. */
function epochMs(commitTimestamp: string): number {
  const ms = Date.parse(`${commitTimestamp.replace(' ', 'T')}Z`);
  if (Number.isNaN(ms)) throw new Error(`unparseable commit timestamp ${commitTimestamp}`);
  return ms;
}

/** The error `work` rejects with; fails the test if it resolves. */
async function rejectionOf(work: Promise<unknown>): Promise<Error> {
  return work.then(
    () => {
      throw new Error('expected the call to fail, but it succeeded');
    },
    (error: Error) => error,
  );
}

describe('LocalDeltaEngine', () => {
  it('creates a new table at version 0 with its key column and a table id', async () => {
    const lakehouse = await lakehouseWithOrders();
    const table = await lakehouse.engine.describe(TABLE);
    expect(table.latestVersion).toBe(0);
    expect(table.keyColumn).toBe('uts_id');
    expect(table.tableId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('adds one version per commit with strictly increasing commit timestamps', async () => {
    const lakehouse = await lakehouseWithOrders();
    const versions: number[] = [];
    const timestamps: string[] = [];
    for (let i = 0; i < 4; i++) {
      const commit = await lakehouse.engine.commit(TABLE, { insert: 2, idSpace: 50 });
      versions.push(commit.version);
      timestamps.push(commit.commitTimestamp);
    }
    expect(versions).toEqual([1, 2, 3, 4]);
    expect((await lakehouse.engine.describe(TABLE)).latestVersion).toBe(4);
    for (let i = 1; i < timestamps.length; i++) {
      expect(epochMs(timestamps[i]!)).toBeGreaterThan(epochMs(timestamps[i - 1]!));
    }
  });

  it('records an update as a pre-image and a post-image row in the same version', async () => {
    const lakehouse = await lakehouseWithCommits({ insert: ['u1'] }, { update: ['u1'] });
    const [inserted] = await readFeed(lakehouse, 1, 1);
    const feed = await readFeed(lakehouse, 2, 2);
    expect(feed.map((row) => [row.uts_id, row._change_type, Number(row._commit_version)])).toEqual([
      ['u1', 'update_postimage', 2],
      ['u1', 'update_preimage', 2],
    ]);
    const preimage = feed.find((row) => row._change_type === 'update_preimage')!;
    expect({ status: preimage.status, amount: preimage.amount }).toEqual({ status: inserted!.status, amount: inserted!.amount });
  });

  it("records a delete as one feed row carrying the deleted row's values", async () => {
    const lakehouse = await lakehouseWithCommits({ insert: ['u1', 'u2'] }, { delete: ['u1'] });
    const [insertedU1] = (await readFeed(lakehouse, 1, 1)).filter((row) => row.uts_id === 'u1');
    const feed = await readFeed(lakehouse, 2, 2);
    expect(feed).toEqual([{ ...insertedU1, _change_type: 'delete', _commit_version: 2n }]);
  });

  it('fails a read starting past the latest version with DELTA_CDC_START_VERSION_AFTER_LATEST and SQLSTATE 22003', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows);
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 2, 5));
    expect(error.message).toContain('[DELTA_CDC_START_VERSION_AFTER_LATEST]');
    expect(error.message).toContain('SQLSTATE: 22003');
  });

  it('fails a read whose end is before its start with DELTA_INVALID_CDC_RANGE', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows);
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 2, 1));
    expect(error.message).toContain('[DELTA_INVALID_CDC_RANGE]');
  });

  it('fails a read starting before the vacuumed version with DELTA_FILE_NOT_FOUND_DETAILED', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows, threeNewRows);
    await lakehouse.engine.vacuum(TABLE, 2);
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 1, 3));
    expect(error.message).toContain('[DELTA_FILE_NOT_FOUND_DETAILED]');
  });

  it('still reads a range starting at the vacuum version', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows, threeNewRows);
    await lakehouse.engine.vacuum(TABLE, 2);
    const feed = await readFeed(lakehouse, 2, 3);
    expect(feed.map((row) => Number(row._commit_version))).toEqual([2, 2, 2, 3, 3, 3]);
  });

  it('fails a read starting before the expired log with DELTA_VERSION_NOT_FOUND', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows, threeNewRows);
    await lakehouse.engine.expireLog(TABLE, 2);
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 1, 3));
    expect(error.message).toContain('[DELTA_VERSION_NOT_FOUND]');
  });

  /** v1 insert, v2 CDF off, v3 commit without change data, v4 CDF on, v5 commit. */
  async function lakehouseWithCdfGap(): Promise<LocalLakehouse> {
    const lakehouse = await lakehouseWithCommits({ insert: ['u1', 'u2', 'u3'] });
    expect(await lakehouse.engine.setChangeDataFeed(TABLE, false)).toBe(2);
    await lakehouse.engine.commit(TABLE, { update: ['u1'] });
    expect(await lakehouse.engine.setChangeDataFeed(TABLE, true)).toBe(4);
    await lakehouse.engine.commit(TABLE, { update: ['u2'] });
    return lakehouse;
  }

  it('fails a range crossing a commit made with CDF off with DELTA_MISSING_CHANGE_DATA naming that version', async () => {
    const lakehouse = await lakehouseWithCdfGap();
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 3, 5));
    expect(error.message).toContain('[DELTA_MISSING_CHANGE_DATA]');
    expect(error.message).toContain('not recorded for version [3]');
  });

  it('names the version that disabled CDF when a range starts before it', async () => {
    const lakehouse = await lakehouseWithCdfGap();
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 1, 5));
    expect(error.message).toContain('not recorded for version [2]');
  });

  it('reads a range that starts once CDF is enabled again', async () => {
    const lakehouse = await lakehouseWithCdfGap();
    const feed = await readFeed(lakehouse, 4, 5);
    expect(feed.map((row) => [row.uts_id, row._change_type, Number(row._commit_version)])).toEqual([
      ['u2', 'update_postimage', 5],
      ['u2', 'update_preimage', 5],
    ]);
  });

  it('gives a replaced table a new table id and continues its versions', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows);
    const before = await lakehouse.engine.describe(TABLE);
    const replaced = await lakehouse.engine.replaceTable(TABLE);
    const after = await lakehouse.engine.describe(TABLE);
    expect(replaced.version).toBe(before.latestVersion + 1);
    expect(after.latestVersion).toBe(replaced.version);
    expect(after.tableId).toBe(replaced.tableId);
    expect(after.tableId).not.toBe(before.tableId);
  });

  it('records a table replace as a delete of every row it held', async () => {
    const lakehouse = await lakehouseWithCommits({ insert: ['u1', 'u2'] });
    const { version } = await lakehouse.engine.replaceTable(TABLE);
    const feed = await readFeed(lakehouse, version, version);
    expect(feed.map((row) => [row.uts_id, row._change_type])).toEqual([
      ['u1', 'delete'],
      ['u2', 'delete'],
    ]);
  });

  it('fails describe of a dropped table with TABLE_OR_VIEW_NOT_FOUND', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows);
    await lakehouse.engine.dropTable(TABLE);
    const error = await rejectionOf(lakehouse.engine.describe(TABLE));
    expect(error.message).toContain('[TABLE_OR_VIEW_NOT_FOUND]');
  });

  it('brings a dropped table back on undrop with its id, rows and change feed', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows);
    const before = await lakehouse.engine.describe(TABLE);
    await lakehouse.engine.dropTable(TABLE);
    await lakehouse.engine.undropTable(TABLE);
    const after = await lakehouse.engine.describe(TABLE);
    expect(after).toEqual(before);
    expect(await lakehouse.db.all(`SELECT count(*)::INTEGER AS n FROM ${TABLE}`)).toEqual([{ n: 3 }]);
    expect(await readFeed(lakehouse, 1, 1)).toHaveLength(3);
  });

  it('fails a read starting at a commit older than the deleted file retention with BEYOND_DELETED_FILE_RETENTION_DURATION', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows);
    await lakehouse.engine.setDeletedFileRetentionHours(TABLE, 1);
    await lakehouse.engine.ageCommits(TABLE, 2);
    const error = await rejectionOf(lakehouse.engine.changesRelation(TABLE, 1, 2));
    expect(error.message).toContain('[DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION]');
  });

  it('reads commits younger than the deleted file retention', async () => {
    const lakehouse = await lakehouseWithCommits(threeNewRows, threeNewRows);
    await lakehouse.engine.setDeletedFileRetentionHours(TABLE, 3);
    await lakehouse.engine.ageCommits(TABLE, 2);
    expect(await readFeed(lakehouse, 1, 2)).toHaveLength(6);
  });

  const seededTraffic: CommitSpec[] = [
    { insert: 20, idSpace: 100, seed: 42 },
    { insert: 5, update: 6, delete: 4, idSpace: 100, seed: 43 },
  ];

  it('repeats the same random picks for the same seed in two fresh databases', async () => {
    const first = await lakehouseWithCommits(...seededTraffic);
    const second = await lakehouseWithCommits(...seededTraffic);
    const firstFeed = await readFeed(first, 1, 2);
    expect(firstFeed).toHaveLength(20 + 5 + 2 * 6 + 4);
    expect(await readFeed(second, 1, 2)).toEqual(firstFeed);
  });

  it('picks different keys for a different seed', async () => {
    const first = await lakehouseWithCommits({ insert: 20, idSpace: 100, seed: 42 });
    const second = await lakehouseWithCommits({ insert: 20, idSpace: 100, seed: 1042 });
    const keys = async (lakehouse: LocalLakehouse) => (await readFeed(lakehouse, 1, 1)).map((row) => row.uts_id);
    expect(await keys(second)).not.toEqual(await keys(first));
  });
});
