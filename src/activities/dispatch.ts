import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { startOrJoinFanIn } from '../client/operations';
import type { Config } from '../config/schema';
import type { FanInSummary } from '../workflows/fanInProgress';

export interface FanInStarted {
  workflowId: string;
  /** True when a fan-in was already running and this request joined it. */
  joined: boolean;
}

/** Where the fan-in stands: still running, or how its latest run ended. */
export type FanInState = { running: true } | { running: false; summary: FanInSummary | null; failure: string | null };

/** What a requesting workflow (the trigger, the schedule's) gets once the fan-in it started or joined ended. */
export interface FanInRequestResult extends FanInStarted {
  summary: FanInSummary;
}

/**
 * Activities that start fan-ins from inside workflows (the event-driven trigger, the schedule's
 * workflow) through the same start-or-join as `cdf fan-in`, so every fan-in is the one workflow
 * id. Both are short: the requesting workflow waits with timers, never by holding an activity
 * slot that the fan-in's own batches need.
 */
export function createDispatchActivities({ config }: { config: Config }) {
  return {
    async startOrJoinFanIn(): Promise<FanInStarted> {
      const { workflowId, joined } = await startOrJoinFanIn(Context.current().client, config);
      return { workflowId, joined };
    },

    /** The latest run of the fan-in workflow id: running, or its summary or failure. */
    async fanInState({ workflowId }: { workflowId: string }): Promise<FanInState> {
      const handle = Context.current().client.workflow.getHandle(workflowId);
      try {
        const { status } = await handle.describe();
        if (status.name === 'RUNNING') return { running: true };
        return { running: false, summary: (await handle.result()) as FanInSummary, failure: null };
      } catch (error) {
        if (error instanceof WorkflowFailedError) return { running: false, summary: null, failure: error.cause?.message ?? error.message };
        if (error instanceof WorkflowNotFoundError) throw ApplicationFailure.nonRetryable(`no fan-in ${workflowId}: ${error.message}`, 'FanInNotFound');
        throw error;
      }
    },
  };
}
