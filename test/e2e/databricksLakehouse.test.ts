import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { captureUntilCaughtUp, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { openDatabricksLakehouse } from '../../src/lakehouse/databricks';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { FakeDatabricksSql, IDS_PER_VERSION } from '../support/fakeDatabricksSql';
import { fetchHistory } from '../support/history';
import { startWorkerOn, terminateWorkflows } from '../support/pipeline';

const TOKEN = `dapi-secret-${randomBytes(8).toString('hex')}`;
const ENV = { DATABRICKS_HOST: 'adb-1234.5.azuredatabricks.net:8443', DATABRICKS_TOKEN: TOKEN, DATABRICKS_WAREHOUSE_HTTP_PATH: '/sql/1.0/warehouses/abc123' };
const SOURCES = [
  { name: 'orders', table: 'main.upstream.orders', extraColumns: ['status'] },
  { name: 'customers', table: 'main.upstream.customers' },
];

interface Harness {
  config: Config;
  fake: FakeDatabricksSql;
  client: Client;
  stop(): Promise<void>;
}

/** The real workflows and worker on the dev server, with the SQL driver replaced at its boundary. */
async function startDatabricksPipeline(): Promise<Harness> {
  const unique = randomBytes(4).toString('hex');
  const config = parseConfig({
    temporal: { address: process.env.CDF_TEST_TEMPORAL_ADDRESS, taskQueue: `cdf-dbx-${unique}`, workflowIdPrefix: `d${unique}` },
    lakehouse: { target: 'databricks' },
    jobs: { target: 'local', local: { path: join(mkdtempSync(join(tmpdir(), 'cdf-dbx-')), 'jobs.duckdb') } },
    databricks: { statementTimeoutSeconds: 900 },
    sources: SOURCES,
    capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 3600 },
    fanIn: { batchSize: 5, concurrency: 2, jobPollIntervalSeconds: 1 },
  });
  const fake = new FakeDatabricksSql();
  fake.addTable('main.upstream.orders', 5);
  fake.addTable('main.upstream.customers', 3);
  const t = await startWorkerOn(config, openDatabricksLakehouse(config, ENV, fake));
  return {
    config,
    fake,
    client: t.client,
    async stop() {
      await terminateWorkflows(t.client, config);
      await t.stop();
    },
  };
}

