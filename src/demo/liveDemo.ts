import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { fanInWorkflowId, sourceWorkflowId } from '../client/operations';
import type { Config } from '../config/schema';
import type { Lakehouse } from '../lakehouse/port';
import { LocalLakehouse } from '../lakehouse/local/localLakehouse';
import { plural } from '../text';
import type { FanInSummary } from '../workflows/fanInProgress';
import { sourceStatusQuery } from '../workflows/messages';
import { DEMO_TRAFFIC, writeTraffic } from './upstream';

export interface LiveDemoOptions {
  client: Client;
  config: Config;
  lakehouse: Lakehouse;
  /** A demo commit per source this often; null writes none (the sources still poll). */
  trafficEveryMs: number | null;
  /** How often the sources and the fan-in are looked at for something new to print. */
  watchEveryMs?: number;
  say(line: string): void;
}

export interface LiveDemo {
  stop(): Promise<void>;
}

/**
 * What `npm start` does while it serves: writes a demo commit to every source on an interval and
 * prints one line for each step the pipeline takes on its own: new commits, each source's
 * capture, each fan-in that finished (started by the fan-in trigger when sources capture).
 */
export function startLiveDemo(options: LiveDemoOptions): LiveDemo {
  const { client, config, lakehouse, say } = options;
  let stopped = false;
  const loops: Promise<void>[] = [];
  const sleeping = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleeping.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleeping.add(wake);
    });
  const every = (ms: number, step: () => Promise<void>) =>
    loops.push(
      (async () => {
        while (!stopped) {
          await sleep(ms);
          if (stopped) break;
          await step().catch((error: Error) => say(`live demo: ${error.message}`));
        }
      })(),
    );

  let tick = 0;
  if (options.trafficEveryMs !== null && lakehouse instanceof LocalLakehouse) {
    every(options.trafficEveryMs, async () => {
      tick += 1;
      const written: string[] = [];
      let rows = 0;
      for (const [index, source] of config.sources.entries()) {
        const plan = { ...DEMO_TRAFFIC, seedRows: 0, commits: 1, seed: DEMO_TRAFFIC.seed * 7919 + tick * 31 + index };
        for (const commit of await writeTraffic(lakehouse, source, plan)) {
          written.push(`${source.name} v${commit.version}`);
          rows += commit.inserted + commit.updated + commit.deleted;
        }
      }
      say(`traffic: ${plural(written.length, 'commit')} (${written.join(', ')}), ${plural(rows, 'row change')}`);
    });
  }

  const captured = new Map<string, number>();
  const blockedSince = new Map<string, string | null>();
  const reportedFanIns = new Set<string>();
  // Fan-ins that start from now on: the one before serving was printed already.
  const servingSince = new Date().toISOString();
  every(options.watchEveryMs ?? 2000, async () => {
    for (const source of config.sources) {
      if (stopped) return;
      // A query waits for a worker: bounded, so a stop never waits on one the worker will not answer.
      const status = await client.connection
        .withDeadline(Date.now() + 5000, () => client.workflow.getHandle(sourceWorkflowId(config, source.name)).query(sourceStatusQuery))
        .catch(() => null);
      if (!status) continue;
      const before = captured.get(source.name);
      captured.set(source.name, status.totals.registryRowsInserted);
      const added = status.totals.registryRowsInserted - (before ?? status.totals.registryRowsInserted);
      if (added > 0) say(`capture ${source.name}: ${plural(added, 'registry row')} inserted, offset ${status.offsetVersion} of ${status.latestVersion}`);
      // A block is printed once, when it starts, and its end once too.
      const since = status.blocked?.since ?? null;
      if (since !== (blockedSince.get(source.name) ?? null)) {
        if (status.blocked) say(`capture ${source.name}: BLOCKED: ${status.blocked.type}: ${status.blocked.remedy}`);
        else if (blockedSince.has(source.name)) say(`capture ${source.name}: no longer blocked, offset ${status.offsetVersion} of ${status.latestVersion}`);
      }
      blockedSince.set(source.name, since);
    }
    await reportFanIns();
  });

  /** Every fan-in that started while serving and has ended since the last look, in start order (a trigger may run two between looks). */
  async function reportFanIns(): Promise<void> {
    if (stopped) return;
    const ended: WorkflowExecutionInfo[] = [];
    const query = `WorkflowId = "${fanInWorkflowId(config)}" AND StartTime >= "${servingSince}" AND ExecutionStatus != "Running" AND ExecutionStatus != "ContinuedAsNew"`;
    await client.connection.withDeadline(Date.now() + 5000, async () => {
      for await (const execution of client.workflow.list({ query })) if (!reportedFanIns.has(execution.runId)) ended.push(execution);
    });
    ended.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
    for (const execution of ended) {
      reportedFanIns.add(execution.runId);
      const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
      const summary = (await handle.result().catch((error: Error) => error)) as FanInSummary | Error;
      if (summary instanceof Error) say(`fan-in ${execution.status.name.toLowerCase()}: ${(summary.cause as Error | undefined)?.message ?? summary.message}`);
      else if (summary.outcome === 'nothing to dispatch') say(`fan-in ${summary.runKey}: nothing new to dispatch`);
      else {
        const { targetRows } = await lakehouse.tableCounts();
        say(
          `fan-in ${summary.runKey}: ${plural(summary.changedIds, 'changed id')} dispatched in ${plural(summary.batches, 'batch', 'batches')} (${summary.batchesSucceeded} succeeded, ${summary.batchesParked} parked); the target holds ${plural(targetRows, 'row')}`,
        );
      }
    }
  }

  return {
    async stop() {
      stopped = true;
      for (const wake of [...sleeping]) wake();
      await Promise.all(loops);
    },
  };
}
