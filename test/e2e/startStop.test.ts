import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { freePort, isFrontendReachable } from '../../src/temporal/devServer';
import { ROOT } from '../support/cli';

/*
 * `npm start` stopped the ways an operator stops it: Ctrl-C in the terminal (SIGINT to the whole
 * foreground process group), SIGTERM to the process (what Docker and most process managers
 * send), in start-up and while serving; and a run killed outright, whose dev server the next run
 * must find. Each stop must end with one `stopped` line, no dev server left listening and the
 * DuckDB files closed (no write-ahead log left, openable by the next process).
 */
interface Demo {
  child: ChildProcess;
  dir: string;
  address: string;
  output(): string;
  waitFor(pattern: RegExp): Promise<void>;
  exited: Promise<number | null>;
}

async function startDemo(args: string[], reuse?: { dir: string; address: string; uiPort: string }): Promise<Demo> {
  const dir = reuse?.dir ?? mkdtempSync(join(tmpdir(), 'cdf-stop-'));
  const address = reuse?.address ?? `127.0.0.1:${await freePort()}`;
  const env = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    CDF_UI_PORT: reuse?.uiPort ?? String(await freePort()),
    CDF_LOCAL_LAKEHOUSE_PATH: join(dir, 'lakehouse.duckdb'),
    CDF_LOCAL_JOBS_PATH: join(dir, 'jobs.duckdb'),
  };
  // Its own process group, as a shell runs a foreground job: Ctrl-C is a SIGINT to the group.
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const waiters: { pattern: RegExp; resolve(): void }[] = [];
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of waiters.filter((w) => w.pattern.test(output))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    dir,
    address,
    output: () => output,
    exited,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(output)) return resolve();
        waiters.push({ pattern, resolve });
        void exited.then((code) => reject(new Error(`npm start exited (${code}) before ${pattern}:\n${output}`)));
      }),
  };
}

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

const groupSignal = (demo: Demo, signal: NodeJS.Signals) => process.kill(-demo.child.pid!, signal);

describe('stopping `npm start`', () => {
  const started: Demo[] = [];
  afterAll(() => {
    for (const demo of started) {
      try {
        groupSignal(demo, 'SIGKILL');
      } catch {
        // already gone
      }
    }
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
