import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import Long from 'long';
import { freePort, isFrontendReachable } from '../../../src/temporal/devServer';
import type { Postgres } from './postgres';

export interface TemporalServer {
  address: string;
  namespace: string;
  /** The server's own Prometheus endpoint (host:port). */
  metricsAddress: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The Temporal server as a production cluster runs it, one process with all four services, on
 * PostgreSQL: the schema is created by the server's own SQL tool (what the auto-setup image of the
 * compose file does at start), then the server starts from a config like the one the image renders
 * (development-postgres12.yaml of the server's repository, with free ports).
 */
export async function startTemporalServer(options: { server: string; sqlTool: string; postgres: Postgres; dir: string; progress?: (message: string) => void }): Promise<TemporalServer> {
  const { postgres, dir } = options;
  mkdirSync(join(dir, 'config', 'dynamicconfig'), { recursive: true });
  for (const [database, schema] of [['temporal', 'postgresql/v12/temporal'], ['temporal_visibility', 'postgresql/v12/visibility']] as const) {
    options.progress?.(`Temporal: creating database ${database} and its schema (temporal-sql-tool)`);
    const base = ['--plugin', 'postgres12', '--ep', postgres.host, '-p', String(postgres.port), '-u', postgres.user, '--pw', postgres.password, '--db', database];
    sqlTool(options.sqlTool, [...base, 'create-database']);
    sqlTool(options.sqlTool, [...base, 'setup-schema', '-v', '0.0']);
    sqlTool(options.sqlTool, [...base, 'update-schema', '--schema-name', schema]);
  }
  // A port picked free here can be taken before the server binds it: a server that exits at
  // start-up is started again on other ports, at most three times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(options);
    } catch (error) {
      if (!(error instanceof ServerExitedAtStart) || attempt === 3) throw error;
      options.progress?.(`Temporal: ${error.message}; starting again on other ports`);
    }
  }
}

class ServerExitedAtStart extends Error {}

async function startOnFreePorts(options: { server: string; postgres: Postgres; dir: string; progress?: (message: string) => void }): Promise<TemporalServer> {
  const { postgres, dir } = options;
  const ports = { frontend: await freePort(), frontendHttp: await freePort(), history: await freePort(), matching: await freePort(), worker: await freePort(), metrics: await freePort() };
  const membership = { frontend: await smallPort(), history: await smallPort(), matching: await smallPort(), worker: await smallPort() };
  writeFileSync(join(dir, 'config', 'dynamicconfig', 'development-sql.yaml'), 'system.forceSearchAttributesCacheRefreshOnRead:\n  - value: true\n    constraints: {}\n');
  writeFileSync(join(dir, 'config', 'development.yaml'), serverConfig(postgres, ports, membership));
  const log = openSync(join(dir, 'temporal-server.log'), 'a');
  const child: ChildProcess = spawn(options.server, ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], { cwd: dir, stdio: ['ignore', log, log] });
  const address = `127.0.0.1:${ports.frontend}`;
  options.progress?.(`Temporal: server ${address} starting (log: ${join(dir, 'temporal-server.log')})`);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    const deadline = Date.now() + 90_000;
    while (!(await isFrontendReachable(address))) {
      if (child.exitCode !== null) throw new ServerExitedAtStart(`the Temporal server exited at start-up (code ${child.exitCode}); see ${join(dir, 'temporal-server.log')}`);
      if (Date.now() > deadline) throw new Error(`the Temporal server did not answer on ${address} within 90 s; see ${join(dir, 'temporal-server.log')}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await registerNamespace(address, 'default');
  } catch (error) {
    // Nothing is returned to stop it with: stop it here.
    if (child.exitCode === null) child.kill('SIGKILL');
    throw error;
  }
  return {
    address,
    namespace: 'default',
    metricsAddress: `127.0.0.1:${ports.metrics}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The membership table stores a port as a PostgreSQL smallint: below 32768, unlike the ephemeral ports the OS hands out. */
async function smallPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

function sqlTool(tool: string, args: string[]): void {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`temporal-sql-tool ${args.filter((a, i) => args[i - 1] !== '--pw').join(' ')} failed: ${result.stderr}${result.stdout}`);
}

/** A fresh cluster has no namespace (the dev server makes `default` itself); the registration takes a moment to be seen. */
async function registerNamespace(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(24 * 3600) } }).catch((error: Error) => {
      if (!/already exists|AlreadyExists/i.test(error.message)) throw error;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await connection.workflowService.describeNamespace({ namespace }).then(() => true, () => false);
      if (ready) return;
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} not visible 30 s after its registration`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } finally {
    await connection.close();
  }
}

function serverConfig(postgres: Postgres, ports: Record<'frontend' | 'frontendHttp' | 'history' | 'matching' | 'worker' | 'metrics', number>, membership: Record<'frontend' | 'history' | 'matching' | 'worker', number>): string {
  const datastore = (database: string, maxConns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: "${database}"
        connectAddr: "${postgres.host}:${postgres.port}"
        connectProtocol: "tcp"
        user: "${postgres.user}"
        password: "${postgres.password}"
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (name: 'history' | 'matching' | 'worker') => `  ${name}:
    rpc:
      grpcPort: ${ports[name]}
      membershipPort: ${membership[name]}
      bindOnLocalHost: true`;
  return `log:
  stdout: true
  level: warn

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
${datastore('temporal', 20)}
    postgres-visibility:
${datastore('temporal_visibility', 5)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:${ports.metrics}"

services:
  frontend:
    rpc:
      grpcPort: ${ports.frontend}
      membershipPort: ${membership.frontend}
      bindOnLocalHost: true
      httpPort: ${ports.frontendHttp}
${service('matching')}
${service('history')}
${service('worker')}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:${ports.frontend}"

dcRedirectionPolicy:
  policy: "noop"

dynamicConfigClient:
  filepath: "config/dynamicconfig/development-sql.yaml"
  pollInterval: "10s"
`;
}
