import { join } from 'node:path';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { ROOT, runProcess, writeConfigFile } from '../support/cli';
import { testConfig } from '../support/pipeline';
import { ensureDemoSourceTable } from '../../src/demo/upstream';

/** The local DuckDB lakehouse is a one-process demo: a second worker on it says so and stops. */
describe('a second worker on the local lakehouse', () => {
  it('exits 1 naming the process that holds the file and the way to run several workers', async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    const held = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    try {
      const result = await runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { CDF_CONFIG: writeConfigFile(config), TEMPORAL_ADDRESS: process.env.CDF_TEST_TEMPORAL_ADDRESS });
      expect(result.code).toBe(1);
      expect(result.stdout + result.stderr).toContain(
        `the local lakehouse ${config.lakehouse.local.path} is open in process ${process.pid} (npm start or another worker): DuckDB lets one process write it, so the local lakehouse runs one worker. Stop that process first, or, for several workers, use a shared lakehouse (lakehouse.target: databricks)`,
      );
    } finally {
      await held.close();
    }
  });

  it('npm run traffic, when the holder is no worker of this task queue, exits 1 saying so and writes nothing', async () => {
    const config = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    const held = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    try {
      await held.ensurePipelineTables();
      await ensureDemoSourceTable(held, config.sources[0]!);
      const before = await held.engine.describe('upstream.orders');
      const result = await runProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'traffic.ts'), '--commits', '1'], { CDF_CONFIG: writeConfigFile(config), TEMPORAL_ADDRESS: process.env.CDF_TEST_TEMPORAL_ADDRESS });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `the lakehouse file is held by process ${process.pid}, but no worker polls task queue ${config.temporal.taskQueue} on ${config.temporal.address} to hand the commits to`,
      );
      expect(result.stderr).toContain('Nothing was written');
      expect((await held.engine.describe('upstream.orders')).latestVersion).toBe(before.latestVersion);
    } finally {
      await held.close();
    }
  });
});