describe('the Databricks lakehouse adapter under the real workflows', () => {
  let h: Harness;
  let summary: FanInSummary;

  beforeAll(async () => {
    h = await startDatabricksPipeline();
    await startSourceWorkflows(h.client, h.config);
    for (const source of SOURCES) await captureUntilCaughtUp(h.client, h.config, source.name);
    summary = await runFanIn(h.client, h.config);
  });

  afterAll(() => h.stop());

  it('connects once with telemetry off, exact BIGINTs, and STATEMENT_TIMEOUT and a UTC time zone on the session', () => {
    expect(h.fake.connectOptions).toHaveLength(1);
    expect(h.fake.connectOptions[0]).toEqual(
      expect.objectContaining({ host: 'adb-1234.5.azuredatabricks.net', port: 8443, path: '/sql/1.0/warehouses/abc123', authType: 'access-token', telemetryEnabled: false, preserveBigNumericPrecision: true }),
    );
    expect(h.fake.sessionConfigurations[0]).toEqual({ STATEMENT_TIMEOUT: '900', TIMEZONE: 'UTC' });
  });

  it('creates the registry, offsets, fan-in and batch tables and the materialized view idempotently', () => {
    const ddl = h.fake.statementsMatching(/^CREATE /).map((s) => s.sql.split('\n')[0]);
    expect(ddl).toEqual(
      expect.arrayContaining([
        'CREATE TABLE IF NOT EXISTS `cdf`.`change_registry` (',
        'CREATE TABLE IF NOT EXISTS `cdf`.`source_offsets` (',
        'CREATE MATERIALIZED VIEW IF NOT EXISTS `cdf`.`changed_ids` AS',
      ]),
    );
  });

  it('pins both ends of every CDF read at or below the latest version read first', () => {
    for (const source of SOURCES) {
      const quoted = source.table.split('.').map((p) => `\`${p}\``).join('.');
      const latest = h.fake.statements.findIndex((s) => s.sql === `DESCRIBE HISTORY ${quoted} LIMIT 1`);
      const reads = h.fake.statements
        .map((s, index) => ({ index, match: new RegExp(`^MERGE INTO \`cdf\`\\.\`change_registry\`[\\s\\S]*table_changes\\('${source.table}', (\\d+), (\\d+)\\)`).exec(s.sql) }))
        .filter((r) => r.match);
      expect(latest).toBeGreaterThanOrEqual(0);
      expect(reads.every((r) => r.index > latest)).toBe(true);
      const ranges = reads.map((r) => [Number(r.match![1]), Number(r.match![2])]);
      const latestVersion = source.name === 'orders' ? 5 : 3;
      expect(ranges).toEqual(
        Array.from({ length: Math.ceil((latestVersion + 1) / 2) }, (_, i) => [i * 2, Math.min(i * 2 + 1, latestVersion)]),
      );
    }
  });

  it('appends a range with one insert-only MERGE on the dedupe key', () => {
    const [merge] = h.fake.statementsMatching(/^MERGE INTO `cdf`\.`change_registry`[\s\S]*main\.upstream\.orders', 2, 3\)/);
    expect(merge!.sql).toBe(`MERGE INTO \`cdf\`.\`change_registry\` AS registry
USING (
  SELECT :source AS source, :tableId AS table_id, uts_id, picked.change_type AS change_type, commit_version, commit_timestamp,
         picked.extra AS extra, current_timestamp() AS captured_at FROM (
    SELECT CAST(\`uts_id\` AS STRING) AS uts_id, _commit_version AS commit_version, max(_commit_timestamp) AS commit_timestamp,
           min_by(named_struct('change_type', _change_type, 'extra', to_json(named_struct('status', \`status\`))), CASE _change_type WHEN 'delete' THEN 0 WHEN 'insert' THEN 1 WHEN 'update_postimage' THEN 2 ELSE 3 END) AS picked
    FROM table_changes('main.upstream.orders', 2, 3)
    WHERE \`uts_id\` IS NOT NULL
    GROUP BY \`uts_id\`, _commit_version
  )
) AS change
ON registry.source = :source AND registry.table_id = :tableId AND registry.commit_version BETWEEN :fromVersion AND :toVersion
  AND registry.source = change.source AND registry.table_id = change.table_id AND registry.uts_id = change.uts_id AND registry.commit_version = change.commit_version
WHEN NOT MATCHED THEN INSERT *`);
    expect(merge!.params).toEqual({
      source: { type: 'STRING', value: 'orders' },
      tableId: { type: 'STRING', value: expect.any(String) },
      fromVersion: { type: 'BIGINT', value: 2n },
      toVersion: { type: 'BIGINT', value: 3n },
    });
  });

  it('reads each range\'s feed once: no count pass over table_changes, the counts come from the registry', () => {
    expect(h.fake.statementsMatching(/^SELECT _change_type AS change_type[\s\S]*table_changes/)).toEqual([]);
    expect(h.fake.statementsMatching(/^MERGE INTO `cdf`\.`source_offsets`[\s\S]*table_changes/)).toEqual([]);
    const merges = h.fake.statementsMatching(/^MERGE INTO `cdf`\.`change_registry`/).length;
    expect(h.fake.statementsMatching(/^SELECT change_type, count\(\*\) AS n FROM `cdf`\.`change_registry`/)).toHaveLength(merges);
  });

  it('binds the offset version as BIGINT and the source, table and table id as STRING', () => {
    const merges = h.fake.statementsMatching(/^MERGE INTO `cdf`\.`source_offsets`/);
    expect(merges.length).toBeGreaterThan(0);
    for (const merge of merges) {
      expect(merge.params.version).toEqual({ type: 'BIGINT', value: expect.any(BigInt) });
      expect([merge.params.source?.type, merge.params.sourceTable?.type, merge.params.tableId?.type]).toEqual(['STRING', 'STRING', 'STRING']);
    }
    expect(h.fake.offsetOf('orders')).toBe(5);
    expect(h.fake.offsetOf('customers')).toBe(3);
  });

  it('reads results chunk by chunk', () => {
    expect(h.fake.fetchCalls).toBeGreaterThan(h.fake.statements.length);
  });

  it('refreshes the view, snapshots the window and dispatches every changed id once', () => {
    const expectedIds = (5 + 3) * IDS_PER_VERSION;
    expect(summary).toEqual(expect.objectContaining({ changedIds: expectedIds, batches: Math.ceil(expectedIds / 5), committed: true }));
    const order = ['REFRESH MATERIALIZED VIEW', 'INSERT INTO `cdf`.`fan_in_runs`', 'INSERT INTO `cdf`.`dispatch_batches`', 'MERGE INTO `cdf`.`fan_in_runs`'].map((prefix) =>
      h.fake.statements.findIndex((s) => s.sql.startsWith(prefix)),
    );
    expect(order.every((index, i) => index >= 0 && (i === 0 || index > order[i - 1]!))).toBe(true);
  });

  it('keeps the token out of every recorded workflow history', async () => {
    for (const workflowId of [...SOURCES.map((s) => sourceWorkflowId(h.config, s.name))]) {
      const history = await fetchHistory(h.client, workflowId);
      const text = JSON.stringify(history, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value));
      expect(text.length).toBeGreaterThan(1000);
      expect(text).not.toContain(TOKEN);
    }
    expect(JSON.stringify(summary)).not.toContain(TOKEN);
  });
});

