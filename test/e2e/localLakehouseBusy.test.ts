import { join } from 'node:path';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { ROOT, runProcess, writeConfigFile } from '../support/cli';
import { testConfig } from '../support/pipeline';

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
});
