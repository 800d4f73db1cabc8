import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/load';
import { createSqlRunner } from '../../src/lakehouse/databricks';
import { bootstrapStatements, runBootstrap } from '../../src/lakehouse/databricks/bootstrap';
import { databricksStatements } from '../../src/lakehouse/databricks/statements';
import { FakeDatabricksSql } from '../support/fakeDatabricksSql';

const ROOT = join(__dirname, '..', '..');
const run = promisify(execFile);

const databricksConfig = (jobsTarget: 'local' | 'databricks' = 'databricks') =>
  parseConfig({ lakehouse: { target: 'databricks' }, jobs: { target: jobsTarget }, sources: [{ name: 'orders', table: 'main.sales.orders' }, { name: 'users', table: 'main.crm.users' }] });

function configFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cdf-bootstrap-')), 'cdf.config.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('bootstrap', () => {
  it('creates schemas, the five pipeline tables and the materialized view, all IF NOT EXISTS, and replaces the consumer view', () => {
    const statements = bootstrapStatements(databricksConfig(), { enableCdf: false }).map((s) => s.sql);
    const consumerView = statements.filter((sql) => sql.startsWith('CREATE OR REPLACE VIEW'));
    expect(consumerView).toEqual([expect.stringContaining('`cdf`.`changed_uts` AS')]);
    expect(consumerView[0]).toContain('INTERVAL 24 HOURS');
    expect(statements.filter((sql) => !consumerView.includes(sql)).every((sql) => /IF NOT EXISTS/.test(sql))).toBe(true);
    expect(statements.filter((sql) => sql.startsWith('CREATE TABLE'))).toHaveLength(5);
    expect(statements.filter((sql) => sql.startsWith('CREATE MATERIALIZED VIEW'))).toHaveLength(1);
  });

  it('lets the worker create the consumer view only when it is missing: replacing a view takes its owner', () => {
    const worker = databricksStatements(databricksConfig().tables, 'materializedView', { consumerWindowHours: 24 }).createPipelineObjects().map((s) => s.sql);
    expect(worker.filter((sql) => sql.includes('changed_uts'))).toEqual([expect.stringMatching(/^CREATE VIEW IF NOT EXISTS `cdf`.`changed_uts` AS/)]);
  });

  it('leaves the consumer view out when consumerView.enabled is false', () => {
    const config = parseConfig({ ...databricksConfig(), consumerView: { enabled: false } });
    expect(bootstrapStatements(config, { enableCdf: false }).map((s) => s.sql).filter((sql) => sql.includes('changed_uts'))).toEqual([]);
  });

  it('creates the changed-ids table instead of the view with databricks.changedIds: table', () => {
    const config = parseConfig({ lakehouse: { target: 'databricks' }, databricks: { changedIds: 'table' }, jobs: { target: 'databricks' }, sources: [{ name: 'orders', table: 'main.sales.orders' }] });
    const statements = bootstrapStatements(config, { enableCdf: false }).map((s) => s.sql);
    expect(statements.some((sql) => sql.startsWith('CREATE MATERIALIZED VIEW'))).toBe(false);
    expect(statements.filter((sql) => sql.startsWith('CREATE TABLE IF NOT EXISTS `cdf`.`changed_ids`'))).toHaveLength(1);
  });

  it('switches CDF on for every source only when asked', () => {
    expect(bootstrapStatements(databricksConfig(), { enableCdf: false }).some((s) => s.sql.startsWith('ALTER TABLE'))).toBe(false);
    expect(bootstrapStatements(databricksConfig(), { enableCdf: true }).filter((s) => s.sql.startsWith('ALTER TABLE')).map((s) => s.sql)).toEqual([
      "ALTER TABLE `main`.`sales`.`orders` SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')",
      "ALTER TABLE `main`.`crm`.`users` SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')",
    ]);
  });

  it('adds the demo master and target tables only when the local runner will write them', () => {
    const has = (config: ReturnType<typeof databricksConfig>) => bootstrapStatements(config, { enableCdf: false }).some((s) => s.sql.includes('entity_target'));
    expect(has(databricksConfig('databricks'))).toBe(false);
    expect(has(databricksConfig('local'))).toBe(true);
  });

  it('runs every statement on the warehouse in order', async () => {
    const fake = new FakeDatabricksSql();
    const config = databricksConfig();
    const runner = createSqlRunner(config, { DATABRICKS_HOST: 'adb-1.azuredatabricks.net', DATABRICKS_TOKEN: 'dapi-x', DATABRICKS_WAREHOUSE_HTTP_PATH: '/sql/1.0/warehouses/w' }, fake);
    const statements = bootstrapStatements(config, { enableCdf: true });
    await runBootstrap(runner, statements, () => undefined);
    expect(fake.statements.map((s) => s.sql)).toEqual(statements.map((s) => s.sql));
  });

  it('prints the Databricks DDL on --dry-run without needing credentials', async () => {
    const file = configFile('lakehouse: { target: databricks }\nsources: [{ name: orders, table: main.sales.orders }]\n');
    const { stdout } = await run(join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/bootstrap.ts', '--config', file, '--dry-run', '--enable-cdf'], {
      cwd: ROOT,
      env: { ...process.env, DATABRICKS_TOKEN: '', DATABRICKS_HOST: '' },
    });
    expect(stdout).toContain('CREATE MATERIALIZED VIEW IF NOT EXISTS `cdf`.`changed_ids`');
    expect(stdout).toContain("ALTER TABLE `main`.`sales`.`orders` SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true');");
  });

  it('creates the local tables twice without error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdf-bootstrap-local-'));
    const file = configFile(`lakehouse: { local: { path: "${join(dir, 'l.duckdb')}" } }\nsources: [{ name: orders, table: upstream.orders }]\n`);
    for (let i = 0; i < 2; i++) {
      const { stderr } = await run(join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/bootstrap.ts', '--config', file], { cwd: ROOT });
      expect(stderr).toContain('statements applied');
    }
  });
});
