import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import type { Config, SourceConfig } from '../../src/config/schema';
import { openDatabricksLakehouse, createSqlRunner } from '../../src/lakehouse/databricks';
import type { DatabricksLakehouse } from '../../src/lakehouse/databricks/databricksLakehouse';
import type { Row, SqlRunner } from '../../src/lakehouse/databricks/sqlRunner';
import { SparkThriftDriverClient } from '../support/realDelta/sparkThriftDriver';
import type { ThriftServer } from '../support/realDelta/thriftServer';
import { seededRandom } from '../support/traffic';

interface ThriftEndpoint {
  host: string;
  httpPath: string;
  certificatePem: string;
  warehouseDir: string;
}

let started: ThriftEndpoint | undefined;

/** Points these helpers at a server this process started itself (the reliability suite does). */
export function useThriftServer(server: ThriftServer): void {
  started = { host: `${server.host}:${server.port}`, httpPath: server.httpPath, certificatePem: server.certificatePem, warehouseDir: server.warehouseDir };
}

/** The server globalSetup started; a test file run outside the tier's config fails here, loudly. */
function server(): ThriftEndpoint {
  if (started) return started;
  const host = process.env.CDF_TEST_DELTA_HOST;
  if (!host) throw new Error('no Spark Thrift Server: run the real-Delta tier with `npm run test:delta` (jest -c jest.realdelta.config.js)');
  return { host, httpPath: process.env.CDF_TEST_DELTA_HTTP_PATH!, certificatePem: process.env.CDF_TEST_DELTA_CERT!, warehouseDir: process.env.CDF_TEST_DELTA_WAREHOUSE! };
}

let schemas = 0;

/** A schema name no other test uses (tests share one server and its metastore). */
export function uniqueSchema(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${++schemas}`;
}

/** A config on the Thrift server: pipeline tables in `<schema>_cdf`, demo tables in `<schema>_demo`. */
export function realDeltaConfig(schema: string, sources: Partial<SourceConfig>[], overrides: Record<string, unknown> = {}): Config {
  const { host, httpPath } = server();
  return parseConfig({
    ...(process.env.CDF_TEST_TEMPORAL_ADDRESS ? { temporal: { address: process.env.CDF_TEST_TEMPORAL_ADDRESS, taskQueue: `cdf-${schema}`, workflowIdPrefix: schema.replace(/_/g, '-') } } : {}),
    sources,
    lakehouse: { target: 'databricks' },
    databricks: { host, warehouseHttpPath: httpPath, changedIds: 'table' },
    jobs: { target: 'local', local: { path: join(mkdtempSync(join(tmpdir(), 'cdf-real-delta-')), 'jobs.duckdb') } },
    worker: { shutdownGraceSeconds: 5 },
    tables: {
      registry: `${schema}_cdf.change_registry`,
      offsets: `${schema}_cdf.source_offsets`,
      changedIds: `${schema}_cdf.changed_ids`,
      batches: `${schema}_cdf.dispatch_batches`,
      fanInRuns: `${schema}_cdf.fan_in_runs`,
      batchStates: `${schema}_cdf.dispatch_batch_states`,
      master: `${schema}_demo.entity_master`,
      target: `${schema}_demo.entity_target`,
    },
    ...overrides,
  });
}

const ENV = { DATABRICKS_TOKEN: 'unused-by-the-thrift-server' };

/** How sessions behave beyond the server's defaults (see difference 7 in sparkThriftDriver.ts). */
export interface SessionOptions {
  /** The zone every session starts in, as a workspace's TIMEZONE setting makes it on Databricks. */
  workspaceTimeZone?: string;
  /** false: a session's own TIMEZONE parameter is ignored, as open-source Spark ignores it. */
  honourTimeZoneParameter?: boolean;
}

function driver(options: SessionOptions = {}): SparkThriftDriverClient {
  return new SparkThriftDriverClient({ certificatePem: server().certificatePem, ...options });
}

/** The product's lakehouse adapter, through the real driver, on the Thrift server. */
export function realDeltaLakehouse(config: Config, sessions: SessionOptions = {}): DatabricksLakehouse {
  return openDatabricksLakehouse(config, ENV, driver(sessions));
}

/** A SQL session for setting up upstream tables the way an ETL job on Spark would. */
export class Spark {
  private readonly runner: SqlRunner;

  constructor(config: Config) {
    this.runner = createSqlRunner(config, ENV, driver());
  }

  sql(text: string): Promise<Row[]> {
    return this.runner.query({ sql: text, params: {} });
  }

  async latestVersion(table: string): Promise<number> {
    const [row] = await this.sql(`DESCRIBE HISTORY ${table} LIMIT 1`);
    return Number(row!.version);
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}

/** Where a managed table's files live (for VACUUM and log-truncation tests). */
export function managedTablePath(table: string): string {
  const [schema, name] = table.split('.');
  return join(server().warehouseDir, `${schema}.db`, name!);
}

/**
 * Random upstream commits the way an ETL job on Spark writes them (inserts, updates, deletes,
 * each its own Delta commit), with the master table upserted for every id written, so the demo
 * job has something to copy for each changed id.
 */
export async function writeSparkTraffic(spark: Spark, config: Config, table: string, seed: number): Promise<void> {
  const random = seededRandom(seed);
  await spark.sql(`CREATE TABLE ${table} (uts_id STRING, amount INT) USING DELTA TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')`);
  const live: string[] = [];
  const prefix = table.split('.').pop()!;
  let next = 0;
  for (let commit = 0; commit < 5; commit++) {
    const kind = commit === 0 || live.length < 3 ? 'insert' : (['insert', 'update', 'delete'] as const)[Math.floor(random() * 3)]!;
    if (kind === 'insert') {
      const ids = Array.from({ length: 4 + Math.floor(random() * 6) }, () => `${prefix}-${next++}`);
      await spark.sql(`INSERT INTO ${table} VALUES ${ids.map((id) => `('${id}', ${Math.floor(random() * 100)})`).join(', ')}`);
      live.push(...ids);
    } else {
      const chosen = [...new Set(Array.from({ length: 2 }, () => live[Math.floor(random() * live.length)]!))];
      const list = chosen.map((id) => `'${id}'`).join(', ');
      if (kind === 'update') await spark.sql(`UPDATE ${table} SET amount = amount + 1 WHERE uts_id IN (${list})`);
      else {
        await spark.sql(`DELETE FROM ${table} WHERE uts_id IN (${list})`);
        for (const id of chosen) live.splice(live.indexOf(id), 1);
      }
    }
  }
  await spark.sql(`MERGE INTO ${config.tables.master} AS m
USING (SELECT DISTINCT uts_id FROM table_changes('${table}', 1, ${await spark.latestVersion(table)})) AS c ON m.uts_id = c.uts_id
WHEN MATCHED THEN UPDATE SET score = m.score + 1, updated_at = current_timestamp()
WHEN NOT MATCHED THEN INSERT (uts_id, display_name, score, updated_at) VALUES (c.uts_id, concat('Entity ', c.uts_id), 1.5, current_timestamp())`);
}
