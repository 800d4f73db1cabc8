import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../../src/cli/main';
import { parseConfig } from '../../src/config/load';
import { bundleVariables } from '../../src/databricks/bundleVariables';
import { JOB_PARAMETER_NAMES } from '../../src/jobs/databricks/jobsClient';
import { BUNDLE_DIR, bundleJob, loadBundle, pythonTaskInvocation } from '../support/bundle';
import { writeConfigFile } from '../support/cli';

/*
 * The Databricks Asset Bundle (databricks/) checked against the bundle's documented structure
 * (docs.databricks.com/dev-tools/bundles/settings and /resources: top-level mappings, variables,
 * targets with mode, jobs with parameters, queue, tasks with spark_python_task and either
 * environment_key or job_cluster_key) and against what the orchestrator sends. `databricks bundle
 * validate` needs a workspace and cannot run here.
 */
const bundle = loadBundle();
const { job, file: jobFile } = bundleJob(bundle, 'process_changed_uts');
const TOP_LEVEL = ['bundle', 'include', 'variables', 'targets', 'resources', 'workspace', 'artifacts', 'sync', 'permissions', 'run_as', 'presets', 'experimental', 'git'];

describe('the Databricks Asset Bundle', () => {
  it('uses only the bundle\'s top-level mappings, names the bundle and includes its resource files', () => {
    expect(Object.keys(bundle.root).filter((key) => !TOP_LEVEL.includes(key))).toEqual([]);
    expect(bundle.root.bundle.name).toBe('cdf-orchestrator');
    expect(bundle.resources.map((r) => r.file)).toContain(jobFile);
    for (const { doc } of bundle.resources) expect(Object.keys(doc)).toEqual(['resources']);
  });

  it('declares every variable it refers to, each with a description and a default', () => {
    const declared = bundle.root.variables as Record<string, { description?: string; default?: unknown }>;
    const texts = [readFileSync(join(BUNDLE_DIR, 'databricks.yml'), 'utf8'), ...bundle.resources.map((r) => readFileSync(r.file, 'utf8'))];
    const used = new Set(texts.flatMap((text) => [...text.matchAll(/\$\{var\.([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!)));
    expect([...used].filter((name) => !(name in declared))).toEqual([]);
    for (const [name, variable] of Object.entries(declared)) {
      expect({ name, description: typeof variable.description, default: variable.default === undefined }).toEqual({ name, description: 'string', default: false });
    }
    expect(Object.keys(declared)).toEqual(expect.arrayContaining(['catalog', 'schema', 'warehouse_id']));
  });

  it('has a dev target in development mode and a prod target in production mode with the explicit root path production mode requires', () => {
    expect(bundle.root.targets.dev.mode).toBe('development');
    expect(bundle.root.targets.prod.mode).toBe('production');
    expect(bundle.root.targets.prod.workspace.root_path).toMatch(/^\/Workspace\/.+\$\{bundle\.target\}$/);
  });

  it('defines every job parameter the launcher sends, queues launches and caps concurrent runs by fanIn.concurrency', () => {
    const names = (job.parameters as { name: string }[]).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining([...JOB_PARAMETER_NAMES]));
    expect(job.queue).toEqual({ enabled: true });
    expect(job.max_concurrent_runs).toBe('${var.max_concurrent_runs}');
    expect(job.tasks.map((task: { max_retries?: number }) => task.max_retries)).toEqual([0]);
  });

  it('passes the task each flag the PySpark file parses, from the run\'s job parameters', () => {
    const parameters = { cdf_run_key: 'fanin-1', cdf_batch_number: '3', cdf_batch_table: 'main.cdf.dispatch_batches', cdf_attempt: '2' };
    const { pythonFile, args } = pythonTaskInvocation(bundle, 'process_changed_uts', 'process_batch', parameters, {});
    expect(existsSync(pythonFile)).toBe(true);
    const parsed = [...readFileSync(pythonFile, 'utf8').matchAll(/add_argument\("(--[a-z-]+)"/g)].map((m) => m[1]);
    expect(args.filter((arg) => arg.startsWith('--')).sort()).toEqual(parsed.sort());
    expect(args).toEqual(expect.arrayContaining(['--run-key', 'fanin-1', '--batch-number', '3', '--batch-table', 'main.cdf.dispatch_batches', '--attempt', '2', '--master-table', 'main.demo.entity_master']));
  });

  it('gives the task exactly one kind of compute in each target: serverless in dev, a job cluster in prod', () => {
    for (const [name, kind] of [['dev', 'environment_key'], ['prod', 'job_cluster_key']] as const) {
      const override = bundle.root.targets[name].resources.jobs.process_changed_uts;
      const task = { ...job.tasks[0], ...override.tasks.find((t: { task_key: string }) => t.task_key === job.tasks[0].task_key) };
      expect({ name, environment: 'environment_key' in task, cluster: 'job_cluster_key' in task }).toEqual({ name, environment: kind === 'environment_key', cluster: kind === 'job_cluster_key' });
      const defined = kind === 'environment_key' ? override.environments.map((e: { environment_key: string }) => e.environment_key) : override.job_clusters.map((c: { job_cluster_key: string }) => c.job_cluster_key);
      expect(defined).toContain(task[kind]);
    }
  });
});

describe('cdf bundle-vars', () => {
  const config = parseConfig({
    sources: [{ name: 'orders', table: 'main.sales.orders' }],
    lakehouse: { target: 'databricks' },
    databricks: { warehouseHttpPath: '/sql/1.0/warehouses/abc123' },
    fanIn: { concurrency: 6 },
    tables: { batches: 'prod.cdf.dispatch_batches', master: 'prod.crm.entities', target: 'prod.crm.entities_out' },
  });

  it('derives from the config a value for bundle variables only, the job\'s concurrency and tables included', () => {
    const vars = bundleVariables(config);
    expect(Object.keys(vars).filter((name) => !(name in bundle.root.variables))).toEqual([]);
    expect(vars).toEqual({
      catalog: 'prod',
      schema: 'cdf',
      warehouse_id: 'abc123',
      batch_table: 'prod.cdf.dispatch_batches',
      master_table: 'prod.crm.entities',
      target_table: 'prod.crm.entities_out',
      max_concurrent_runs: '6',
      job_timeout_seconds: '7200',
    });
  });

  it('prints them as --var flags for databricks bundle deploy', async () => {
    let out = '';
    const code = await runCli(['node', 'cdf', '--config', writeConfigFile(config), 'bundle-vars'], { out: (t) => (out += t), err: (t) => (out += t) });
    expect(code).toBe(0);
    expect(out.split(' \\\n')[0]).toBe('--var="catalog=prod"');
    expect(out).toContain('--var="max_concurrent_runs=6"');
    expect(out).not.toContain('warning');
  });

  it('warns when the job\'s tables name no catalog', async () => {
    let err = '';
    const local = parseConfig({ sources: [{ name: 'orders', table: 'sales.orders' }] });
    const code = await runCli(['node', 'cdf', '--config', writeConfigFile(local), 'bundle-vars'], { out: () => undefined, err: (t) => (err += t) });
    expect(code).toBe(0);
    expect(err).toContain('warning: tables.batches (cdf.dispatch_batches), tables.master (demo.entity_master), tables.target (demo.entity_target) name no catalog');
  });
});
