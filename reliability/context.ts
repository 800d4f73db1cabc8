import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { ensureDemoSourceTable } from '../src/demo/upstream';
import { FaultInjector } from '../src/faults/injector';
import type { BatchProcessor, LocalJobRunner } from '../src/jobs/local/localJobRunner';
import type { JobLauncher } from '../src/jobs/port';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import type { PipelineWorker } from '../src/worker';
import { startWorkerOn, terminateWorkflows } from '../test/support/pipeline';

/** What every scenario gets from the suite runner. */
export interface ScenarioContext {
  /** 'ci' (reduced, inside CI's time budget) or 'full' (the figures the report commits). */
  size: 'ci' | 'full';
  /** Address of the suite's own Temporal dev server. */
  address: string;
  /** Pre-built workflow bundle (every worker in the suite loads it instead of bundling). */
  bundlePath: string;
  /** A directory of this scenario's own (data files, logs). */
  workDir: string;
  /** The token values configured in the environment; no history, log or report may hold them. */
  secrets: string[];
  /** Progress on stderr: long scenarios say what they are doing. */
  progress(message: string): void;
}

/** One checked property: what was asserted, whether it held, and the figures behind it. */
export interface Invariant {
  name: string;
  held: boolean;
  detail: string;
}

export interface ScenarioResult {
  name: string;
  figures: Record<string, unknown>;
  invariants: Invariant[];
  /** Workflow ids (with their task queue) whose histories the secret scan reads. */
  taskQueues: string[];
  /** Log files the secret scan reads. */
  logFiles: string[];
}

export function invariant(name: string, held: boolean, detail: string): Invariant {
  return { name, held, detail };
}

/** A scenario's config: its own task queue, workflow id prefix and data files under `dir`. */
export function scenarioConfig(ctx: ScenarioContext, name: string, overrides: Record<string, unknown>): Config {
  const unique = randomBytes(3).toString('hex');
  const dir = join(ctx.workDir, name);
  mkdirSync(dir, { recursive: true });
  const base: Record<string, unknown> = {
    temporal: { address: ctx.address, taskQueue: `rel-${name}-${unique}`, workflowIdPrefix: `r${name.replace(/[^a-z0-9]/g, '').slice(0, 12)}${unique}` },
    lakehouse: { target: 'local', local: { path: join(dir, 'lakehouse.duckdb') } },
    jobs: { target: 'local', local: { path: join(dir, 'jobs.duckdb'), maxConcurrentRuns: 4 } },
    capture: { maxVersionsPerRange: 4, pollIntervalSeconds: 3600 },
    fanIn: { batchSize: 500, concurrency: 4, jobPollIntervalSeconds: 1, relaunchBackoffSeconds: 1 },
    worker: { shutdownGraceSeconds: 2, heartbeatTimeoutSeconds: 3 },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const current = merged[key];
    merged[key] = current && typeof current === 'object' && !Array.isArray(current) && value && typeof value === 'object' && !Array.isArray(value) ? { ...current, ...value } : value;
  }
  return parseConfig(merged, `reliability scenario ${name}`);
}

export interface InProcessPipeline {
  config: Config;
  client: Client;
  lakehouse: LocalLakehouse;
  runner: LocalJobRunner;
  pipeline: PipelineWorker;
  faults: FaultInjector;
  stop(): Promise<void>;
}

/**
 * A real worker in this process over real DuckDB files, with the source tables created (and
 * `launcher`, e.g. the Databricks client against the fake Jobs API, instead of the local runner). The
 * lakehouse and runner are the raw adapters (for checks and upstream traffic); the worker's own
 * activities go through fault injection when the config asks for it.
 */
export async function startInProcessPipeline(
  ctx: ScenarioContext,
  config: Config,
  options: { processor?: (lakehouse: LocalLakehouse) => BatchProcessor; launcher?: JobLauncher } = {},
): Promise<InProcessPipeline> {
  const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { faults: config.lakehouse.local.faults, memoryLimitMB: config.lakehouse.local.memoryLimitMB });
  for (const source of config.sources) await ensureDemoSourceTable(lakehouse, source);
  const faults = new FaultInjector(config.faults);
  const t = await startWorkerOn(config, lakehouse, { bundlePath: ctx.bundlePath, faults, processor: options.processor?.(lakehouse), launcher: options.launcher });
  return {
    config,
    client: t.client,
    lakehouse,
    runner: t.jobs,
    pipeline: t.pipeline,
    faults,
    async stop() {
      await terminateWorkflows(t.client, config);
      await t.stop();
    },
  };
}
