import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The production topology's binaries, for the cluster tier: PostgreSQL and Prometheus from
 * Debian's packages, and the Temporal server and its SQL schema tool built from source (the
 * docker-compose file runs the same server version, 1.29.1, from its image). They are built in the
 * module of ./temporal-build, whose dependency graph is the Temporal CLI's own: the CLI, built
 * first for the main tier, has already compiled every package the two share, so on a fresh machine
 * this build compiles only the server's own packages instead of the server's whole graph again.
 */
export const TEMPORAL_SERVER_VERSION = '1.29.1';

/** Outside the repository, so every fresh clone on this machine reuses one build. */
export const CLUSTER_CACHE_DIR = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cdf-orchestrator', `temporal-server-v${TEMPORAL_SERVER_VERSION}`);

export interface ClusterBinaries {
  /** PostgreSQL's bin directory (initdb, pg_ctl, postgres, psql). */
  postgresBin: string;
  prometheus: string;
  temporalServer: string;
  temporalSqlTool: string;
}

type Progress = (message: string) => void;

/** Installs what is missing, each piece once; prints what it does, since a first build takes minutes. */
export function ensureClusterBinaries(progress: Progress = () => undefined): ClusterBinaries {
  mkdirSync(CLUSTER_CACHE_DIR, { recursive: true });
  const missingPackages = [!findPostgresBin() && 'postgresql', !existsSync('/usr/bin/prometheus') && 'prometheus'].filter((p): p is string => Boolean(p));
  if (missingPackages.length > 0) {
    progress(`installing ${missingPackages.join(' and ')} from Debian's packages ...`);
    run('apt-get', ['update', '-qq'], { DEBIAN_FRONTEND: 'noninteractive' });
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missingPackages], { DEBIAN_FRONTEND: 'noninteractive' });
  } else progress('postgresql, prometheus: installed');
  const temporalServer = join(CLUSTER_CACHE_DIR, 'server');
  const temporalSqlTool = join(CLUSTER_CACHE_DIR, 'sql');
  if (existsSync(temporalServer) && existsSync(temporalSqlTool)) progress(`temporal server ${TEMPORAL_SERVER_VERSION}: cached`);
  else {
    const started = Date.now();
    progress(`building the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool with go build, in the Temporal CLI's dependency graph (a few minutes the first time) ...`);
    run('go', ['build', '-o', `${CLUSTER_CACHE_DIR}/`, 'go.temporal.io/server/cmd/server', 'go.temporal.io/server/cmd/tools/sql'], { GOFLAGS: '-mod=mod' }, TEMPORAL_BUILD_MODULE);
    progress(`temporal server built in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  const postgresBin = findPostgresBin();
  if (!postgresBin) throw new Error('PostgreSQL was installed but no /usr/lib/postgresql/<version>/bin/initdb was found');
  return { postgresBin, prometheus: '/usr/bin/prometheus', temporalServer, temporalSqlTool };
}

function findPostgresBin(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0]!, 'bin') : null;
}

/** The Go module that pins the server's build to the CLI's dependency graph (its go.mod and go.sum are committed). */
const TEMPORAL_BUILD_MODULE = join(__dirname, 'temporal-build');

function run(command: string, args: string[], env: Record<string, string> = {}, cwd?: string): void {
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  if (result.error) throw new Error(`${command} could not be run (${result.error.message})${command === 'go' ? ': the Temporal server is built with Go (1.25 or later)' : ''}`);
  if (result.status !== 0) {
    const hint = command === 'apt-get' && process.getuid?.() !== 0 ? ' (apt-get needs root: run npm run setup:cluster as root, or install postgresql and prometheus yourself)' : '';
    throw new Error(`${command} ${args.join(' ')} failed (exit ${result.status ?? result.signal})${hint}`);
  }
}
