import { z } from 'zod';
import { IDENTIFIER_PART, SOURCE_NAME, isQualifiedName } from './identifiers';

const tableName = z
  .string({ error: 'must be a table name such as "cdf.change_registry"' })
  .refine(isQualifiedName, {
    error: 'must be 1 to 3 dot-separated parts, each letters, digits or underscores and not starting with a digit (e.g. "cdf.change_registry")',
  });

const columnName = z
  .string({ error: 'must be a column name such as "uts_id"' })
  .regex(IDENTIFIER_PART, { error: 'must be letters, digits or underscores, not starting with a digit (e.g. "uts_id")' });

/** A probability for fault injection. */
const rate = (what: string) => z.number({ error: `must be a number between 0 and 1: share of ${what}` }).min(0, { error: 'must be between 0 and 1' }).max(1, { error: 'must be between 0 and 1' }).default(0);

/** fanIn.onChange.maxWaitSeconds when absent: a minute, or the debounce itself if that is longer. */
export const defaultMaxWaitSeconds = (waitAfterLastChangeSeconds: number) => Math.max(60, waitAfterLastChangeSeconds);

const positiveInt = (what: string) =>
  z.number({ error: `must be a number: ${what}` }).int({ error: `must be a whole number: ${what}` }).positive({
    error: `must be greater than 0: ${what}`,
  });

/** A number of days (fractions allowed, e.g. 0.5), greater than 0. */
const positiveDays = (what: string) =>
  z.number({ error: `must be a number of days: ${what}` }).positive({ error: `must be greater than 0: ${what}` }).max(36_500, { error: `must be at most 36500: ${what}` });

const nonNegativeInt = (what: string) =>
  z.number({ error: `must be a number: ${what}` }).int({ error: `must be a whole number: ${what}` }).min(0, {
    error: `must be 0 or more: ${what}`,
  });

/** A file path (PEM certificates, keys); relative paths are relative to the config file. */
const filePath = z.string({ error: 'must be a file path' }).min(1, { error: 'must be a file path' });

const target = z.enum(['local', 'databricks'], { error: 'must be "local" or "databricks"' });

/** A whole number of seconds, minutes, hours or days, e.g. "30s", "15m", "1h", "1d". */
export const DURATION = /^\d+(s|m|h|d)$/;
const DURATION_UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of a duration the schema accepted ("15m" → 900000). */
export function durationMs(duration: string): number {
  const unit = duration.slice(-1) as keyof typeof DURATION_UNIT_MS;
  return Number(duration.slice(0, -1)) * DURATION_UNIT_MS[unit];
}

const duration = (what: string) =>
  z.string({ error: `must be a duration such as "30s", "15m", "1h" or "1d": ${what}` }).regex(DURATION, {
    error: `must be a whole number followed by s, m, h or d, e.g. "30s", "15m", "1h": ${what}`,
  });

/** Overlap policies as written in the config; the schedules code maps them to ScheduleOverlapPolicy. */
export const OVERLAP_POLICIES = ['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all'] as const;

