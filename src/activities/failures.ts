import { ApplicationFailure } from '@temporalio/activity';
import { classifyLakehouseError } from '../lakehouse/errors';

/** Details attached to a non-retryable failure, read by the workflow's blocked state. */
export interface PermanentFailureDetails {
  remedy: string;
}

/** Details attached to a retryable failure: whether anything recognised the error. */
export interface TransientFailureDetails {
  recognised: boolean;
  remedy?: string;
}

/**
 * Runs an adapter call and converts what it throws into a Temporal failure: permanent errors are
 * non-retryable and carry the operator's remedy; everything else is retried by the retry policy.
 */
export async function classified<T>(call: () => Promise<T>, context: { readsChangeFeed?: boolean } = {}): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    const pipelineError = classifyLakehouseError(error, context);
    if (pipelineError.kind === 'permanent') {
      const details: PermanentFailureDetails = { remedy: pipelineError.remedy };
      throw ApplicationFailure.create({ type: pipelineError.type, message: pipelineError.message, nonRetryable: true, details: [details] });
    }
    const details: TransientFailureDetails = { recognised: pipelineError.recognised, ...(pipelineError.remedy ? { remedy: pipelineError.remedy } : {}) };
    throw ApplicationFailure.create({ type: pipelineError.type, message: pipelineError.message, nonRetryable: false, details: [details] });
  }
}
