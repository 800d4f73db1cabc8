import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** The CLI tag that can still be go-installed (later tags carry a replace directive). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/** Outside the repository, so every fresh clone on this machine reuses one build. */
export const CLI_CACHE_DIR = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cdf-orchestrator', `temporal-${TEMPORAL_CLI_VERSION}`);

type Progress = (message: string) => void;

/** Finds a usable `temporal` binary: $TEMPORAL_CLI_PATH, then PATH, then our cache, then Go's bin dir. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env.TEMPORAL_CLI_PATH,
    ...(env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')),
    join(CLI_CACHE_DIR, 'temporal'),
    ...goBinDirs().map((dir) => join(dir, 'temporal')),
  ];
  return candidates.find((path): path is string => Boolean(path) && isExecutable(path!) && runsAsTemporal(path!));
}

/**
 * Returns a `temporal` binary, installing it if needed: `go install …@v1.5.1` where Go exists,
 * otherwise the Temporal SDK's own download. Idempotent; later calls find the cached binary.
 */
export async function ensureTemporalCli(progress: Progress = () => undefined): Promise<string> {
  const found = findTemporalCli();
  if (found) {
    progress(`temporal CLI: ${found}`);
    return found;
  }
  mkdirSync(CLI_CACHE_DIR, { recursive: true });
  if (hasGo()) {
    progress(`temporal CLI not found; building it with go install (${TEMPORAL_CLI_VERSION}, a few minutes the first time) ...`);
    const result = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
      env: { ...process.env, GOBIN: CLI_CACHE_DIR, GOFLAGS: '-mod=mod' },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const built = join(CLI_CACHE_DIR, 'temporal');
    if (result.status === 0 && isExecutable(built)) {
      progress(`temporal CLI installed: ${built}`);
      return built;
    }
    progress(`go install failed (exit ${result.status}); trying the Temporal SDK's download`);
  }
  return downloadWithSdk(progress);
}

/** The SDK's cached download (needs access to temporal.download). */
async function downloadWithSdk(progress: Progress): Promise<string> {
  progress('downloading the Temporal CLI through @temporalio/testing ...');
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const downloadDir = join(CLI_CACHE_DIR, 'sdk-download');
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'cached-download', downloadDir } } });
  await env.teardown();
  const binary = findFile(downloadDir, 'temporal');
  if (!binary) throw new Error(`the SDK download finished but no temporal binary is under ${downloadDir}`);
  const target = join(CLI_CACHE_DIR, 'temporal');
  copyFileSync(binary, target);
  progress(`temporal CLI downloaded: ${target}`);
  return target;
}

function goBinDirs(): string[] {
  if (!hasGo()) return [join(homedir(), 'go', 'bin')];
  try {
    const [gobin, gopath] = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8' }).split('\n');
    return [gobin, gopath ? join(gopath, 'bin') : undefined].filter((d): d is string => Boolean(d));
  } catch {
    return [];
  }
}

function hasGo(): boolean {
  return spawnSync('go', ['version'], { stdio: 'ignore' }).status === 0;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function runsAsTemporal(path: string): boolean {
  const result = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return result.status === 0 && /temporal version/.test(result.stdout);
}

function findFile(dir: string, name: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      const found = findFile(path, name);
      if (found) return found;
    } else if (entry.name === name || entry.name.startsWith(`${name}-`)) return path;
  }
  return undefined;
}
