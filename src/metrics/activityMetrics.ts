import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptors, Next } from '@temporalio/worker';
import type { PipelineMetrics } from './pipelineMetrics';

/** Feeds every activity that completes on this worker, with its arguments and result, to the pipeline's counters. */
export function activityMetrics(metrics: PipelineMetrics): (ctx: Context) => ActivityInterceptors {
  return (ctx) => ({ inbound: new ActivityMetricsInbound(ctx, metrics) });
}

class ActivityMetricsInbound implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly metrics: PipelineMetrics,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const result = await next(input);
    this.metrics.activityCompleted(this.ctx.info.activityType, input.args, result);
    return result;
  }
}
