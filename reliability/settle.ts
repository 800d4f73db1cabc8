import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { runFanIn, sourceWorkflowId } from '../src/client/operations';
import type { Config } from '../src/config/schema';
import { sourceStatusQuery } from '../src/workflows/messages';

/** Waits until every source's last cycle found nothing new, blocked nowhere (upstream must be quiet). */
export async function waitForCatchUp(client: Client, config: Config, timeoutSeconds = 600): Promise<void> {
  for (let waited = 0; ; waited += 1) {
    const statuses = await Promise.all(config.sources.map((s) => client.workflow.getHandle(sourceWorkflowId(config, s.name)).query(sourceStatusQuery).catch(() => null)));
    if (statuses.every((s) => s && !s.blocked && s.latestVersion !== null && s.offsetVersion === s.latestVersion && s.lastCycle?.ranges === 0)) return;
    if (waited > timeoutSeconds) {
      throw new Error(`sources did not catch up in ${timeoutSeconds} s: ${JSON.stringify(statuses.map((s) => s && { offset: s.offsetVersion, latest: s.latestVersion, blocked: s.blocked?.type }))}`);
    }
    await sleep(1000);
  }
}

/** Runs fan-ins until one finds no open run and nothing new; returns how many ran. */
export async function drainFanIns(client: Client, config: Config): Promise<number> {
  for (let runs = 1; ; runs++) {
    const summary = await runFanIn(client, config);
    if (summary.changedIds === 0 && !summary.resumed) return runs;
    if (runs > 50) throw new Error('50 fan-ins in a row still found changes: the pipeline is not settling');
  }
}
