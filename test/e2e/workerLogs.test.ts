import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { ROOT, runCdf, writeConfigFile } from '../support/cli';
import { eventually, stopChild } from '../support/eventually';
import { testConfig } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/**
 * The worker's JSON log, read from a real worker process whose lakehouse writes fail half the time
 * with a Delta write conflict (retried by Temporal): each failed capture activity's line names the
 * source next to the workflow id and activity type (the fan-in's keys: test/unit/logAttributes.test.ts).
 */
describe('the worker\'s JSON log', () => {
  let config: Config;
  let configFile: string;
  let worker: ChildProcess;
  let log = '';
  const lines = () => log.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  const cdf = (...args: string[]) => runCdf([...args, '--config', configFile]);

  beforeAll(async () => {
    const plain = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }], faults: { transientConflictRate: 0.5 } });
    // One version per range and 12 commits: at a 0.5 conflict rate some capture activity fails all but surely (1 run in 4,096 sees none).
    config = parseConfig({ ...plain, capture: { ...plain.capture, maxVersionsPerRange: 1 }, fanIn: { ...plain.fanIn, batchSize: 5 } });
    configFile = writeConfigFile(config);
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    await writeRandomTraffic(lakehouse, config.sources[0]!, { commits: 12, maxOpsPerCommit: 8, idSpace: 50, seed: 17 });
    await lakehouse.close();
    worker = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env: { ...process.env, CDF_CONFIG: configFile, TEMPORAL_ADDRESS: process.env.CDF_TEST_TEMPORAL_ADDRESS }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (chunk) => (log += chunk));
    worker.stderr!.on('data', (chunk) => (log += chunk));
    await eventually(async () => (log.includes('"msg":"worker started"') ? true : undefined), 60_000, () => log);
    expect((await cdf('sources', 'apply')).code).toBe(0);
    await eventually(async () => {
      const result = await cdf('status', 'orders', '--json');
      const status = result.code === 0 ? (JSON.parse(result.stdout) as { offsetVersion: number | null; latestVersion: number | null }) : null;
      return status && status.latestVersion !== null && status.offsetVersion === status.latestVersion ? true : undefined;
    }, 120_000, () => log);
    expect((await cdf('fan-in', '--wait')).code).toBe(0);
  });

  afterAll(async () => {
    await runCdf(['sources', 'apply', '--removed', 'terminate', '--config', writeConfigFile({ ...config, sources: [] })]).catch(() => undefined);
    if (worker) await stopChild(worker, 'SIGTERM');
  });

  it('names the source on a failed capture activity\'s line', () => {
    const failed = lines().filter((line) => line.msg === 'Activity failed' && line.workflowId === `${config.temporal.workflowIdPrefix}-source-orders`);
    expect(failed.length).toBeGreaterThan(0);
    for (const line of failed) expect(line).toMatchObject({ source: 'orders', activityType: expect.any(String), level: 40 });
  });
});
