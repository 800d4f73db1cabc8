import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptors, GetLogAttributesInput, Next } from '@temporalio/worker';

/**
 * Adds the pipeline's own keys to every log line of an activity (the SDK's own "Activity failed"
 * among them): `source`, `runKey` and `batchNumber`, read from the activity's input where it has
 * them, next to the workflowId and activityType the SDK adds. So a failed capture or batch can be
 * found by source or run key in the JSON log without decoding workflow ids.
 */
export function logAttributes(_ctx: Context): ActivityInterceptors {
  const attributes: Record<string, unknown> = {};
  const inbound: ActivityInboundCallsInterceptor = {
    async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>) {
      Object.assign(attributes, pipelineKeys(input.args[0]));
      return next(input);
    },
  };
  return {
    inbound,
    outbound: {
      getLogAttributes: (input: GetLogAttributesInput, next: Next<NonNullable<ActivityInterceptors['outbound']>, 'getLogAttributes'>) => next({ ...input, ...attributes }),
    },
  };
}

export function pipelineKeys(input: unknown): Record<string, string | number> {
  if (typeof input !== 'object' || input === null) return {};
  const keys: Record<string, string | number> = {};
  const { source, runKey, batchNumber } = input as Record<string, unknown>;
  if (typeof source === 'string') keys.source = source;
  if (typeof runKey === 'string') keys.runKey = runKey;
  if (typeof batchNumber === 'number') keys.batchNumber = batchNumber;
  return keys;
}
