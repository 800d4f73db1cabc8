import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SourceStatus } from '../workflows/messages';
import { sourceState } from '../workflows/currentDetails';

/*
 * The pipeline's own Prometheus metrics. Counters count what this worker process did (Prometheus
 * adds the processes up); the per-source gauges are read from the source workflows' status
 * query, so every worker reports the same values (take max by source). Labels are bounded: the
 * configured source names, a state, an outcome; never run keys, batch numbers or ids.
 */
export const SOURCE_STATES = ['capturing', 'retrying', 'blocked', 'paused', 'not running'] as const;

export class PipelineMetrics {
  readonly registry = new Registry();
  private readonly lagVersions = this.gauge('cdf_source_lag_versions', 'Versions of the source table not captured yet.');
  private readonly lagSeconds = this.gauge('cdf_source_lag_seconds', "Seconds between the source table's newest commit and the captured offset's commit.");
  private readonly offsetVersion = this.gauge('cdf_source_offset_version', 'The last Delta version captured.');
  private readonly latestVersion = this.gauge('cdf_source_latest_version', "The source table's latest version when it was last read.");
  private readonly headroomHours = this.gauge('cdf_source_retention_headroom_hours', "Hours before the offset's commit falls out of the table's deleted-file retention (absent when caught up).");
  private readonly statusReadAt = this.gauge(
    'cdf_source_status_read_timestamp_seconds',
    "Unix time of this worker's last successful read of the source's status (its start until one succeeds): when reads fail, the other gauges keep their last values and this one shows how old they are.",
  );
  private readonly statusReadFailures = this.counter('cdf_source_status_read_failures_total', "Reads of the source's status by this worker that failed (the gauges were left as they were).", ['source']);
  private readonly state = new Gauge({ name: 'cdf_source_state', help: '1 for the state the source is in, 0 for the others.', labelNames: ['source', 'state'], registers: [this.registry] });
  private readonly ranges = this.counter('cdf_source_ranges_captured_total', 'Version ranges captured into the registry by this worker.', ['source']);
  private readonly rows = this.counter('cdf_source_registry_rows_appended_total', 'Registry rows inserted by this worker (a re-run inserts none).', ['source']);
  private readonly changes = this.counter('cdf_source_changes_read_total', 'Changes captured into the registry by this worker, by change type (one per uts_id and commit version: an update counts once, as update_postimage).', ['source', 'change_type']);
  private readonly idsSnapshotted = this.counter('cdf_fan_in_ids_dispatched_total', 'Changed ids snapshotted into batches by fan-ins on this worker.', []);
  private readonly batchesSnapshotted = this.counter('cdf_fan_in_batches_total', 'Batches cut by fan-ins on this worker.', []);
  private readonly fanInsCommitted = this.counter('cdf_fan_in_runs_committed_total', 'Fan-in windows committed by this worker.', []);
  private readonly attempts = this.counter('cdf_batch_attempts_total', 'Batch attempts run by this worker, by outcome (succeeded, failed, parked, jobFailed, skipped).', ['outcome']);
  private readonly launches = this.counter('cdf_job_launches_total', 'Downstream job runs launched by this worker (an existing run found again is not counted).', []);
  private readonly batchDuration = new Histogram({
    name: 'cdf_batch_duration_seconds',
    help: 'How long a batch attempt ran, launch to end.',
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600],
    registers: [this.registry],
  });
  private readonly fanInDuration = new Histogram({
    name: 'cdf_fan_in_duration_seconds',
    help: 'How long a fan-in took, from its start (or its resumption of a run an earlier fan-in left open) to its commit, across continue-as-new; fan-ins committed by this worker.',
    buckets: [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600],
    registers: [this.registry],
  });
  private readonly jobsApiRetries = this.counter('cdf_jobs_api_retries_total', 'Jobs API calls retried by this worker (429, 5xx, lost connections).', []);

  constructor(private readonly sources: readonly string[]) {
    // Every series exists from the start, so a rate() over a fresh worker does not miss its first increment.
    for (const source of sources) {
      this.ranges.inc({ source }, 0);
      this.rows.inc({ source }, 0);
      this.statusReadFailures.inc({ source }, 0);
      // A worker that never reads a status (credentials refused from the start) ages from its start, so an alert on the age fires for it too.
      this.statusReadAt.set({ source }, Date.now() / 1000);
    }
    for (const outcome of ['succeeded', 'failed', 'parked', 'jobFailed', 'skipped']) this.attempts.inc({ outcome }, 0);
  }

  /** One activity that completed on this worker, with its arguments and result. */
  activityCompleted(activityType: string, args: unknown[], result: unknown): void {
    const input = (args[0] ?? {}) as { source?: string };
    if (activityType === 'captureRange' && input.source && this.sources.includes(input.source)) {
      const captured = result as { rowsInserted: number; counts: Record<string, number> };
      this.ranges.inc({ source: input.source });
      this.rows.inc({ source: input.source }, captured.rowsInserted);
      for (const [changeType, count] of Object.entries(captured.counts)) this.changes.inc({ source: input.source, change_type: changeType }, count);
    } else if (activityType === 'snapshotBatches') {
      const snapshot = result as { changedIds: number; batchCount: number };
      this.idsSnapshotted.inc(snapshot.changedIds);
      this.batchesSnapshotted.inc(snapshot.batchCount);
    } else if (activityType === 'commitFanInRun' && (result as { committed: boolean }).committed) {
      this.fanInsCommitted.inc();
      const { fanInStartedAt } = input as { fanInStartedAt?: number };
      if (typeof fanInStartedAt === 'number') this.fanInDuration.observe(Math.max(0, Date.now() - fanInStartedAt) / 1000);
    } else if (activityType === 'runBatchAttempt') {
      const attempt = result as { outcome: string; launched: boolean; durationMs: number };
      this.attempts.inc({ outcome: attempt.outcome });
      if (attempt.launched) this.launches.inc();
      if (attempt.outcome === 'succeeded' || attempt.outcome === 'failed' || attempt.outcome === 'parked') this.batchDuration.observe(attempt.durationMs / 1000);
    }
  }

  jobsApiRetried(): void {
    this.jobsApiRetries.inc();
  }

  /** The gauges of one source, from its status query; `null` when its workflow is not running. */
  sourceStatus(source: string, status: SourceStatus | null): void {
    const current = status ? sourceState(status) : 'not running';
    for (const state of SOURCE_STATES) this.state.set({ source, state }, state === current ? 1 : 0);
    const set = (gauge: Gauge, value: number | null | undefined) => (value === null || value === undefined ? gauge.remove({ source }) : gauge.set({ source }, value));
    set(this.lagVersions, status?.lagVersions);
    set(this.lagSeconds, status?.lagSeconds);
    set(this.offsetVersion, status?.offsetVersion);
    set(this.latestVersion, status?.latestVersion);
    set(this.headroomHours, status?.retentionHeadroomHours);
    this.statusReadAt.set({ source }, Date.now() / 1000);
  }

  /** A status read that failed: the gauges stay as they were, their age shows in cdf_source_status_read_timestamp_seconds. */
  sourceStatusUnread(source: string): void {
    this.statusReadFailures.inc({ source });
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['source'], registers: [this.registry] });
  }

  private counter(name: string, help: string, labelNames: string[]): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
