import { join } from 'node:path';
import { captureUntilCaughtUp, runFanIn, startSourceWorkflows } from '../src/client/operations';
import { invariant, scenarioConfig, startInProcessPipeline, type ScenarioContext, type ScenarioResult } from './context';
import { saveHistories, type HistoryStats } from './histories';
import { auditPipeline } from './oracle';
import { drainFanIns, waitForCatchUp } from './settle';

export interface LoadSize {
  sources: number;
  commitsPerSource: number;
  fanInIds: number;
  batches: number;
  concurrency: number;
}

/** Temporal's limits are 2 MB per payload and 50K events per history; the pipeline keeps far below both. */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_EVENTS_PER_RUN = 10_000;

/**
 * Two loads on one worker each: many sources committing while their workflows poll, and one fan-in
 * over many changed ids in many batches at high concurrency. Everything must complete, with no
 * workflow task timing out and every history bounded.
 */
export async function loadScenario(ctx: ScenarioContext, size: LoadSize): Promise<ScenarioResult> {
  const many = await manySources(ctx, size);
  const wide = await wideFanIn(ctx, size);
  return {
    name: 'load',
    figures: {
      sources: size.sources,
      changesChecked: many.audit.changesChecked + wide.audit.changesChecked,
      lost: many.audit.lost + wide.audit.lost,
      duplicated: many.audit.duplicated + wide.audit.duplicated,
      duplicateLaunches: many.audit.duplicateLaunches + wide.audit.duplicateLaunches,
      manySources: { sources: size.sources, changes: many.audit.changesChecked, durationSeconds: many.seconds, histories: withoutFiles(many.histories) },
      wideFanIn: { changedIds: wide.summary.changedIds, batches: wide.summary.batches, concurrency: size.concurrency, launches: wide.summary.launches, durationSeconds: wide.seconds, histories: withoutFiles(wide.histories) },
    },
    invariants: [
      invariant(`${size.sources} sources committing at once on one worker all caught up`, many.caughtUp, `${many.audit.changesChecked} changes in ${many.seconds} s`),
      ...many.audit.invariants.map((i) => ({ ...i, name: `${size.sources} sources: ${i.name}` })),
      invariant(`a fan-in over ${size.fanInIds} ids dispatched ${size.batches} batches at concurrency ${size.concurrency}, each launched once`,
        wide.summary.changedIds === size.fanInIds && wide.summary.batches === size.batches && wide.summary.batchesSucceeded === size.batches && wide.summary.launches === size.batches && wide.summary.committed,
        JSON.stringify({ changedIds: wide.summary.changedIds, batches: wide.summary.batches, succeeded: wide.summary.batchesSucceeded, launches: wide.summary.launches, committed: wide.summary.committed })),
      ...wide.audit.invariants.map((i) => ({ ...i, name: `wide fan-in: ${i.name}` })),
      ...[many, wide].map((part, index) =>
        invariant(`${index === 0 ? 'many sources' : 'wide fan-in'}: no workflow task timed out and every history stayed bounded`,
          part.histories.workflowTaskTimeouts === 0 && part.histories.maxEventsInOneRun <= MAX_EVENTS_PER_RUN && part.histories.maxPayloadBytes <= MAX_PAYLOAD_BYTES,
          `${part.histories.workflows} runs, ${part.histories.workflowTaskTimeouts} workflow task timeouts, at most ${part.histories.maxEventsInOneRun} events in one run (limit ${MAX_EVENTS_PER_RUN}), largest payload ${part.histories.maxPayloadBytes} bytes (limit ${MAX_PAYLOAD_BYTES})`),
      ),
    ],
    taskQueues: [],
    logFiles: [...many.histories.files, ...wide.histories.files],
  };
}

function withoutFiles({ files: _files, ...stats }: HistoryStats): Omit<HistoryStats, 'files'> {
  return stats;
}

async function manySources(ctx: ScenarioContext, size: LoadSize) {
  const config = scenarioConfig(ctx, 'loadsources', {
    sources: Array.from({ length: size.sources }, (_, i) => ({ name: `l${i + 1}`, table: `upstream.l${i + 1}` })),
    capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 1 },
    fanIn: { batchSize: 500, concurrency: 4, jobPollIntervalSeconds: 1 },
  });
  const t = await startInProcessPipeline(ctx, config);
  try {
    const started = Date.now();
    await startSourceWorkflows(t.client, config);
    // All sources commit in rounds while their workflows poll every second.
    for (let round = 0; round < size.commitsPerSource; round++) {
      await Promise.all(config.sources.map((s) => t.lakehouse.writeUpstreamCommit(s.table, round === 0 ? { insert: 60, idSpace: 20_000 } : { insert: 30, update: 20, delete: 10, idSpace: 20_000 })));
    }
    let caughtUp = true;
    await waitForCatchUp(t.client, config, 900).catch(() => (caughtUp = false));
    await drainFanIns(t.client, config);
    const seconds = Math.round((Date.now() - started) / 1000);
    const histories = await saveHistories(t.client, config.temporal.taskQueue, join(ctx.workDir, 'loadsources', 'histories'));
    return { caughtUp, seconds, histories, audit: await auditPipeline(config, t.lakehouse, t.runner) };
  } finally {
    await t.stop();
  }
}

async function wideFanIn(ctx: ScenarioContext, size: LoadSize) {
  const config = scenarioConfig(ctx, 'loadfanin', {
    sources: [{ name: 'wide', table: 'upstream.wide' }],
    fanIn: { batchSize: Math.ceil(size.fanInIds / size.batches), concurrency: size.concurrency, jobPollIntervalSeconds: 1 },
    jobs: { local: { path: join(ctx.workDir, 'loadfanin', 'jobs.duckdb'), maxConcurrentRuns: size.concurrency } },
  });
  const t = await startInProcessPipeline(ctx, config);
  try {
    const started = Date.now();
    await t.lakehouse.writeUpstreamCommit('upstream.wide', { insert: size.fanInIds, idSpace: size.fanInIds });
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'wide');
    const summary = await runFanIn(t.client, config);
    const seconds = Math.round((Date.now() - started) / 1000);
    const histories = await saveHistories(t.client, config.temporal.taskQueue, join(ctx.workDir, 'loadfanin', 'histories'));
    return { summary, seconds, histories, audit: await auditPipeline(config, t.lakehouse, t.runner) };
  } finally {
    await t.stop();
  }
}
