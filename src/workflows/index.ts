// The workflow bundle's entry point: only workflow code, reached through relative imports.
export { sourceIngest } from './sourceIngest';
export type { SourceIngestInput } from './sourceIngest';
export { fanIn } from './fanIn';
export type { FanInInput, FanInSummary, BatchResult } from './fanIn';
export { scheduledFanIn } from './scheduledFanIn';
export { batchCommand } from './batchCommands';
export type { BatchCommand, BatchCommandResult } from './batchCommands';
export { fanInTrigger } from './fanInTrigger';
export type { ChangesCaptured, FanInTriggerStatus } from './fanInTrigger';
export { pollSource } from './scheduledCapture';
export type { PollSourceInput } from './scheduledCapture';
export { demoTraffic } from './demoTraffic';
export { purge } from './purge';
export type { PurgeInput } from './purge';
