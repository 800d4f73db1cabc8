/** Thrown by `StopSignals.race` once a stop was asked for: the run unwinds to its one cleanup. */
export class StopRequested extends Error {
  override readonly name = 'StopRequested';
  constructor(readonly signal: NodeJS.Signals) {
    super(`stopped by ${signal}`);
  }
}

/** Exit codes by the shell's convention for a run a signal cut short: 128 + the signal's number. */
export const INTERRUPTED_EXIT_CODE: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * SIGINT and SIGTERM turned into one stop request. The first asks the run to stop cleanly (it
 * aborts `abortSignal` and makes every `race` reject with StopRequested); a second one, an
 * impatient Ctrl-C, calls `onForce`, which ends the process at once. The Temporal Runtime must be
 * installed with `shutdownSignals: []`, so that the worker is shut down by the run, once.
 */
export class StopSignals {
  signal: NodeJS.Signals | undefined;
  private readonly controller = new AbortController();
  private readonly requested: Promise<never>;
  private readonly listener = (signal: NodeJS.Signals) => this.receive(signal);

  constructor(private readonly handlers: { onStop(signal: NodeJS.Signals): void; onForce(signal: NodeJS.Signals): void }) {
    this.requested = new Promise<never>((_resolve, reject) => {
      this.controller.signal.addEventListener('abort', () => reject(new StopRequested(this.signal!)), { once: true });
    });
    this.requested.catch(() => undefined); // observed only through race()
    process.on('SIGINT', this.listener);
    process.on('SIGTERM', this.listener);
  }

  get abortSignal(): AbortSignal {
    return this.controller.signal;
  }

  /** The step's result, or StopRequested as soon as a stop is asked for (the step is left to end on its own). */
  race<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.requested]);
  }

  dispose(): void {
    process.off('SIGINT', this.listener);
    process.off('SIGTERM', this.listener);
  }

  private receive(signal: NodeJS.Signals): void {
    if (this.signal) {
      this.handlers.onForce(signal);
      return;
    }
    this.signal = signal;
    this.handlers.onStop(signal);
    this.controller.abort();
  }
}
