import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import YAML from 'yaml';
import { loadConfig } from '../../src/config/load';
import { CDF_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';

/*
 * The deployment files, checked statically (Docker cannot run on this machine): docker-compose.yml
 * against the Compose Specification's JSON schema, and what the files must agree on with each
 * other and with the worker. The compiled worker the Dockerfile runs is started for real in
 * test/e2e/compiledWorker.test.ts.
 */
const ROOT = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
type Service = { image?: string; build?: unknown; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }> | string[]; entrypoint?: string[]; volumes?: string[] };
const compose = YAML.parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const workers = Object.entries(services).filter(([, service]) => service.build !== undefined);

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    // The spec names its meta-schema by https, which Ajv knows only by http: it is draft-07 either way.
    const { $schema: _metaSchema, ...schema } = JSON.parse(read('test/fixtures/compose-spec.json')) as Record<string, unknown>;
    const validate = ajv.compile(schema);
    // Checked as Compose sees it: with the x-worker anchor merged into each worker.
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('runs PostgreSQL, the Temporal server with its schema set-up, the Web UI, two workers, Prometheus and Grafana', () => {
    expect(Object.keys(services).sort()).toEqual(['cdf', 'grafana', 'postgresql', 'prometheus', 'temporal', 'temporal-setup', 'temporal-ui', 'worker-1', 'worker-2']);
    expect(workers.map(([name]) => name)).toEqual(['worker-1', 'worker-2']);
    expect(services.temporal!.image).toMatch(/^temporalio\/auto-setup:/);
    expect(services.temporal!.environment).toEqual(expect.objectContaining({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' }));
  });

  it('pins every image to a version', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(`${name}: ${service.image}`).toMatch(/^[\w-]+: [\w./-]+:v?\d+\.\d+[\w.-]*$/);
    }
  });

  it('takes every secret from the environment (.env), never a literal', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/TOKEN|SECRET|PASSWORD|PWD|API_KEY/.test(key)) expect(`${name}.${key}=${value}`).toMatch(/=\$\{[A-Z_]+:\?[^}]+\}$/);
      }
    }
    const example = read('.env.example');
    for (const variable of new Set([...read('docker-compose.yml').matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]!))) expect(example).toMatch(new RegExp(`^${variable}=`, 'm'));
  });

  it('starts the workers once the search attributes are registered', () => {
    for (const [, worker] of workers) expect(worker.depends_on).toEqual({ 'temporal-setup': { condition: 'service_completed_successfully' } });
    const script = read('deploy/register-search-attributes.sh');
    for (const key of CDF_SEARCH_ATTRIBUTES) expect(script).toContain(`${key.name}=${key.type === 'INT' ? 'Int' : 'Keyword'}`);
  });

  it('has Prometheus scrape every worker on the metrics port of the config the workers mount', () => {
    // Loaded with the image's environment, which sets the metrics port and host too.
    const imageEnv = Object.fromEntries([...read('Dockerfile').matchAll(/^\s*(?:ENV\s+)?(CDF_METRICS_\w+)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    expect(Object.keys(imageEnv).sort()).toEqual(['CDF_METRICS_HOST', 'CDF_METRICS_PORT']);
    const config = loadConfig({ file: join(ROOT, 'deploy', 'cdf.config.yaml'), env: imageEnv });
    expect(config.lakehouse.target).toBe('databricks'); // the local lakehouse cannot serve two workers
    expect(config.worker.metrics).toEqual(expect.objectContaining({ port: 9464, host: '0.0.0.0' }));
    const prometheus = YAML.parse(read('deploy/prometheus.yml')) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((s) => s.targets));
    expect(targets.sort()).toEqual(workers.map(([name]) => `${name}:${config.worker.metrics.port}`).sort());
    for (const [, worker] of workers) expect(worker.volumes).toContain('./deploy/cdf.config.yaml:/etc/cdf/cdf.config.yaml:ro');
  });
});

describe('the Grafana provisioning (deploy/grafana)', () => {
  it('gives the dashboard the data source it names, the compose file\'s Prometheus', () => {
    const datasources = YAML.parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; type: string; url: string }[] };
    expect(datasources.datasources).toEqual([expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' })]);
    const dashboard = JSON.parse(read('deploy/grafana/dashboards/cdf-orchestrator.json')) as { panels: { datasource: { uid: string }; targets: { datasource: { uid: string } }[] }[] };
    for (const panel of dashboard.panels) {
      expect(panel.datasource.uid).toBe('prometheus');
      for (const target of panel.targets) expect(target.datasource.uid).toBe('prometheus');
    }
  });

  it('mounts the provisioning and the dashboards where the provider looks for them', () => {
    const provider = YAML.parse(read('deploy/grafana/provisioning/dashboards/cdf-orchestrator.yml')) as { providers: { options: { path: string } }[] };
    expect(services.grafana!.volumes).toEqual(expect.arrayContaining(['./deploy/grafana/provisioning:/etc/grafana/provisioning:ro', `./deploy/grafana/dashboards:${provider.providers[0]!.options.path}:ro`]));
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile.split('\n').filter((line) => /^[A-Z]+ /.test(line));

  it('builds in one stage and runs the compiled worker in another, from pinned images', () => {
    const from = instructions.filter((line) => line.startsWith('FROM '));
    expect(from).toHaveLength(2);
    for (const line of from) expect(line).toMatch(/^FROM node:\d+\.\d+\.\d+-bookworm-slim/);
    expect(dockerfile).toContain('npx tsc -p tsconfig.build.json');
    expect(instructions.at(-1)).toBe('CMD ["node", "--max-semi-space-size=2", "dist/src/worker.js"]');
  });

  it('runs as the unprivileged user node, with a health check on /healthz of the metrics port it exposes', () => {
    const lastFrom = instructions.map((line) => line.startsWith('FROM ')).lastIndexOf(true);
    const runtime = instructions.slice(lastFrom);
    expect(runtime).toContain('USER node');
    expect(runtime).toContain('EXPOSE 9464');
    expect(dockerfile).toMatch(/HEALTHCHECK [^\n]*\\\n\s+CMD \["node", "-e", "fetch\('http:\/\/127\.0\.0\.1:' \+ process\.env\.CDF_METRICS_PORT \+ '\/healthz'\)/);
    expect(dockerfile).toMatch(/CDF_METRICS_PORT=9464/);
  });

  it('keeps the worker process settings the benchmarks measured (src/workerProcessSettings.ts)', () => {
    expect(dockerfile).toMatch(/MALLOC_ARENA_MAX=2/);
    expect(dockerfile).toContain('--max-semi-space-size=2');
  });
});
