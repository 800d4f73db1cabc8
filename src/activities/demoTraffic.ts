import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../config/schema';
import { ensureDemoSourceTable, writeTraffic, type TrafficPlan } from '../demo/upstream';
import type { Lakehouse } from '../lakehouse/port';
import { LocalLakehouse } from '../lakehouse/local/localLakehouse';

export interface DemoTrafficRequest {
  /** Source names (default: every source of the worker's config). */
  sources?: string[];
  plan: Omit<TrafficPlan, 'seedRows'>;
}

export interface DemoCommit {
  table: string;
  version: number;
  inserted: number;
  updated: number;
  deleted: number;
}

/**
 * Upstream demo traffic written by the worker that holds the local lakehouse: DuckDB lets one
 * process write the file, so `npm run traffic` hands its commits here (through the demoTraffic
 * workflow) while `npm start` runs. Not idempotent: the workflow runs it once, without retries.
 */
export function createDemoTrafficActivities(deps: { config: Config; lakehouse: Lakehouse }) {
  return {
    async writeDemoTraffic(request: DemoTrafficRequest): Promise<DemoCommit[]> {
      const { config, lakehouse } = deps;
      if (!(lakehouse instanceof LocalLakehouse)) {
        throw ApplicationFailure.nonRetryable('demo traffic is written to the local lakehouse only, and this worker runs with lakehouse.target: databricks', 'DemoTrafficNotLocal');
      }
      const unknown = (request.sources ?? []).filter((name) => !config.sources.some((s) => s.name === name));
      if (unknown.length) throw ApplicationFailure.nonRetryable(`unknown source ${unknown.join(', ')} (known: ${config.sources.map((s) => s.name).join(', ')})`, 'UnknownSource');
      const sources = request.sources ? config.sources.filter((s) => request.sources!.includes(s.name)) : config.sources;
      const commits: DemoCommit[] = [];
      // A worker that stops (or a cancelled workflow) ends the writing between two commits, never inside one.
      const signal = Context.current().cancellationSignal;
      for (const source of sources) {
        if (signal.aborted) break;
        await ensureDemoSourceTable(lakehouse, source);
        for (const c of await writeTraffic(lakehouse, source, { ...request.plan, seedRows: 0 }, undefined, signal)) {
          commits.push({ table: source.table, version: c.version, inserted: c.inserted, updated: c.updated, deleted: c.deleted });
        }
      }
      // Stopped part-way: the caller must not take the commits listed for all it asked for.
      if (signal.aborted) throw ApplicationFailure.nonRetryable(`stopped after ${commits.length} commit(s), the worker is shutting down`, 'DemoTrafficCancelled');
      return commits;
    },
  };
}
