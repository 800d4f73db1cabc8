import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/temporal/devServer';
import { ROOT } from '../support/cli';
import { killDemo, startDemo, type Demo } from '../support/demoProcess';

/** What `npm start` reports about the batches it could not dispatch. */
describe('`npm start` reporting parked batches', () => {
  const started: Demo[] = [];
  afterAll(() => {
    for (const demo of started) killDemo(demo);
  });

  it('shows how many batches parked, and the command that deals with them, in the last progress line, the done line and the --once JSON', async () => {
    // Every batch's one attempt fails: all of them park.
    const config = parse(readFileSync(join(ROOT, 'cdf.config.yaml'), 'utf8')) as { jobs: { local: Record<string, unknown> }; fanIn: Record<string, unknown> };
    config.jobs.local.failFirstAttemptRate = 1;
    config.fanIn.maxAttemptsPerBatch = 1;
    const dir = mkdtempSync(join(tmpdir(), 'cdf-parked-'));
    const configFile = join(dir, 'parking.config.yaml');
    writeFileSync(configFile, stringify(config));
    const d = await startDemo(['--once', '--commits', '1', '--config', configFile], { dir, address: `127.0.0.1:${await freePort()}`, uiPort: String(await freePort()) });
    started.push(d);
    expect(await d.exited).toBe(0);
    const output = d.output();
    const summary = JSON.parse(output.trim().split('\n').pop()!) as { batches: number; batchesSucceeded: number; parkedBatches: number };
    expect(summary.batches).toBeGreaterThan(0);
    expect(summary.batchesSucceeded).toBe(0);
    expect(summary.parkedBatches).toBe(summary.batches);
    const hint = `${summary.batches} parked — see: bin/cdf batches list --status parked`;
    const progress = output.match(/^\[start\] fan-in fi-\S+: .*$/gm) ?? [];
    expect(progress.at(-1)).toBe(progress.at(-1)!.replace(/: .*/, `: done, 0 of ${summary.batches} batch${summary.batches === 1 ? '' : 'es'} done, 0 running, ${hint}`));
    expect(output).toMatch(new RegExp(`^\\[start\\] done: .*\\(0 succeeded, ${hint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`, 'm'));
  });
});
