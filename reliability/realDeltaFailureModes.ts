import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../src/config/schema';
import { INCREMENTAL_READ_BROKEN, TABLE_REPLACED } from '../src/lakehouse/errors';
import { realDeltaConfig, realDeltaLakehouse, Spark, useThriftServer } from '../test/realDelta/support';
import { startWorkerOn, terminateWorkflows } from '../test/support/pipeline';
import { ensureRealDelta } from '../test/support/realDelta/install';
import { startThriftServer } from '../test/support/realDelta/thriftServer';
import type { ScenarioContext, ScenarioResult } from './context';
import { failureModesScenario, type FailureMode, type FailureModesBench } from './failureModes';

/**
 * The failure-modes scenario with `lakehouse.target: databricks` on real Delta: a Spark Thrift
 * Server of its own (started here, stopped at the end), tables written and broken by Spark SQL,
 * the worker reading them through the real @databricks/sql driver.
 */
export async function realDeltaFailureModesScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const installation = ensureRealDelta(ctx.progress, { quiet: true });
  const server = await startThriftServer({ installation, workDir: join(ctx.workDir, 'real-delta'), progress: ctx.progress });
  try {
    useThriftServer(server);
    return await failureModesScenario(ctx, await sparkBench(ctx, join(ctx.workDir, 'real-delta', 'external')), 'failureModesRealDelta');
  } finally {
    await server.stop();
  }
}

async function sparkBench(ctx: ScenarioContext, externalDir: string): Promise<FailureModesBench> {
  const unique = randomBytes(3).toString('hex');
  const schema = `relfm_${unique}`;
  const names = ['vacuumed', 'cdfoff', 'replaced', 'dropped'];
  const tableOf = (source: string) => `${schema}_up.${source}`;
  const config: Config = realDeltaConfig(schema, names.map((name) => ({ name, table: tableOf(name) })), {
    temporal: { address: ctx.address, taskQueue: `rel-failuremodes-delta-${unique}`, workflowIdPrefix: `rfmdelta${unique}` },
    jobs: { target: 'local', local: { path: join(ctx.workDir, `failuremodes-delta-jobs-${unique}.duckdb`) } },
    capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 3600 },
  });
  const spark = new Spark(config);
  const lakehouse = realDeltaLakehouse(config);
  await lakehouse.ensurePipelineTables();
  await spark.sql(`CREATE SCHEMA IF NOT EXISTS ${schema}_up`);
  const t = await startWorkerOn(config, lakehouse, { bundlePath: ctx.bundlePath });

  // The dropped table is external, so dropping it leaves its files and log for the operator's repair.
  const location = (table: string) => (table === tableOf('dropped') ? ` LOCATION '${join(externalDir, 'dropped')}'` : '');
  const live = new Map<string, string[]>();
  let next = 0;
  const ids = (n: number) => Array.from({ length: n }, () => `id-${next++}`);

  /** Each commit is one MERGE, as an ETL upsert writes it: 5 new ids, 3 updated, 1 deleted. */
  const commitSome = async (table: string, n = 3) => {
    await spark.sql(`CREATE TABLE IF NOT EXISTS ${table} (uts_id STRING, amount INT) USING DELTA${location(table)} TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
    const rows = live.get(table) ?? [];
    for (let i = 0; i < n; i++) {
      const inserted = ids(5);
      const updated = rows.slice(-4, -1);
      const deleted = rows.slice(-1);
      const values = [...inserted.map((id) => `('${id}', ${i}, 'u')`), ...updated.map((id) => `('${id}', ${100 + i}, 'u')`), ...deleted.map((id) => `('${id}', 0, 'd')`)];
      await spark.sql(`MERGE INTO ${table} AS t USING (SELECT * FROM VALUES ${values.join(', ')} AS s(uts_id, amount, op)) AS s ON t.uts_id = s.uts_id
WHEN MATCHED AND s.op = 'd' THEN DELETE
WHEN MATCHED THEN UPDATE SET amount = s.amount
WHEN NOT MATCHED AND s.op <> 'd' THEN INSERT (uts_id, amount) VALUES (s.uts_id, s.amount)`);
      rows.splice(rows.length - deleted.length, deleted.length);
      rows.unshift(...inserted);
    }
    live.set(table, rows);
  };
  const latestVersion = (table: string) => spark.latestVersion(table);

  const modes: FailureMode[] = [
    {
      source: 'vacuumed',
      async break(table) {
        await commitSome(table);
        // Retaining 0 hours removes every change-data file, so the three commits cannot be read.
        await spark.sql(`VACUUM ${table} RETAIN 0 HOURS`);
      },
      async repair(table) {
        await commitSome(table, 1);
        return latestVersion(table);
      },
      expected: /^FAILED_READ_FILE\.FILE_NOT_EXIST$/,
    },
    {
      source: 'cdfoff',
      async break(table) {
        await spark.sql(`ALTER TABLE ${table} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'false')`);
        await commitSome(table, 1);
        await spark.sql(`ALTER TABLE ${table} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
        await commitSome(table, 2);
      },
      repair: async (table) => (await latestVersion(table)) - 1,
      expected: new RegExp(`^${INCREMENTAL_READ_BROKEN}$`),
    },
    {
      source: 'replaced',
      async break(table) {
        await spark.sql(`CREATE OR REPLACE TABLE ${table} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
        live.set(table, []);
        await commitSome(table, 2);
      },
      repair: async (table) => (await latestVersion(table)) - 1,
      // The cycle compares the table id before it reads: CREATE OR REPLACE gives the table a new one.
      expected: new RegExp(`^${TABLE_REPLACED}$`),
    },
    {
      source: 'dropped',
      async break(table) {
        await commitSome(table, 1);
        await spark.sql(`DROP TABLE ${table}`);
      },
      async repair(table, offset) {
        // Registering the location again brings the same log back: the same table id, every version.
        await spark.sql(`CREATE TABLE ${table} USING DELTA${location(table)}`);
        return offset + 1;
      },
      expected: /^TABLE_OR_VIEW_NOT_FOUND$/,
    },
  ];

  const asIds = (rows: Record<string, unknown>[]) => new Set(rows.map((r) => `${r.uts_id}@${r.v}`));
  return {
    config,
    client: t.client,
    modes,
    tableOf,
    commitSome,
    latestVersion,
    offset: async (source) => (await t.lakehouse.readOffset(source))!.lastVersion,
    registered: async (source, fromVersion) =>
      asIds(await spark.sql(`SELECT uts_id, commit_version AS v FROM ${config.tables.registry} WHERE source = '${source}' AND commit_version >= ${fromVersion}`)),
    feed: async (table, fromVersion, toVersion) =>
      asIds(await spark.sql(`SELECT DISTINCT uts_id, _commit_version AS v FROM table_changes('${table}', ${fromVersion}, ${toVersion}) WHERE uts_id IS NOT NULL`)),
    async stop() {
      try {
        await terminateWorkflows(t.client, config);
        await t.stop();
      } finally {
        await spark.close();
      }
    },
  };
}
