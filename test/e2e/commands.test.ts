import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/temporal/devServer';
import { ROOT, runProcess } from '../support/cli';

describe('the commands a newcomer runs', () => {
  /** One `npm start -- --once --commits 1` on a fresh data directory, shared by the tests that read its output. */
  let once: ReturnType<typeof runProcess> | undefined;
  const runOnce = async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdf-start-'));
    return runProcess('npm', ['start', '--silent', '--', '--once', '--commits', '1'], {
      TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}`,
      CDF_UI_PORT: String(await freePort()),
      CDF_LOCAL_LAKEHOUSE_PATH: join(dir, 'lakehouse.duckdb'),
      CDF_LOCAL_JOBS_PATH: join(dir, 'jobs.duckdb'),
    });
  };
  const startOnce = () => (once ??= runOnce());

  it('`npm start -- --once` starts its own dev server, runs a full cycle and ends with a consistent JSON summary', async () => {
    const result = await startOnce();
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').pop()!);
    expect(summary.sources).toBe(3);
    expect(summary.changesCaptured).toBeGreaterThan(0);
    expect(summary.registryRows).toBe(summary.changesCaptured);
    expect(summary.batches).toBe(Math.ceil(summary.changedIds / 500)); // fanIn.batchSize in cdf.config.yaml
    expect(summary.batchesSucceeded).toBe(summary.batches);
    expect(summary.targetRows).toBe(summary.changedIds);
    expect(result.stdout).toMatch(/Temporal Web UI: http:\/\/127\.0\.0\.1:\d+/);
  });

  it('`npm start -- --once` says what it did, in order: the UI link first, the commits asked for, the rows this run inserted, counts in the right number', async () => {
    const result = await startOnce();
    expect(result.code).toBe(0);
    const out = result.stdout;
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { changesCaptured: number; changedIds: number; batches: number };
    expect(out.indexOf('Temporal Web UI: ')).toBeGreaterThanOrEqual(0);
    expect(out.indexOf('Temporal Web UI: ')).toBeLessThan(out.indexOf('bundling workflows'));
    // A fresh lakehouse: the seed commit, then exactly the one commit asked for, per source.
    for (const table of ['upstream.orders', 'upstream.customers', 'upstream.shipments']) {
      expect(out).toMatch(new RegExp(`upstream ${table.replace('.', '\\.')}: a seed commit \\([\\d,]+ rows\\) and 1 commit \\([\\d,]+ row changes?\\), now at version \\d+`));
    }
    expect(out).toContain(`capture: ${summary.changesCaptured.toLocaleString('en-US')} registry rows inserted by this run`);
    const ids = summary.changedIds === 1 ? 'changed id' : 'changed ids';
    const batches = summary.batches === 1 ? '1 batch ' : `${summary.batches} batches `;
    expect(out).toContain(`done: ${summary.changedIds.toLocaleString('en-US')} ${ids} in ${batches}`);
  });

  it('the worker process stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdf-worker-'));
    const configFile = join(dir, 'cdf.config.yaml');
    writeFileSync(
      configFile,
      [
        `temporal: { address: "${process.env.CDF_TEST_TEMPORAL_ADDRESS}", taskQueue: "sigterm-${Date.now()}" }`,
        `lakehouse: { local: { path: "${join(dir, 'lakehouse.duckdb')}" } }`,
        `jobs: { local: { path: "${join(dir, 'jobs.duckdb')}" } }`,
        'worker: { shutdownGraceSeconds: 5 }',
        'sources: [{ name: orders, table: upstream.orders }]',
      ].join('\n'),
    );
    // The process behind `npm run worker`, signalled directly as a process manager would.
    const result = await runProcess(join(ROOT, 'node_modules', '.bin', 'tsx'), ['src/worker.ts'], { CDF_CONFIG: configFile }, (child) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('worker started')) child.kill('SIGTERM');
      });
    });
    expect(result.stderr).toContain('worker started');
    expect(result.stderr).toContain('worker stopped');
    expect(result.code).toBe(0);
  });

  it('refuses to start on an invalid config, naming the field, and starts nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdf-bad-'));
    const configFile = join(dir, 'cdf.config.yaml');
    writeFileSync(configFile, 'sources: [{ name: orders, table: "upstream.orders; DROP TABLE x" }]\nfanIn: { batchSize: -1 }\n');
    const result = await runProcess('npm', ['start', '--silent', '--', '--once', '--config', configFile], {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('sources[0].table');
    expect(result.stderr).toContain('fanIn.batchSize');
    expect(result.stdout).not.toContain('starting the Temporal dev server');
  });
});
