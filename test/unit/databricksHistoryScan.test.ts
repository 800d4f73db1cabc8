import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/load';
import { openDatabricksLakehouse } from '../../src/lakehouse/databricks';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import { FakeDatabricksSql } from '../support/fakeDatabricksSql';

/*
 * The history check of a range on Databricks: DESCRIBE HISTORY has no version filter, only a LIMIT
 * from the newest commit, and without one the engine reads every commit the log retains. The
 * adapter asks for the commits from the latest version down to the range's first, no more.
 */
const ENV = { DATABRICKS_HOST: 'adb-1.2.azuredatabricks.net', DATABRICKS_TOKEN: `dapi-${randomBytes(8).toString('hex')}`, DATABRICKS_WAREHOUSE_HTTP_PATH: '/sql/1.0/warehouses/abc' };
const TABLE = 'main.upstream.orders';
const QUOTED = '`main`.`upstream`.`orders`';
const config = parseConfig({ lakehouse: { target: 'databricks' }, sources: [{ name: 'orders', table: TABLE }] });
const source = config.sources[0]!;

describe('the history check of a range on Databricks', () => {
  let fake: FakeDatabricksSql;
  let lakehouse: DatabricksLakehouse;
  const historyReads = () => fake.statementsMatching(/^DESCRIBE HISTORY /).map((s) => s.sql.replace(`DESCRIBE HISTORY ${QUOTED} `, ''));

  beforeEach(() => {
    fake = new FakeDatabricksSql();
    lakehouse = openDatabricksLakehouse(config, ENV, fake);
  });
  afterEach(() => lakehouse.close());

  it('reads the commits from the latest version down to the range\'s first, not the whole retained history', async () => {
    fake.addTable(TABLE, 500);
    const appended = await lakehouse.appendRangeToRegistry(source, { fromVersion: 480, toVersion: 490 }, `id-${TABLE}`);
    expect(historyReads()).toEqual(['LIMIT 1', 'LIMIT 21']);
    expect(appended.toVersionCommitTimestamp).toBe(new Date(Date.UTC(2026, 10, 1, 0, 490)).toISOString());
  });

  it('reads further when commits landed between the latest version and the history read, and still sees a break at the range\'s first version', async () => {
    fake.addTable(TABLE, 9);
    fake.commit(TABLE, 'RESTORE'); // version 10: the range's first
    for (let i = 0; i < 40; i++) fake.commit(TABLE); // up to 50
    fake.beforeNext(/^DESCRIBE HISTORY \S+ LIMIT 41$/, () => [1, 2, 3].forEach(() => fake.commit(TABLE)));
    await expect(lakehouse.appendRangeToRegistry(source, { fromVersion: 10, toVersion: 12 }, `id-${TABLE}`)).rejects.toThrow(/version 10 of main\.upstream\.orders is a RESTORE/);
    expect(historyReads()).toEqual(['LIMIT 1', 'LIMIT 41', 'LIMIT 44']);
  });

  it('names the newest of several breaks in a range, the version a replay must start after', async () => {
    fake.addTable(TABLE, 4);
    fake.commit(TABLE, 'RESTORE'); // 5
    fake.commit(TABLE); // 6
    fake.commit(TABLE, 'CREATE OR REPLACE TABLE AS SELECT'); // 7
    fake.commit(TABLE); // 8
    await expect(lakehouse.appendRangeToRegistry(source, { fromVersion: 3, toVersion: 8 }, `id-${TABLE}`)).rejects.toThrow(/version 7 of main\.upstream\.orders is a CREATE OR REPLACE TABLE AS SELECT/);
  });

  it('stops when the log holds nothing older than what it returned (a truncated or re-created table)', async () => {
    fake.addTable(TABLE, 30);
    fake.forgetHistoryBefore(TABLE, 25);
    const appended = await lakehouse.appendRangeToRegistry(source, { fromVersion: 20, toVersion: 27 }, `id-${TABLE}`);
    expect(historyReads()).toEqual(['LIMIT 1', 'LIMIT 11']);
    expect(appended.toVersionCommitTimestamp).toBe(new Date(Date.UTC(2026, 10, 1, 0, 27)).toISOString());
  });
});
