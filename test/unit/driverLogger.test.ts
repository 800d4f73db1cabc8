import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * The SQL driver logs as it works (client created, session opened, retries). Its default logger
 * prints JSON on stdout, where `cdf ... --json` writes its answer; the product routes it into the
 * process log instead. A separate process, so its stdout and log file are its own.
 */
describe('the Databricks SQL driver\'s log lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-driver-log-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function createRunner(logLevel: string): { stdout: string; log: string } {
    const logFile = join(dir, `${logLevel}.log`);
    const script = `
      const { parseConfig } = require('./src/config/load');
      const { createSqlRunner } = require('./src/lakehouse/databricks');
      const config = parseConfig({ sources: [{ name: 'orders', table: 'main.sales.orders' }], lakehouse: { target: 'databricks' }, databricks: { host: 'example.cloud.databricks.com', warehouseHttpPath: '/sql/1.0/warehouses/abc' } }, 'test');
      createSqlRunner(config, { DATABRICKS_TOKEN: 'dapi-test' });
    `;
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, CDF_LOG_FILE: logFile, LOG_LEVEL: logLevel },
      encoding: 'utf8',
    });
    let log = '';
    try {
      log = readFileSync(logFile, 'utf8');
    } catch {
      // nothing logged at this level
    }
    return { stdout, log };
  }

  it('never reach stdout', () => {
    expect(createRunner('debug').stdout).toBe('');
  });

  it('reach the process log at debug, marked as the driver\'s', () => {
    const lines = createRunner('debug').log.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ component: 'databricks-sql', msg: 'Created DBSQLClient', level: 20 }));
  });

  it('are left out of the log at the default level', () => {
    expect(createRunner('info').log).not.toMatch(/Created DBSQLClient/);
  });
});
