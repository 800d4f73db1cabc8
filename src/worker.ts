import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from './activities';
import { autoHeartbeat } from './activities/autoHeartbeat';
import { logAttributes } from './activities/logAttributes';
import { Client } from '@temporalio/client';
import { connectClient, connectWorker } from './temporal/connection';
import { freePort } from './temporal/devServer';
import { ensureSearchAttributes } from './temporal/searchAttributes';
import { activityMetrics } from './metrics/activityMetrics';
import { PipelineMetrics } from './metrics/pipelineMetrics';
import { startMetricsServer } from './metrics/server';
import { loadConfig } from './config/load';
import { workflowCacheSize, type Config } from './config/schema';
import { openJobLauncher, type JobLauncher } from './jobs';
import { openLakehouse, type Lakehouse } from './lakehouse';
import { FaultInjector } from './faults/injector';
import { withJobFaults, withLakehouseFaults } from './faults/faultyAdapters';
import { logger, temporalLogger } from './logging';

export interface PipelineWorker {
  worker: Worker;
  lakehouse: Lakehouse;
  jobs: JobLauncher;
  faults: FaultInjector;
  /** Closes the adapters; call after `worker.run()` has returned. */
  closeAdapters(): Promise<void>;
}

export interface CreateWorkerOptions {
  config: Config;
  connection: NativeConnection;
  /** A pre-built bundle (tests build one and share it); default: bundle src/workflows at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Adapters already open in this process (the demo writes upstream traffic through the same DuckDB). */
  lakehouse?: Lakehouse;
  jobs?: JobLauncher;
  /** Fault injection (default: from config.faults, off unless a rate is set). */
  faults?: FaultInjector;
  /** Extra activity interceptors after the built-in heartbeat (the reliability suite traces activities with one). */
  activityInterceptors?: NonNullable<NonNullable<WorkerOptions['interceptors']>['activity']>;
  /** The pipeline's Prometheus metrics, fed by every activity and Jobs API retry of this worker. */
  metrics?: PipelineMetrics;
}

/**
 * Wires config → adapters → activities → Worker. Limits suit a 2-core machine doing IO-bound
 * work: few workflow tasks at once, a handful of activities, a cache big enough for every source.
 */
export async function createPipelineWorker(options: CreateWorkerOptions): Promise<PipelineWorker> {
  const { config } = options;
  const faults = options.faults ?? new FaultInjector(config.faults);
  const openedLakehouse = options.lakehouse ?? (await openLakehouse(config));
  await openedLakehouse.ensurePipelineTables();
  const openedJobs = options.jobs ?? (await openJobLauncher(config, openedLakehouse, { onJobsApiRetry: () => options.metrics?.jobsApiRetried() }));
  // Faults sit between the activities and the adapters; the downstream job itself runs unharmed.
  const lakehouse = faults.enabled ? withLakehouseFaults(openedLakehouse, faults) : openedLakehouse;
  const jobs = faults.enabled ? withJobFaults(openedJobs, faults) : openedJobs;
  const cacheSize = workflowCacheSize(config.sources.length, config.worker.maxCachedWorkflows);
  const worker = await Worker.create({
    connection: options.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('./workflows') }),
    activities: createActivities({ config, lakehouse, jobs }),
    interceptors: { activity: [logAttributes, autoHeartbeat, ...(options.metrics ? [activityMetrics(options.metrics)] : []), ...(options.activityInterceptors ?? [])] },
    maxConcurrentWorkflowTaskExecutions: Math.min(config.worker.maxConcurrentWorkflowTasks, cacheSize),
    maxCachedWorkflows: cacheSize,
    maxConcurrentActivityTaskExecutions: config.worker.maxConcurrentActivities,
    // In-flight activities get this long to finish on SIGTERM; after it they are cancelled and retried elsewhere.
    shutdownGraceTime: `${config.worker.shutdownGraceSeconds} seconds`,
    shutdownForceTime: `${config.worker.shutdownGraceSeconds + 30} seconds`,
  });
  const ownsLakehouse = !options.lakehouse;
  const ownsJobs = !options.jobs;
  return {
    worker,
    lakehouse,
    jobs,
    faults,
    async closeAdapters() {
      if (ownsJobs) await openedJobs.close();
      if (ownsLakehouse) await openedLakehouse.close();
    },
  };
}

/** `npm run worker`: one worker process until SIGINT/SIGTERM (the Runtime turns those into a graceful shutdown). */
async function main(): Promise<void> {
  await runWorkerProcess(loadConfig());
}

/**
 * The worker process: Runtime (JSON logs, the core's metrics), search attributes, the worker,
 * the metrics server when configured; runs until SIGINT/SIGTERM, then closes everything.
 * `adapters` are for a process whose lakehouse or job launcher cannot come from the config alone
 * (the cluster tier's workers reach a Spark Thrift Server and a Jobs API emulator through test shims).
 */
export async function runWorkerProcess(config: Config, adapters: { lakehouse?: Lakehouse; jobs?: JobLauncher } = {}): Promise<void> {
  const metricsOn = config.worker.metrics.port !== undefined;
  // The SDK core's own metrics go to an exporter on loopback that /metrics appends to the pipeline's.
  const coreMetricsAddress = metricsOn ? `127.0.0.1:${await freePort()}` : null;
  Runtime.install({
    logger: temporalLogger('INFO'),
    telemetryOptions: {
      // The core's own log lines go through the same JSON logger.
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(coreMetricsAddress ? { metrics: { prometheus: { bindAddress: coreMetricsAddress, countersTotalSuffix: true } } } : {}),
    },
  });
  const connection = await connectWorker(config);
  const client = await connectClient(config);
  // A fan-in's workflow task fails on an unregistered search attribute, over and over: refuse to start instead.
  const added = await ensureSearchAttributes(client, config.temporal.namespace);
  if (added.length > 0) logger.info({ namespace: config.temporal.namespace, added }, 'search attributes registered');
  const metrics = metricsOn ? new PipelineMetrics(config.sources.map((s) => s.name)) : undefined;
  const pipeline = await createPipelineWorker({ config, connection, metrics, ...adapters });
  const server = metrics
    ? await startMetricsServer({ config, metrics, coreMetricsAddress, client: new Client({ connection: client, namespace: config.temporal.namespace }), ready: () => pipeline.worker.getState() === 'RUNNING' })
    : null;
  logger.info({ taskQueue: config.temporal.taskQueue, address: config.temporal.address, metrics: server ? `http://${server.address}/metrics` : 'off' }, 'worker started');
  try {
    await pipeline.worker.run();
  } finally {
    await server?.close();
    await client.close();
    await pipeline.closeAdapters();
    await adapters.jobs?.close();
    await adapters.lakehouse?.close();
    await connection.close();
    logger.info('worker stopped');
  }
}

if (require.main === module) {
  main().catch((error: Error) => {
    logger.error({ err: error }, error.message);
    process.exit(1);
  });
}
