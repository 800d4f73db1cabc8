import { createCaptureActivities, type CaptureDeps } from './capture';
import { createDemoTrafficActivities } from './demoTraffic';
import { createDispatchActivities } from './dispatch';
import { createFanoutActivities, type FanoutDeps } from './fanout';
import { createRetentionActivities } from './retention';

export type ActivityDeps = CaptureDeps & FanoutDeps;

/** All activities, bound to the worker's adapters. Workflows see only `typeof` this. */
export function createActivities(deps: ActivityDeps) {
  return { ...createCaptureActivities(deps), ...createFanoutActivities(deps), ...createDispatchActivities(deps), ...createDemoTrafficActivities(deps), ...createRetentionActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { SourceCycleStart, RangeRef } from './capture';
export type { BatchAttempt, BatchListRequest, FanInRunStart } from './fanout';
export type { FanInRequestResult, FanInStarted, FanInState } from './dispatch';
export type { PurgePlan, PurgeReport, PurgeTableRequest } from './retention';
