import { spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../../src/temporal/devServer';

export interface Prometheus {
  url: string;
  /** An instant query through the HTTP API: each series' labels and value. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]>;
  stop(): Promise<void>;
}

/** Prometheus from Debian's packages, scraping `targets` (host:port) every second, as deploy/prometheus.yml does every 15 s. */
export async function startPrometheus(options: { binary: string; dir: string; jobs: Record<string, string[]> }): Promise<Prometheus> {
  mkdirSync(join(options.dir, 'data'), { recursive: true });
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    ...Object.entries(options.jobs).flatMap(([job, targets]) => [`  - job_name: ${job}`, '    static_configs:', `      - targets: [${targets.map((t) => `"${t}"`).join(', ')}]`]),
  ].join('\n');
  writeFileSync(join(options.dir, 'prometheus.yml'), `${config}\n`);
  const port = await freePort();
  const log = openSync(join(options.dir, 'prometheus.log'), 'a');
  const child = spawn(options.binary, ['--config.file', join(options.dir, 'prometheus.yml'), '--storage.tsdb.path', join(options.dir, 'data'), '--web.listen-address', `127.0.0.1:${port}`], { stdio: ['ignore', log, log] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`${url}/-/ready`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Prometheus did not start on ${url}; see ${join(options.dir, 'prometheus.log')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return {
    url,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`Prometheus query ${promql} failed: ${body.error}`);
      return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
