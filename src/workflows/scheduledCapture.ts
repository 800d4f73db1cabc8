import { ApplicationFailure, getExternalWorkflowHandle } from '@temporalio/workflow';
import { pollNowSignal } from './messages';

export interface PollSourceInput {
  source: string;
  /** The long-lived source workflow to wake, `<prefix>-source-<name>`. */
  workflowId: string;
}

/**
 * Wakes one source workflow. Kept only for poll schedules created by an earlier version's
 * `schedules.sources` (removed: sources poll by themselves), so their runs still do what they did
 * until `cdf schedules apply` deletes those schedules. A source workflow that is not running fails
 * this run (visible in the schedule's recent actions) instead of retrying.
 */
export async function pollSource(input: PollSourceInput): Promise<void> {
  try {
    await getExternalWorkflowHandle(input.workflowId).signal(pollNowSignal, {});
  } catch (error) {
    throw ApplicationFailure.nonRetryable(
      `cannot signal pollNow to ${input.workflowId} (source ${input.source}): ${(error as Error).message}. Start the source workflows (npm start) or remove the source from the config and run \`cdf schedules apply\`.`,
      'SourceWorkflowNotRunning',
    );
  }
}
