import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { isFrontendReachable } from '../../src/temporal/devServer';
import { groupSignal, killDemo, startDemo, type Demo } from '../support/demoProcess';

/*
 * `npm start` stopped the ways an operator stops it: Ctrl-C in the terminal (SIGINT to the whole
 * foreground process group), SIGTERM to the process (what Docker and most process managers
 * send), in start-up and while serving; and a run killed outright, whose dev server the next run
 * must find. Each stop must end with one `stopped` line, no dev server left listening and the
 * DuckDB files closed (no write-ahead log left, openable by the next process).
 */
/** What every clean stop leaves: one `stopped` line, no server, no lock, no write-ahead log. */
async function expectStoppedCleanly(demo: Demo): Promise<void> {
  const output = demo.output();
  expect(output.match(/^\[start\] stopped$/gm)).toHaveLength(1);
  expect(output).not.toMatch(/failed|IllegalStateError|Error:/);
  expect(await isFrontendReachable(demo.address)).toBe(false);
  expect(existsSync(join(demo.dir, 'temporal-dev-server.pid'))).toBe(false);
  const path = join(demo.dir, 'lakehouse.duckdb');
  expect(existsSync(`${path}.wal`)).toBe(false);
  const reopened = await LocalLakehouse.open(path, parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] }, 'test').tables);
  await reopened.close();
}

describe('stopping `npm start`', () => {
  const started: Demo[] = [];
  afterAll(() => {
    for (const demo of started) killDemo(demo);
  });
  const demo = async (args: string[], reuse?: Parameters<typeof startDemo>[1]) => {
    const d = await startDemo(args, reuse);
    started.push(d);
    return d;
  };

  it('by Ctrl-C while serving: drains the worker once, stops its dev server and exits 0', async () => {
    const d = await demo(['--commits', '1']);
    await d.waitFor(/serving:/);
    groupSignal(d, 'SIGINT');
    expect(await d.exited).toBe(0);
    expect(d.output()).toMatch(/SIGINT: stopping/);
    await expectStoppedCleanly(d);
  });

  it('by SIGTERM to the process while serving: the same clean stop, exit 0', async () => {
    const d = await demo(['--commits', '1']);
    await d.waitFor(/serving:/);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
    await expectStoppedCleanly(d);
  });

  it('by Ctrl-C during start-up: stops what it started and exits 130', async () => {
    const d = await demo(['--commits', '1']);
    await d.waitFor(/bundling workflows/);
    groupSignal(d, 'SIGINT');
    expect(await d.exited).toBe(130);
    await expectStoppedCleanly(d);
  });

  it('by SIGTERM while capturing: stops and exits 143', async () => {
    const d = await demo(['--commits', '1']);
    await d.waitFor(/upstream \S+: .*now at version/);
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(143);
    await expectStoppedCleanly(d);
  });

  it('by Ctrl-C during the fan-in: stops cleanly before serving and exits 130', async () => {
    const d = await demo(['--commits', '1']);
    await d.waitFor(/fan-in: refreshing the changed-ids view/);
    groupSignal(d, 'SIGINT');
    expect(await d.exited).toBe(130);
    expect(d.output()).not.toMatch(/serving:/);
    await expectStoppedCleanly(d);
  });

  it('after a run killed outright, the next run reuses the dev server it left, says so, and stops it', async () => {
    const first = await demo(['--commits', '1']);
    await first.waitFor(/serving:/);
    first.child.kill('SIGKILL'); // the process alone: its dev server, in its own group, is left running
    await first.exited;
    expect(await isFrontendReachable(first.address)).toBe(true);
    const uiPort = /Temporal Web UI: http:\/\/127\.0\.0\.1:(\d+)/.exec(first.output())![1]!;
    const second = await demo(['--once', '--no-traffic'], { dir: first.dir, address: first.address, uiPort });
    const code = await second.exited;
    if (code !== 0) console.log(second.output());
    expect(code).toBe(0);
    expect(second.output()).toMatch(/reusing the dev server an earlier run left on 127\.0\.0\.1:\d+ \(pid \d+, same data file/);
    expect(await isFrontendReachable(first.address)).toBe(false);
    expect(existsSync(join(first.dir, 'temporal-dev-server.pid'))).toBe(false);
  });
});