describe('Databricks errors under the real source workflow', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startDatabricksPipeline();
    await startSourceWorkflows(h.client, h.config);
    for (const source of SOURCES) await captureUntilCaughtUp(h.client, h.config, source.name);
  });

  afterAll(() => h.stop());

  const permanent: [string, string][] = [
    ['DELTA_MISSING_CHANGE_DATA', 'KD002'],
    ['DELTA_VERSION_NOT_FOUND', '22003'],
    ['DELTA_FILE_NOT_FOUND_DETAILED', '42K03'],
    ['DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION', '0AKDC'],
    ['DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_SCHEMA_CHANGE', '0AKDC'],
    ['DELTA_CHANGE_DATA_FEED_INCOMPATIBLE_DATA_SCHEMA', '0AKDC'],
    ['DELTA_CDC_START_VERSION_AFTER_LATEST', '22003'],
    ['INSUFFICIENT_PERMISSIONS', '42501'],
  ];

  it.each(permanent)('blocks the source on %s with its remedy and leaves the offset untouched', async (errorClass, sqlState) => {
    const offset = h.fake.offsetOf('orders')!;
    h.fake.commit('main.upstream.orders');
    h.fake.failNext(/table_changes\('main\.upstream\.orders'/, driverError(`[${errorClass}] injected by the test. SQLSTATE: ${sqlState}`), 100);
    const report = await captureUntilCaughtUp(h.client, h.config, 'orders');
    h.fake.faults.length = 0;
    expect(report.blocked).toEqual(expect.objectContaining({ type: errorClass, remedy: expect.any(String) }));
    expect(report.blocked!.remedy.length).toBeGreaterThan(20);
    expect(h.fake.offsetOf('orders')).toBe(offset);
    // Unblock for the next case: the fault is gone, so the next cycle captures normally.
    const recovered = await captureUntilCaughtUp(h.client, h.config, 'orders');
    expect(recovered.blocked).toBeNull();
  });

  it('reports the older start-past-latest message as DELTA_CDC_START_VERSION_AFTER_LATEST', async () => {
    h.fake.commit('main.upstream.orders');
    h.fake.failNext(
      /table_changes\('main\.upstream\.orders'/,
      driverError('java.lang.IllegalArgumentException: Provided Start version(9) for reading change data is invalid. Start version cannot be greater than the latest version of the table(8).'),
      100,
    );
    const report = await captureUntilCaughtUp(h.client, h.config, 'orders');
    h.fake.faults.length = 0;
    expect(report.blocked?.type).toBe('DELTA_CDC_START_VERSION_AFTER_LATEST');
    await captureUntilCaughtUp(h.client, h.config, 'orders');
  });

  it('blocks a range that holds a table replace found in the history scan', async () => {
    const offset = h.fake.offsetOf('customers')!;
    h.fake.commit('main.upstream.customers', 'CREATE OR REPLACE TABLE AS SELECT');
    const report = await captureUntilCaughtUp(h.client, h.config, 'customers');
    expect(report.blocked).toEqual(expect.objectContaining({ type: 'CDF_INCREMENTAL_READ_BROKEN', message: expect.stringContaining('CREATE OR REPLACE TABLE AS SELECT') }));
    expect(h.fake.offsetOf('customers')).toBe(offset);
  });

  const transient: [string, Error][] = [
    ['a Delta concurrent append (2D521)', driverError('[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Transaction conflict detected. SQLSTATE: 2D521')],
    ['a metadata change', driverError('[DELTA_METADATA_CHANGED] MetadataChangedException: The metadata of the Delta table has been changed by a concurrent update. SQLSTATE: 2D521')],
    ['HTTP 429', Object.assign(new Error('Request failed: Too Many Requests'), { statusCode: 429 })],
    ['HTTP 503', Object.assign(new Error('Service Unavailable'), { statusCode: 503 })],
    ['a connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
  ];

  it.each(transient)('retries the registry append after %s and captures the range once', async (_name, error) => {
    const version = h.fake.commit('main.upstream.orders');
    h.fake.failNext(/^MERGE INTO `cdf`\.`change_registry`/, error, 2);
    const report = await captureUntilCaughtUp(h.client, h.config, 'orders');
    expect(h.fake.faults.every((f) => f.times === 0)).toBe(true); // both injected failures happened ...
    expect(report.blocked).toBeNull(); // ... and were retried away
    expect(h.fake.offsetOf('orders')).toBe(version);
  });

  it('reopens an expired session and runs the statement again', async () => {
    const sessions = h.fake.openSessions;
    const version = h.fake.commit('main.upstream.orders');
    h.fake.expireSession();
    await captureUntilCaughtUp(h.client, h.config, 'orders');
    expect(h.fake.openSessions).toBe(sessions + 1);
    expect(h.fake.offsetOf('orders')).toBe(version);
  });
});

describe('a changed-ids object left by the other strategy', () => {
  const config = parseConfig({ lakehouse: { target: 'databricks' }, sources: SOURCES });

  it('refuses to start, naming the setting, the object and the fix, before it creates anything', async () => {
    const fake = new FakeDatabricksSql();
    fake.objectTypes.set(config.tables.changedIds, 'MANAGED'); // built under databricks.changedIds: table
    const lakehouse = openDatabricksLakehouse(config, ENV, fake);
    try {
      const error = await lakehouse.ensurePipelineTables().then(() => undefined, (e: Error) => e);
      expect(error?.name).toBe('DatabricksConfigError');
      expect(error?.message).toMatch(/databricks\.changedIds is "materializedView".* but cdf\.changed_ids is a managed table\. .*DROP TABLE cdf\.changed_ids.*"table"/);
      expect(fake.statementsMatching(/^CREATE /)).toEqual([]);
    } finally {
      await lakehouse.close();
    }
  });
});

/** Errors as the driver raises them: OperationStateError carries the server's text in `response`. */
function driverError(displayMessage: string): Error {
  return Object.assign(new Error('The operation failed due to an error'), { response: { displayMessage, sqlState: /SQLSTATE: (\w{5})/.exec(displayMessage)?.[1] } });
}

