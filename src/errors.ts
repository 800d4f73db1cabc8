/**
 * The two kinds of failure the pipeline distinguishes. Activities turn them into Temporal
 * ApplicationFailures: transient ones are retried by the activity retry policy; permanent ones are
 * non-retryable and put the source into its blocked state with `remedy` shown to the operator.
 */
export abstract class PipelineError extends Error {
  abstract readonly kind: 'transient' | 'permanent';
  constructor(
    /** Stable machine-readable type, e.g. the Delta error class. Becomes ApplicationFailure.type. */
    readonly type: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class TransientError extends PipelineError {
  override readonly name = 'TransientError';
  readonly kind = 'transient' as const;
  constructor(
    type: string,
    message: string,
    options?: {
      cause?: unknown;
      /**
       * False when nothing recognised the error and it is retried only because it might pass: the
       * source then blocks after capture.blockUnknownErrorsAfterAttempts instead of retrying forever.
       */
      recognised?: boolean;
      /** What an operator does if it keeps failing and the source blocks. */
      remedy?: string;
    },
  ) {
    super(type, message, options);
    this.recognised = options?.recognised ?? true;
    this.remedy = options?.remedy;
  }
  readonly recognised: boolean;
  readonly remedy?: string;
}

export class PermanentError extends PipelineError {
  override readonly name = 'PermanentError';
  readonly kind = 'permanent' as const;
  constructor(
    type: string,
    message: string,
    /** What an operator does about it, in one or two sentences. */
    readonly remedy: string,
    options?: { cause?: unknown },
  ) {
    super(type, message, options);
  }
}
