import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DemoCommit, DemoTrafficRequest } from '../activities/demoTraffic';

// Once: a retried write would add the commits twice.
const demo = proxyActivities<Activities>({ startToCloseTimeout: '5 minutes', retry: { maximumAttempts: 1 } });

/** `npm run traffic` while a worker holds the local lakehouse: that worker writes the commits. */
export async function demoTraffic(request: DemoTrafficRequest): Promise<DemoCommit[]> {
  return demo.writeDemoTraffic(request);
}
