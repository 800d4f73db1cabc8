import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DemoCommit, DemoTrafficRequest } from '../activities/demoTraffic';

const demo = proxyActivities<Activities>({
  // Not picked up within 30 s: no worker polls the queue, and nothing was written.
  scheduleToStartTimeout: '30 seconds',
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  // Once: a retried write would add the commits twice.
  retry: { maximumAttempts: 1 },
});

/** `npm run traffic` while a worker holds the local lakehouse: that worker writes the commits. */
export async function demoTraffic(request: DemoTrafficRequest): Promise<DemoCommit[]> {
  return demo.writeDemoTraffic(request);
}
