import type { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptors, Next } from '@temporalio/worker';

/**
 * Heartbeats every activity that has a heartbeat timeout, at a third of it, for as long as the
 * activity runs. A SQL statement cannot heartbeat from inside the warehouse, but the process
 * waiting on it can: so a worker that dies mid-statement is noticed after the heartbeat timeout
 * (seconds) instead of the start-to-close timeout (many minutes), and the activity is retried.
 */
export function autoHeartbeat(ctx: Context): ActivityInterceptors {
  return { inbound: new AutoHeartbeatInbound(ctx) };
}

class AutoHeartbeatInbound implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const timeoutMs = this.ctx.info.heartbeatTimeoutMs;
    if (!timeoutMs) return next(input);
    const timer = setInterval(() => this.ctx.heartbeat(), Math.max(100, Math.floor(timeoutMs / 3)));
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}
