import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/temporal/devServer';
import { ROOT } from './cli';

/** `npm start` (scripts/start.ts) as a user runs it in a terminal, with its own data files and ports. */
export interface Demo {
  child: ChildProcess;
  dir: string;
  address: string;
  output(): string;
  waitFor(pattern: RegExp): Promise<void>;
  /** The exit code, or the signal that ended the process (e.g. "SIGABRT"). */
  exited: Promise<number | string | null>;
}

export async function startDemo(args: string[], reuse?: { dir: string; address: string; uiPort: string }): Promise<Demo> {
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
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => {
      // An unexpected end is easier to read with what the process printed.
      if (code !== 0 && code !== 130 && code !== 143 && signal !== 'SIGKILL') console.log(`npm start ended with ${code ?? signal}:\n${output}`);
      resolve(code ?? signal);
    }),
  );
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

/** Ctrl-C in a terminal: the signal goes to the whole foreground process group. */
export const groupSignal = (demo: Demo, signal: NodeJS.Signals) => process.kill(-demo.child.pid!, signal);

/** The environment that points a process (`npm run traffic`, `bin/cdf`) at a demo's server and files. */
export function demoEnv(demo: Demo): NodeJS.ProcessEnv {
  return { TEMPORAL_ADDRESS: demo.address, CDF_LOCAL_LAKEHOUSE_PATH: join(demo.dir, 'lakehouse.duckdb'), CDF_LOCAL_JOBS_PATH: join(demo.dir, 'jobs.duckdb') };
}

/**
 * For afterAll: kills a demo that is still running and the dev server it started (in a process
 * group of its own, so a SIGKILL to the demo's group leaves it running), so a failed test leaks
 * no server.
 */
export function killDemo(demo: Demo): void {
  const kill = (pid: number) => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  if (demo.child.exitCode === null && demo.child.signalCode === null) kill(-demo.child.pid!);
  const pidFile = join(demo.dir, 'temporal-dev-server.pid');
  if (existsSync(pidFile)) kill((JSON.parse(readFileSync(pidFile, 'utf8')) as { pid: number }).pid);
}
