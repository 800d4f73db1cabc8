import type { FaultsConfig } from '../config/schema';
import { logger } from '../logging';

/** Every kind of fault the adapters' boundary can inject; the reliability report counts them by kind. */
export const FAULT_KINDS = [
  'sqlConflict',
  'sqlDroppedConnection',
  'sqlSlowQuery',
  'sqlPermissionDenied',
  'jobsRateLimited',
  'jobsServerError',
  'jobsDroppedConnection',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Decides, call by call, whether to inject a fault, and keeps count. Rates come from the config's
 * `faults` section (all 0 by default) and may be changed while running (the reliability suite
 * turns a permanent fault off to watch the recovery). Every injection is logged as a warning, so
 * the retries it causes can be traced in the worker's log.
 */
export class FaultInjector {
  readonly counts: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  rates: Record<FaultKind, number>;
  slowQuerySeconds: number;

  constructor(
    config: FaultsConfig,
    private readonly random: () => number = Math.random,
  ) {
    this.rates = {
      sqlConflict: config.sql.conflictRate,
      sqlDroppedConnection: config.sql.droppedConnectionRate,
      sqlSlowQuery: config.sql.slowQueryRate,
      sqlPermissionDenied: config.sql.permissionDeniedRate,
      jobsRateLimited: config.jobs.rateLimitRate,
      jobsServerError: config.jobs.serverErrorRate,
      jobsDroppedConnection: config.jobs.droppedConnectionRate,
    };
    this.slowQuerySeconds = config.sql.slowQuerySeconds;
  }

  get enabled(): boolean {
    return Object.values(this.rates).some((rate) => rate > 0);
  }

  /** True when this call gets the fault; counts and logs it. */
  roll(kind: FaultKind, operation: string): boolean {
    const rate = this.rates[kind];
    if (rate <= 0 || this.random() >= rate) return false;
    this.counts[kind] += 1;
    logger.warn({ fault: kind, operation }, `injected fault ${kind} in ${operation}`);
    return true;
  }

  /** A fair coin from the same source of randomness (e.g. whether a dropped connection strikes before or after the call). */
  coin(): boolean {
    return this.random() < 0.5;
  }

  total(): number {
    return Object.values(this.counts).reduce((sum, n) => sum + n, 0);
  }
}
