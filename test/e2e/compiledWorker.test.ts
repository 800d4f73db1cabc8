import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/devServer';
import { CDF_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';
import type { SourceStatus } from '../../src/workflows/messages';
import { ROOT, runProcess, writeConfigFile } from '../support/cli';
import { eventually, stopChild } from '../support/eventually';
import { writeRandomTraffic } from '../support/traffic';

/**
 * What the Dockerfile builds and runs, run here as processes (Docker cannot run on this machine):
 * `tsc -p tsconfig.build.json`, then `node dist/src/worker.js` and `node dist/src/cli/main.js`
 * (the compose file's `cdf` service) with the image's environment, against a Temporal server
 * whose namespace has none of the pipeline's search attributes, as a fresh cluster's has not.
 */
describe('the compiled worker, as the Docker image runs it', () => {
  const dist = join(ROOT, 'dist');
  let server: DevServer;
  let config: Config;
  let configFile: string;
  let metricsBase: string;
  let worker: ChildProcess;
  let log = '';
  const env = () => ({ NODE_ENV: 'production', MALLOC_ARENA_MAX: '2', CDF_CONFIG: configFile, TEMPORAL_ADDRESS: server.address });
  const compiledCdf = (...args: string[]) => runProcess(process.execPath, [join(dist, 'src', 'cli', 'main.js'), ...args], env());

  beforeAll(async () => {
    const build = await runProcess(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
    if (build.code !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${build.stdout}${build.stderr}`);
    server = await startDevServer({ cliPath: process.env.TEMPORAL_CLI_PATH! }); // no --search-attribute flags
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cdf-compiled-'));
    config = parseConfig({
      temporal: { address: server.address, taskQueue: 'cdf-compiled-worker' },
      lakehouse: { local: { path: join(dir, 'lakehouse.duckdb') } },
      jobs: { local: { path: join(dir, 'jobs.duckdb') } },
      capture: { pollIntervalSeconds: 1 },
      worker: { metrics: { port } },
      sources: [{ name: 'orders', table: 'upstream.orders' }],
    });
    configFile = writeConfigFile(config);
    metricsBase = `http://127.0.0.1:${port}`;
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables);
    await lakehouse.ensurePipelineTables();
    await writeRandomTraffic(lakehouse, config.sources[0]!, { commits: 3, maxOpsPerCommit: 5, idSpace: 40, seed: 7 });
    await lakehouse.close();
    worker = spawn(process.execPath, ['--max-semi-space-size=2', join(dist, 'src', 'worker.js')], { cwd: ROOT, env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.stdout!.on('data', (chunk) => (log += chunk));
    worker.stderr!.on('data', (chunk) => (log += chunk));
  }, 120_000);

  afterAll(async () => {
    if (worker) await stopChild(worker, 'SIGKILL');
    await server?.stop();
  });

  it('registers the search attributes the fresh namespace lacks and answers /healthz with 200 while polling', async () => {
    await eventually(() => fetch(`${metricsBase}/healthz`).then((r) => (r.status === 200 ? true : undefined), () => undefined), 60_000, () => log);
    expect(log).toContain('"msg":"search attributes registered"');
    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(CDF_SEARCH_ATTRIBUTES.map((key) => key.name)));
    } finally {
      await connection.close();
    }
  });

  it('the compiled cdf (the compose file\'s cdf service) starts the sources, which capture to the table\'s latest version', async () => {
    const applied = await compiledCdf('sources', 'apply');
    expect(applied).toEqual(expect.objectContaining({ code: 0 }));
    expect(applied.stdout).toMatch(/^start\s+cdf-source-orders/m);
    const status = await eventually(async () => {
      const result = await compiledCdf('status', 'orders', '--json');
      const parsed = result.code === 0 ? (JSON.parse(result.stdout) as SourceStatus) : null;
      return parsed && parsed.latestVersion !== null && parsed.offsetVersion === parsed.latestVersion ? parsed : undefined;
    }, 60_000, () => log);
    expect(status.totals.registryRowsInserted).toBeGreaterThan(0);
  });

  it('imports no package that `npm prune --omit=dev` removes from the image', () => {
    const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const imported = new Set<string>();
    for (const file of jsFiles(join(dist, 'src'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/require\("([^".][^"]*)"\)/g)) {
        const specifier = match[1]!;
        if (specifier.startsWith('node:') || builtinModules.includes(specifier)) continue;
        imported.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(5);
    expect([...imported].filter((name) => !(name in dependencies))).toEqual([]);
  });

  it('stops on SIGTERM (docker stop) with exit code 0 after draining', async () => {
    worker.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => worker.once('exit', resolve));
    expect({ code, stopped: log.includes('"msg":"worker stopped"') }).toEqual({ code: 0, stopped: true });
  });
});

function jsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? jsFiles(path) : path.endsWith('.js') ? [path] : [];
  });
}
