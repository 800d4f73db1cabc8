import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, Socket } from 'node:net';
import { Connection } from '@temporalio/client';

export interface DevServerOptions {
  cliPath: string;
  ip?: string;
  /** gRPC port; 0 picks a free one. */
  port?: number;
  /** Web UI port; omit for a headless server. */
  uiPort?: number;
  /** Persistent SQLite file; omit for an in-memory server. */
  dbFile?: string;
  namespace?: string;
  /** Namespace dynamic config, e.g. `{ 'limit.historyCount.suggestContinueAsNew': 100 }`. */
  dynamicConfig?: Record<string, string | number | boolean>;
  /** `--search-attribute` flags, e.g. from searchAttributeFlags(). */
  extraArgs?: string[];
  /** Server output goes here (the server is quiet at level warn). */
  logFile?: string;
  readyTimeoutMs?: number;
  /**
   * Runs the server in its own process group, so a terminal's Ctrl-C reaches only the process
   * that started it, which then drains its worker before stopping the server itself.
   */
  ownProcessGroup?: boolean;
  /** Where to note the server's pid and data file, so a later run can find a server this one left. */
  pidFile?: string;
  /** Aborting while the server starts stops it and rejects. */
  signal?: AbortSignal;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  pid: number;
  /** Stops the server (SIGTERM, SIGKILL after 10 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** Asks the server to stop without waiting (a forced exit of the process that owns it). */
  terminate(): void;
}

/**
 * Starts `temporal server start-dev` and resolves once its frontend answers. A port can be taken
 * before the server binds it, even a port it was given: the server's own internal services listen
 * on ephemeral ports first, and one of them may land on its UI port (seen in CI: "bind: address
 * already in use" on the UI port). A server that exits at start-up is started again a second
 * later, at most three times in all (on another port when it was given none); a port another
 * program keeps fails all three.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startDevServerOnce(options);
    } catch (error) {
      if (!(error instanceof DevServerExitedAtStart) || attempt >= 3 || options.signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** The server process ended before its frontend answered (e.g. a port in use); see its log. */
class DevServerExitedAtStart extends Error {
  override readonly name = 'DevServerExitedAtStart';
}

async function startDevServerOnce(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port || (await freePort());
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', options.namespace ?? 'default', '--log-level', 'warn'];
  if (options.uiPort) args.push('--ui-port', String(options.uiPort));
  else args.push('--headless');
  if (options.dbFile) {
    mkdirSync(dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
  }
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  args.push(...(options.extraArgs ?? []));

  // The server writes its log file itself: through a pipe it would die of SIGPIPE with the
  // process that started it, and a server in its own process group is meant to outlive a crash.
  let logFd: number | undefined;
  if (options.logFile) {
    mkdirSync(dirname(options.logFile), { recursive: true });
    logFd = openSync(options.logFile, 'a');
  }
  const child = spawn(options.cliPath, args, { stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'ignore'], detached: options.ownProcessGroup ?? false });
  if (logFd !== undefined) closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = `${ip}:${port}`;
  if (options.pidFile) writeFileSync(options.pidFile, JSON.stringify({ pid: child.pid!, address, dbFile: options.dbFile ?? null } satisfies PidFile));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (options.pidFile) rmSync(options.pidFile, { force: true });
  };
  const aborted = new Promise<'aborted'>((resolve) => {
    if (options.signal?.aborted) resolve('aborted');
    options.signal?.addEventListener('abort', () => resolve('aborted'), { once: true });
  });
  const ready = await Promise.race([waitForFrontend(address, options.readyTimeoutMs ?? 60_000), exited.then(() => 'exited' as const), aborted]);
  if (ready !== true) {
    await stop();
    if (ready === 'aborted') throw new DevServerStartAborted();
    if (ready === 'exited') throw new DevServerExitedAtStart(`temporal server start-dev exited at start-up at ${address} (args: ${args.join(' ')}); see ${options.logFile ?? 'its output'}`);
    throw new Error(`temporal server start-dev did not become ready at ${address} (args: ${args.join(' ')}); see ${options.logFile ?? 'its output'}`);
  }
  return {
    address,
    uiUrl: options.uiPort ? `http://${ip}:${options.uiPort}` : undefined,
    pid: child.pid!,
    stop,
    terminate: () => void child.kill('SIGTERM'),
  };
}

export class DevServerStartAborted extends Error {
  override readonly name = 'DevServerStartAborted';
  constructor() {
    super('the Temporal dev server was stopped while it started');
  }
}

interface PidFile {
  pid: number;
  address: string;
  dbFile: string | null;
}

/**
 * The dev server an earlier run started and left running (it crashed or was killed before it could
 * stop it), found through its pid file: alive, serving `address`, on the same data file. Its
 * handle stops it like one this run started. Null when there is none (the pid file of a server
 * that is gone is removed).
 */
export function findLeftDevServer(pidFile: string, address: string, dbFile: string): (DevServer & { leftBy: 'an earlier run' }) | null {
  if (!existsSync(pidFile)) return null;
  let noted: PidFile;
  try {
    noted = JSON.parse(readFileSync(pidFile, 'utf8')) as PidFile;
  } catch {
    rmSync(pidFile, { force: true });
    return null;
  }
  const isOurs = noted.address === address && noted.dbFile === dbFile && isAlive(noted.pid) && commandLineMentions(noted.pid, dbFile);
  if (!isOurs) {
    rmSync(pidFile, { force: true });
    return null;
  }
  const stop = async () => {
    signalProcess(noted.pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (isAlive(noted.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (isAlive(noted.pid)) signalProcess(noted.pid, 'SIGKILL');
    rmSync(pidFile, { force: true });
  };
  return { address, pid: noted.pid, leftBy: 'an earlier run', stop, terminate: () => signalProcess(noted.pid, 'SIGTERM') };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalProcess(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Guards against a reused pid: the process must be a server on this data file (Linux /proc; elsewhere trusted). */
function commandLineMentions(pid: number, text: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(text);
  } catch {
    return !existsSync('/proc/self');
  }
}

/** True if a Temporal frontend answers at `address` (host:port). */
export async function isFrontendReachable(address: string): Promise<boolean> {
  if (!(await tcpOpen(address))) return false;
  try {
    const connection = await Connection.connect({ address, connectTimeout: 2_000 });
    await connection.close();
    return true;
  } catch {
    return false;
  }
}

async function waitForFrontend(address: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isFrontendReachable(address)) return true;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

function tcpOpen(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(1_000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(false));
    socket.connect(port, host);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
