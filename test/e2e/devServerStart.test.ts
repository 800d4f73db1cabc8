import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTemporalCli } from '../../src/temporal/cli';
import { freePort, isFrontendReachable, startDevServer } from '../../src/temporal/devServer';

/**
 * The dev server `npm start` runs binds the ports it is given after its own internal services
 * took ephemeral ones, and one of those can be its UI port (seen in CI). Here the UI port is held
 * by another listener for the first second: the start must still succeed, on the ports asked for.
 */
describe('starting the dev server on given ports', () => {
  it('starts again when a given port was taken at start-up and then freed, on the same ports', async () => {
    const cliPath = await ensureTemporalCli(() => undefined);
    const [port, uiPort] = [await freePort(), await freePort()];
    const holder = createServer().listen(uiPort, '127.0.0.1');
    await new Promise((resolve) => holder.once('listening', resolve));
    setTimeout(() => holder.close(), 1000);
    const dir = mkdtempSync(join(tmpdir(), 'cdf-dev-server-'));
    const server = await startDevServer({ cliPath, port, uiPort, dbFile: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal-server.log') });
    try {
      expect(server.address).toBe(`127.0.0.1:${port}`);
      expect(server.uiUrl).toBe(`http://127.0.0.1:${uiPort}`);
      expect(await isFrontendReachable(server.address)).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
