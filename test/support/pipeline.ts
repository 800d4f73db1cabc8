import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalJobRunner, type BatchProcessor } from '../../src/jobs/local/localJobRunner';
import type { JobLauncher } from '../../src/jobs/port';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import type { Lakehouse } from '../../src/lakehouse/port';
import type { FaultInjector } from '../../src/faults/injector';
import { createPipelineWorker, type PipelineWorker } from '../../src/worker';

let runtimeInstalled = false;

/** Quiet runtime for tests: only errors from the SDK reach the console. */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // Already installed in this process by an earlier test file.
  }
  runtimeInstalled = true;
}

export interface TestConfigOverrides {
  sources?: { name: string; table: string; extraColumns?: string[]; startingVersion?: number }[];
  fanIn?: Partial<Omit<Config['fanIn'], 'onChange'>> & { onChange?: Partial<Config['fanIn']['onChange']> };
  worker?: Partial<Config['worker']>;
  capture?: Partial<Config['capture']>;
  jobs?: Partial<Config['jobs']['local']>;
  faults?: Partial<Config['lakehouse']['local']['faults']>;
  address?: string;
}

/** A config of its own for one test: unique task queue, workflow id prefix and data files. */
export function testConfig(overrides: TestConfigOverrides = {}): Config {
  const unique = randomBytes(4).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'cdf-test-'));
  return parseConfig({
    temporal: {
      address: overrides.address ?? process.env.CDF_TEST_TEMPORAL_ADDRESS,
      taskQueue: `cdf-test-${unique}`,
      workflowIdPrefix: `t${unique}`,
    },
    lakehouse: { target: 'local', local: { path: join(dir, 'lakehouse.duckdb'), faults: overrides.faults ?? {} } },
    jobs: { target: 'local', local: { path: join(dir, 'jobs.duckdb'), maxConcurrentRuns: 4, ...overrides.jobs } },
    sources: overrides.sources ?? [
      { name: 'orders', table: 'upstream.orders', extraColumns: ['status'] },
      { name: 'customers', table: 'upstream.customers' },
      { name: 'shipments', table: 'upstream.shipments' },
    ],
    capture: { maxVersionsPerRange: 3, pollIntervalSeconds: 3600, ...overrides.capture },
    fanIn: { batchSize: 100, concurrency: 3, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1, ...overrides.fanIn },
    worker: { shutdownGraceSeconds: 5, ...overrides.worker },
  });
}

export interface TestPipeline<L extends Lakehouse = LocalLakehouse> {
  config: Config;
  client: Client;
  lakehouse: L;
  jobs: LocalJobRunner;
  pipeline: PipelineWorker;
  /** Stops the worker and closes everything. */
  stop(): Promise<void>;
}

/** A real worker (real activities, real DuckDB, local runner) polling the shared dev server. */
export async function startTestPipeline(config: Config): Promise<TestPipeline> {
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { faults: config.lakehouse.local.faults, memoryLimitMB: config.lakehouse.local.memoryLimitMB });
  return startWorkerOn(config, lakehouse);
}

export interface WorkerOnOptions {
  /** Default: the bundle jest's global setup built. */
  bundlePath?: string;
  /** Default: from config.faults. */
  faults?: FaultInjector;
  /** The local runner's downstream work (default: the demo MERGE of the batch into the target). */
  processor?: BatchProcessor;
  /** The launcher the worker uses instead of the local runner (e.g. the Databricks client against a fake workspace). */
  launcher?: JobLauncher;
}

/** The real worker over a given lakehouse, with the local job runner running its demo processor. */
export async function startWorkerOn<L extends Lakehouse>(config: Config, lakehouse: L, options: WorkerOnOptions = {}): Promise<TestPipeline<L>> {
  installQuietRuntime();
  const jobs = await LocalJobRunner.open(config.jobs.local.path, {
    processor: options.processor ?? ((runKey, batchNumber) => lakehouse.processBatch(runKey, batchNumber)),
    maxConcurrentRuns: config.jobs.local.maxConcurrentRuns,
    failFirstAttemptRate: config.jobs.local.failFirstAttemptRate,
  });
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const pipeline = await createPipelineWorker({
    config,
    connection: nativeConnection,
    lakehouse,
    jobs: options.launcher ?? jobs,
    faults: options.faults,
    workflowBundle: { codePath: options.bundlePath ?? process.env.CDF_TEST_WORKFLOW_BUNDLE! },
  });
  const running = pipeline.worker.run();
  let stopped = false;
  return {
    config,
    client,
    lakehouse,
    jobs,
    pipeline,
    async stop() {
      if (stopped) return;
      stopped = true;
      pipeline.worker.shutdown();
      await running;
      await jobs.close();
      await lakehouse.close();
      await connection.close();
      await nativeConnection.close();
    },
  };
}

/** Terminates every open workflow of a test's prefix, so long-lived source workflows do not outlive it. */
export async function terminateWorkflows(client: Client, config: Config): Promise<void> {
  for await (const execution of client.workflow.list({ query: `TaskQueue = "${config.temporal.taskQueue}" AND ExecutionStatus = "Running"` })) {
    await client.workflow.getHandle(execution.workflowId).terminate('test finished').catch(() => undefined);
  }
}

/** A workflow's current details, as the Web UI reads them (the built-in __temporal_workflow_metadata query). */
export async function currentDetails(client: Client, workflowId: string, runId?: string): Promise<string> {
  const metadata = (await client.workflow.getHandle(workflowId, runId).query('__temporal_workflow_metadata')) as { currentDetails?: string };
  return metadata.currentDetails ?? '';
}
