import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { runFanIn } from '../client/operations';
import type { Config } from '../config/schema';
import type { FanInSummary } from '../workflows/fanInProgress';

export interface FanInRequestResult {
  workflowId: string;
  /** True when a fan-in was already running and this request waited for it rather than starting one. */
  joined: boolean;
  summary: FanInSummary;
}

/**
 * Activities that start fan-ins from inside workflows (the event-driven trigger, the schedule's
 * workflow): through the same start-or-join as `cdf fan-in`, so every fan-in is the one workflow id.
 */
export function createDispatchActivities({ config }: { config: Config }) {
  return {
    /** Starts or joins the fan-in and waits for its result (heartbeated by autoHeartbeat while it waits). */
    async requestFanIn(): Promise<FanInRequestResult> {
      let started: { workflowId: string; joined: boolean } = { workflowId: '', joined: false };
      try {
        const summary = await runFanIn(Context.current().client, config, { onStart: (start) => (started = start) });
        return { ...started, summary };
      } catch (error) {
        if (!(error instanceof WorkflowFailedError)) throw error;
        throw ApplicationFailure.nonRetryable(`fan-in ${started.workflowId} failed: ${error.cause?.message ?? error.message}`, 'FanInFailed');
      }
    },
  };
}