/** One Temporal Schedule: an interval with offset and jitter, and the policies we always set explicitly. */
const scheduleSchema = z
  .strictObject({
    every: duration('how often the schedule fires'),
    offset: duration('the shift within each interval (every 15m with offset 5m fires at :05, :20, …)').default('0s'),
    jitter: duration('the most a start is randomly delayed').default('0s'),
    overlap: z
      .enum(OVERLAP_POLICIES, { error: `must be one of ${OVERLAP_POLICIES.join(', ')}: what happens when the previous run is still running` })
      .default('skip'),
    // Temporal's own default is one year; a short window stops a recovered server from replaying a backlog.
    catchupWindow: duration('how late a missed start may still run after an outage (at least 10s)').default('10m'),
    paused: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .superRefine((schedule, ctx) => {
    if (durationMs(schedule.every) === 0) ctx.addIssue({ code: 'custom', path: ['every'], input: schedule.every, message: 'must be longer than 0, e.g. "15m"' });
    if (durationMs(schedule.offset) >= durationMs(schedule.every) && durationMs(schedule.offset) > 0) {
      ctx.addIssue({ code: 'custom', path: ['offset'], input: schedule.offset, message: `must be shorter than every (${schedule.every})` });
    }
    if (durationMs(schedule.catchupWindow) < 10_000) {
      ctx.addIssue({ code: 'custom', path: ['catchupWindow'], input: schedule.catchupWindow, message: 'must be at least "10s" (the Temporal server\'s minimum)' });
    }
  });

/** `name` in the schema (and catalog) of `table`: siblingName("cdf.change_registry", "changed_uts") = "cdf.changed_uts". */
function siblingName(table: string, name: string): string {
  return [...table.split('.').slice(0, -1), name].join('.');
}

export const sourceSchema = z.strictObject({
  name: z
    .string({ error: 'must be a short name such as "orders"' })
    .regex(SOURCE_NAME, { error: 'must be lowercase letters, digits, "_" or "-", starting with a letter, at most 63 characters' }),
  table: tableName,
  keyColumn: columnName.default('uts_id'),
  extraColumns: z.array(columnName).default([]),
  startingVersion: nonNegativeInt('the first Delta version to capture when the source has no offset yet').default(0),
});

export const configSchema = z
  .strictObject({
    temporal: z
      .strictObject({
        address: z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, { error: 'must be host:port, e.g. "127.0.0.1:7233"' }).default('127.0.0.1:7233'),
        namespace: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, { error: 'must be a Temporal namespace name' }).default('default'),
        taskQueue: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, { error: 'must be a task queue name' }).default('cdf-orchestrator'),
        uiPort: positiveInt('the dev server Web UI port').max(65535).default(8233),
        workflowIdPrefix: z
          .string()
          .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'must be lowercase letters, digits or "-", starting with a letter, at most 31 characters' })
          .default('cdf'),
        /**
         * TLS to the Temporal frontend (a self-hosted cluster, Temporal Cloud). On when `enabled`
         * is true, or, when it is not set, as soon as a path here or TEMPORAL_API_KEY is given.
         */
        tls: z
          .strictObject({
            enabled: z.boolean({ error: 'must be true or false' }).optional(),
            /** PEM of the CA that signed the server's certificate; the system's CAs when absent. */
            serverCaCertPath: filePath.optional(),
            /** mTLS: the client's certificate and private key (PEM), both or neither. */
            clientCertPath: filePath.optional(),
            clientKeyPath: filePath.optional(),
            /** The name to expect in the server's certificate, when it differs from the address's host. */
            serverNameOverride: z.string().min(1, { error: 'must be a host name' }).optional(),
          })
          .superRefine((tls, ctx) => {
            if (Boolean(tls.clientCertPath) !== Boolean(tls.clientKeyPath)) {
              const missing = tls.clientCertPath ? 'clientKeyPath' : 'clientCertPath';
              ctx.addIssue({ code: 'custom', path: [missing], input: undefined, message: 'mTLS needs both clientCertPath and clientKeyPath: give the other one too, or neither' });
            }
          })
          .prefault({}),
        /** Refused: an API key is a secret, read from TEMPORAL_API_KEY only. */
        apiKey: z
          .unknown()
          .optional()
          .superRefine((value, ctx) => {
            if (value === undefined) return;
            ctx.addIssue({ code: 'custom', input: '(hidden)', message: 'secrets do not belong in the config file: remove it and set the environment variable TEMPORAL_API_KEY for the worker and the CLI' });
          }),
      })
      .prefault({}),
    lakehouse: z
      .strictObject({
        target: target.default('local'),
        local: z
          .strictObject({
            path: z.string().min(1, { error: 'must be a file path for the DuckDB database' }).default('.data/lakehouse.duckdb'),
            /**
             * DuckDB's memory limit; beyond it large statements spill to disk. Index pages (the demo
             * tables' primary keys) cannot spill: 64 MB ran out refreshing the view of a 1M-change
             * demo. DuckDB's resident memory overshoots the limit (a 10M-id snapshot at 256 MB
             * peaked near 680 MB of worker RSS, at 128 MB near 475 MB).
             */
            memoryLimitMB: positiveInt('megabytes DuckDB may hold in memory before spilling to disk').min(64, { error: 'must be at least 64' }).default(128),
            faults: z
              .strictObject({
                transientConflictRate: z.number().min(0).max(1, { error: 'must be between 0 and 1' }).default(0),
              })
              .prefault({}),
          })
          .prefault({}),
      })
      .prefault({}),
    jobs: z
      .strictObject({
        target: target.default('local'),
        local: z
          .strictObject({
            path: z.string().min(1, { error: 'must be a file path for the local runner\'s run records' }).default('.data/local-jobs.duckdb'),
            maxConcurrentRuns: positiveInt('downstream runs the local runner executes at once').default(4),
            /** Share of first attempts that fail on purpose, to exercise batch retries (0 = never). */
            failFirstAttemptRate: z.number().min(0).max(1, { error: 'must be between 0 and 1' }).default(0),
          })
          .prefault({}),
      })
      .prefault({}),
    databricks: z
      .strictObject({
        /** Workspace host, e.g. "adb-123.4.azuredatabricks.net" or "https://host:8443"; else $DATABRICKS_HOST. */
        host: z.string().regex(/^(https:\/\/)?[A-Za-z0-9.-]+(:\d{1,5})?\/?$/, { error: 'must be a host name, optionally with https:// and a port' }).optional(),
        /** SQL warehouse HTTP path, e.g. "/sql/1.0/warehouses/abc123"; else $DATABRICKS_WAREHOUSE_HTTP_PATH. */
        warehouseHttpPath: z.string().regex(/^\/[A-Za-z0-9/_.-]+$/, { error: 'must be the warehouse HTTP path, e.g. "/sql/1.0/warehouses/abc123"' }).optional(),
        /** The downstream job launched once per batch; else $DATABRICKS_JOB_ID. */
        jobId: z.number().int().positive({ error: 'must be the numeric id of the downstream job' }).optional(),
        /** Below worker.activityTimeoutSeconds, so a statement never outlives the activity that ran it (and runs again beside its retry). */
        statementTimeoutSeconds: positiveInt('seconds a SQL statement may run on the warehouse (STATEMENT_TIMEOUT)').default(1500),
        /** The driver's usage telemetry; off unless turned on here. */
        telemetry: z.boolean().default(false),
        /**
         * How the changed-ids view is kept: `materializedView` (Databricks serverless or pro SQL
         * warehouses; refreshed incrementally by Databricks) or `table` (any Delta engine, also
         * classic warehouses and all-purpose clusters, which cannot create materialized views: a
         * Delta table updated by MERGE from the registry rows written since its last refresh).
         */
        changedIds: z.enum(['materializedView', 'table'], { error: 'must be "materializedView" (serverless or pro SQL warehouse) or "table" (any Delta engine)' }).default('materializedView'),
      })
      .prefault({}),
    tables: z
      .strictObject({
        registry: tableName.default('cdf.change_registry'),
        offsets: tableName.default('cdf.source_offsets'),
        changedIds: tableName.default('cdf.changed_ids'),
        batches: tableName.default('cdf.dispatch_batches'),
        fanInRuns: tableName.default('cdf.fan_in_runs'),
        batchStates: tableName.default('cdf.dispatch_batch_states'),
        master: tableName.default('demo.entity_master'),
        target: tableName.default('demo.entity_target'),
        /** The pull-style view (consumerView); by default `changed_uts` next to the registry. */
        consumerView: tableName.optional(),
      })
      .prefault({})
      .transform((tables) => ({ ...tables, consumerView: tables.consumerView ?? siblingName(tables.registry, 'changed_uts') })),
    /**
     * The seed design's pull-style view for teams that query instead of being launched:
     * `tables.consumerView` lists every uts_id changed in the last `windowHours` (by commit time),
     * whether dispatched or not. Created (and its window updated) at start-up and by bootstrap.
     */
    consumerView: z
      .strictObject({
        enabled: z.boolean({ error: 'must be true or false' }).default(true),
        windowHours: positiveInt('hours of changes the consumer view shows').max(8760, { error: 'must be at most 8760 (a year)' }).default(24),
      })
      .prefault({}),
    sources: z
      .array(sourceSchema, { error: 'must be a list of sources, each with at least name and table' })
      .min(1, { error: 'must list at least one source table to capture' }),
    capture: z
      .strictObject({
        maxVersionsPerRange: positiveInt('the most Delta versions read in one CDF range').default(100),
        pollIntervalSeconds: positiveInt('seconds between checks for new versions').default(30),
        /**
         * An error nothing recognises is retried (status shows it as retrying) until this many
         * attempts, then the source blocks with its message; recognised transient errors retry on.
         */
        blockUnknownErrorsAfterAttempts: positiveInt('attempts of a capture step failing with an unrecognised error before the source blocks').min(3, { error: 'must be at least 3' }).default(30),
      })
      .prefault({}),
    fanIn: z
      .strictObject({
        batchSize: positiveInt('the number of uts_ids per downstream job').default(1000),
        concurrency: positiveInt('downstream jobs in flight at once').max(100, { error: 'must be at most 100' }).default(4),
        // Bounded: the attempts of the batches in flight when a fan-in continues as new all land in one history.
        maxAttemptsPerBatch: positiveInt('launches per batch before it is parked for an operator').max(10, { error: 'must be at most 10' }).default(3),
        /** Wait before relaunching a failed batch; doubles with each attempt, at most 10 minutes. */
        relaunchBackoffSeconds: positiveInt('seconds before a failed batch is relaunched (doubling each attempt)').default(30),
        jobPollIntervalSeconds: positiveInt('seconds between job status checks').default(2),
        /** A run still not ended after this is cancelled and counted as a failed attempt; decimals allowed (0.5 = 30 s). */
        jobTimeoutMinutes: z
          .number({ error: 'must be a number: the minutes a downstream run may take before it is cancelled' })
          .positive({ error: 'must be greater than 0: the minutes a downstream run may take before it is cancelled' })
          .default(120),
        /** Event-driven fan-in: a source that captured new changes signals the fan-in trigger. */
        onChange: z
          .strictObject({
            enabled: z.boolean({ error: 'must be true or false' }).default(false),
            waitAfterLastChangeSeconds: nonNegativeInt('quiet seconds after the last change before a fan-in starts (debounce)').default(2),
            /**
             * The debounce's upper bound: sources that never pause (many tables, short polls) would
             * otherwise hold the fan-in back for ever. Default 60, or waitAfterLastChangeSeconds if longer.
             */
            maxWaitSeconds: positiveInt('the longest a captured change waits for a fan-in to start, however busy the sources').optional(),
            minSecondsBetweenRuns: nonNegativeInt('seconds between the starts of two triggered fan-ins').default(5),
          })
          .superRefine((onChange, ctx) => {
            if (onChange.maxWaitSeconds !== undefined && onChange.maxWaitSeconds < onChange.waitAfterLastChangeSeconds) {
              ctx.addIssue({
                code: 'custom',
                path: ['maxWaitSeconds'],
                input: onChange.maxWaitSeconds,
                message: `must be at least fanIn.onChange.waitAfterLastChangeSeconds (${onChange.waitAfterLastChangeSeconds}): it bounds that debounce. Raise maxWaitSeconds, lower waitAfterLastChangeSeconds, or remove maxWaitSeconds for the default (${defaultMaxWaitSeconds(onChange.waitAfterLastChangeSeconds)})`,
              });
            }
          })
          .transform((onChange) => ({ ...onChange, maxWaitSeconds: onChange.maxWaitSeconds ?? defaultMaxWaitSeconds(onChange.waitAfterLastChangeSeconds) }))
          .prefault({}),
      })
      .prefault({}),
    /**
     * How long the pipeline's own tables keep what is done with. `cdf purge` and the purge
     * schedule delete older rows, never a change not yet dispatched, an open run or a batch still
     * to run (pending, failed, parked, queued for retry). Fractions of a day are allowed.
     */
    retention: z
      .strictObject({
        registryDays: positiveDays('days a dispatched change stays in the registry (the seed design suggests 7 to 30)').default(30),
        batchDays: positiveDays('days the ids and state of a succeeded or abandoned batch are kept').default(30),
        fanInRunDays: positiveDays("days a committed fan-in window is kept (each source's latest stays: it is the dispatch watermark)").default(90),
        /** Databricks: OPTIMIZE each table a purge deleted rows from. VACUUM is left to predictive optimization or your own job. */
        optimizeAfterPurge: z.boolean({ error: 'must be true or false' }).default(true),
      })
      .prefault({}),
    /** Temporal Schedules that `cdf schedules apply` creates and keeps in line with this file; absent = none. */
    schedules: z
      .strictObject({
        /** Starts a fan-in on a cadence. */
        fanIn: scheduleSchema.optional(),
        /** Runs the retention purge (see retention) on a cadence, e.g. every 1d. */
        purge: scheduleSchema.optional(),
        /**
         * Removed: it started a workflow per source per tick only to signal pollNow to sources that
         * poll by themselves. Refused with the way out, so `cdf schedules apply` deletes its schedules.
         */
        sources: z
          .unknown()
          .optional()
          .superRefine((value, ctx) => {
            if (value === undefined) return;
            ctx.addIssue({
              code: 'custom',
              input: value,
              message:
                'was removed: every source workflow already polls by itself every capture.pollIntervalSeconds, so a poll schedule only added a workflow per source per tick. ' +
                'Delete schedules.sources (set capture.pollIntervalSeconds for the cadence) and run `cdf schedules apply`, which deletes the poll schedules it created',
            });
          }),
      })
      .prefault({}),
    /** Faults injected at the adapters' boundary, for reliability testing; all off by default. */
    faults: z
      .strictObject({
        sql: z
          .strictObject({
            conflictRate: rate('SQL calls that first fail with a Delta write conflict (SQLSTATE 2D521)'),
            droppedConnectionRate: rate('SQL calls whose connection drops, before or after the statement ran'),
            slowQueryRate: rate('SQL calls delayed by slowQuerySeconds before they run'),
            slowQuerySeconds: nonNegativeInt('the delay of a slow SQL call; above worker.activityTimeoutSeconds it outlasts its activity').default(0),
            permissionDeniedRate: rate('SQL calls that fail with INSUFFICIENT_PERMISSIONS, a permanent error'),
          })
          .prefault({}),
        jobs: z
          .strictObject({
            rateLimitRate: rate('Jobs API calls answered with HTTP 429'),
            serverErrorRate: rate('Jobs API calls answered with HTTP 503'),
            droppedConnectionRate: rate('Jobs API calls whose connection drops, before or after the call took effect'),
          })
          .prefault({}),
      })
      .prefault({}),
    worker: z
      .strictObject({
        maxConcurrentActivities: positiveInt('activities run at once by one worker').default(8),
        maxConcurrentWorkflowTasks: positiveInt('workflow tasks run at once by one worker').default(10),
        /**
         * The sticky cache: every source workflow polls all the time, so one evicted between two
         * polls replays its whole history on the next. Default: every source plus room for the
         * fan-ins (see workflowCacheSize); a value that cannot hold them is refused.
         */
        maxCachedWorkflows: positiveInt('workflows kept in the worker cache').optional(),
        shutdownGraceSeconds: nonNegativeInt('seconds in-flight activities get to finish on SIGTERM').default(30),
        /**
         * How long an activity may go without a heartbeat before Temporal retries it elsewhere: the
         * time it takes to notice that a worker died mid-activity. Activities heartbeat at a third of it.
         */
        /** Start-to-close timeout of the SQL activities (capture, refresh, open, snapshot, commit). */
        activityTimeoutSeconds: positiveInt('seconds a SQL activity may run before Temporal retries it').default(1800),
        heartbeatTimeoutSeconds: positiveInt('seconds without a heartbeat before an activity counts as lost').max(600, { error: 'must be at most 600' }).default(20),
        /** The worker's Prometheus endpoint (/metrics) and health check (/healthz); off unless a port is set. */
        metrics: z
          .strictObject({
            port: positiveInt('the port of /metrics and /healthz').max(65535).optional(),
            /** The address to listen on: 0.0.0.0 in a container, loopback by default. */
            host: z.string().min(1, { error: 'must be an address to listen on, e.g. 0.0.0.0' }).default('127.0.0.1'),
            /** How often the per-source gauges are read from the source workflows' status query. */
            sourceRefreshSeconds: positiveInt('seconds between reads of the sources\' status for the gauges').default(15),
          })
          .prefault({}),
      })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    config.sources.forEach((source, index) => {
      const first = seen.get(source.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['sources', index, 'name'], input: source.name, message: `duplicates sources[${first}].name: source names must be unique` });
      }
      seen.set(source.name, index);
    });
    if (config.lakehouse.target === 'databricks' && config.databricks.statementTimeoutSeconds >= config.worker.activityTimeoutSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['databricks', 'statementTimeoutSeconds'],
        input: config.databricks.statementTimeoutSeconds,
        message: `must be below worker.activityTimeoutSeconds (${config.worker.activityTimeoutSeconds}): a statement that outlives its activity runs again beside the activity's retry. Lower it or raise worker.activityTimeoutSeconds`,
      });
    }
    const cacheNeeded = config.sources.length + WORKFLOWS_BESIDE_SOURCES;
    if (config.worker.maxCachedWorkflows !== undefined && config.worker.maxCachedWorkflows < cacheNeeded) {
      ctx.addIssue({
        code: 'custom',
        path: ['worker', 'maxCachedWorkflows'],
        input: config.worker.maxCachedWorkflows,
        message:
          `must hold the ${config.sources.length} source workflows plus ${WORKFLOWS_BESIDE_SOURCES} for the fan-ins (${cacheNeeded}): a source evicted between polls replays its history on every poll, and the worker falls behind. ` +
          `Raise it to at least ${cacheNeeded}, or remove it for the default (${workflowCacheSize(config.sources.length, undefined)}). Each worker needs this: when the others stop, one worker holds every source`,
      });
    }
    if (config.consumerView.enabled && config.consumerView.windowHours > config.retention.registryDays * 24) {
      ctx.addIssue({
        code: 'custom',
        path: ['consumerView', 'windowHours'],
        input: config.consumerView.windowHours,
        message: `must not exceed retention.registryDays × 24 (${config.retention.registryDays * 24}): the purge would delete changes the view still promises. Shorten the window (default 24), raise retention.registryDays, or set consumerView.enabled: false`,
      });
    }
    const names = new Map<string, string>();
    for (const [key, name] of Object.entries(config.tables)) {
      const other = names.get(name.toLowerCase());
      if (other) ctx.addIssue({ code: 'custom', path: ['tables', key], input: name, message: `is also tables.${other}: every pipeline table needs a name of its own` });
      names.set(name.toLowerCase(), key);
    }
    if (config.lakehouse.target === 'local') {
      for (const [key, name] of Object.entries(config.tables)) {
        if (name.split('.').length > 2) {
          ctx.addIssue({ code: 'custom', path: ['tables', key], input: name, message: 'the local lakehouse takes "schema.table" names; drop the catalog part' });
        }
      }
      config.sources.forEach((source, index) => {
        if (source.table.split('.').length > 2) {
          ctx.addIssue({ code: 'custom', path: ['sources', index, 'table'], input: source.table, message: 'the local lakehouse takes "schema.table" names; drop the catalog part' });
        }
      });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type TablesConfig = Config['tables'];
export type FaultsConfig = Config['faults'];
export type ScheduleConfig = z.infer<typeof scheduleSchema>;
export type OverlapPolicyName = (typeof OVERLAP_POLICIES)[number];

/** The fan-in trigger, a running fan-in, the scheduled capture and fan-in, a purge, the demo traffic, and room for one of each continuing as new. */
export const WORKFLOWS_BESIDE_SOURCES = 10;

/**
 * worker.maxCachedWorkflows, or by default every source plus the fan-ins with a quarter to spare
 * (never below 200, the SDK's own scale): a cached workflow costs a few hundred kilobytes, a
 * cache miss a replay of the whole history on every poll.
 */
export function workflowCacheSize(sources: number, configured: number | undefined): number {
  return configured ?? Math.max(200, Math.ceil((sources + WORKFLOWS_BESIDE_SOURCES) * 1.25));
}
