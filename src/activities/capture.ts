import { ApplicationFailure, Context } from '@temporalio/activity';
import { fanInTriggerWorkflowId } from '../client/operations';
import type { Config, SourceConfig } from '../config/schema';
import { setTimeout as sleep } from 'node:timers/promises';
import { TransientError } from '../errors';
import { classifyLakehouseError, TABLE_REPLACED } from '../lakehouse/errors';
import type { ChangeCounts, Lakehouse, VersionRange } from '../lakehouse/port';
import { classified } from './failures';

export interface CaptureDeps {
  config: Config;
  lakehouse: Lakehouse;
}

export interface SourceRef {
  source: string;
}

export interface SourceCycleStart {
  latestVersion: number;
  latestCommitTimestamp: string;
  tableId: string;
  /** The first version not yet captured. */
  nextVersion: number;
  offsetVersion: number | null;
  offsetCommitTimestamp: string | null;
  /** The offset's replay generation, which the cycle's captures write their offsets under. */
  replayGeneration: number;
  deletedFileRetentionHours: number;
  /** Read from the worker's config on every cycle, so a config change applies without a restart. */
  maxVersionsPerRange: number;
  pollIntervalSeconds: number;
  /** fanIn.onChange.enabled: signal the fan-in trigger after a cycle that captured something. */
  notifyFanIn: boolean;
  /** worker.heartbeatTimeoutSeconds: how soon an activity on a dead worker is retried. */
  heartbeatTimeoutSeconds: number;
  /** worker.activityTimeoutSeconds: start-to-close of each capture activity. */
  activityTimeoutSeconds: number;
  /** capture.blockUnknownErrorsAfterAttempts. */
  blockUnknownErrorsAfterAttempts: number;
}

export type RangeRef = SourceRef & VersionRange;

/** A source's state after a cycle that captured everything: its offset is the latest version. */
export interface CaughtUp {
  version: number;
  /** The timestamp of that version's commit, as the last describe read it: with the version, it names the commit. */
  latestCommitTimestamp: string;
  tableId: string;
  commitTimestamp: string | null;
  deletedFileRetentionHours: number;
  replayGeneration: number;
}

export interface RangeCaptured {
  rowsInserted: number;
  /** The range's registry rows by change type. */
  counts: ChangeCounts;
  /** The offset after the MERGE (the stored one, if another writer had moved it further). */
  lastVersion: number;
  advanced: boolean;
}

/** What a rewind did: the offset's new generation, and whether a redispatch marker was written. */
export interface OffsetRewound {
  lastVersion: number;
  tableId: string;
  replayGeneration: number;
  redispatchMarked: boolean;
}

/** These activities read the source's change feed (table_changes): a missing file there is a vacuumed range. */
const FEED_READ = { readsChangeFeed: true };

/** Activities of the capture stage: one source, one pinned version range at a time. */
export function createCaptureActivities({ config, lakehouse }: CaptureDeps) {
  /**
   * A source missing from this worker's config is retried, not a permanent error: during a rolling
   * deploy a new source's first activity can land on a worker that still runs the old config, and
   * the next attempt lands on another. It shows as `retrying` with the remedy meanwhile and, as an
   * error nothing recognises, blocks after capture.blockUnknownErrorsAfterAttempts.
   */
  const sourceNamed = (name: string): SourceConfig => {
    const source = config.sources.find((s) => s.name === name);
    if (!source) {
      throw ApplicationFailure.create({
        type: 'UnknownSource',
        message: `source "${name}" is not in this worker's config (${config.sources.length} sources): add it to sources on every worker, or remove it (cdf sources apply)`,
        details: [{ recognised: false, remedy: `Deploy the config that names "${name}" to every worker, or remove the source with cdf sources apply; then signal pollNow.` }],
      });
    }
    return source;
  };
  /** Read from the worker's config on every cycle, so a config change applies without a restart. */
  const cycleSettings = () => ({
    maxVersionsPerRange: config.capture.maxVersionsPerRange,
    pollIntervalSeconds: config.capture.pollIntervalSeconds,
    notifyFanIn: config.fanIn.onChange.enabled,
    heartbeatTimeoutSeconds: config.worker.heartbeatTimeoutSeconds,
    activityTimeoutSeconds: config.worker.activityTimeoutSeconds,
    blockUnknownErrorsAfterAttempts: config.capture.blockUnknownErrorsAfterAttempts,
  });

  return {
    /**
     * Reads the latest version first (it pins the end of every range) and checks the table's
     * identity. `caughtUp`: what the workflow knew after its last cycle, when it had captured
     * everything. If the latest commit is still that one (same version, same commit timestamp),
     * nothing else is read: an idle poll is one statement. A table dropped and re-created up to
     * the same version has a commit of its own at that version, with another timestamp, so it
     * gets the full read that finds the new table id.
     */
    async describeSource({ source: name, caughtUp }: SourceRef & { caughtUp?: CaughtUp }): Promise<SourceCycleStart> {
      const source = sourceNamed(name);
      return classified(async () => {
        if (caughtUp) {
          const latest = await lakehouse.latestCommit(source);
          if (latest.latestVersion === caughtUp.version && latest.latestCommitTimestamp === caughtUp.latestCommitTimestamp) {
            return {
              ...latest,
              tableId: caughtUp.tableId,
              nextVersion: caughtUp.version + 1,
              offsetVersion: caughtUp.version,
              offsetCommitTimestamp: caughtUp.commitTimestamp,
              replayGeneration: caughtUp.replayGeneration,
              deletedFileRetentionHours: caughtUp.deletedFileRetentionHours,
              ...cycleSettings(),
            };
          }
        }
        const description = await lakehouse.describeSource(source);
        const offset = await lakehouse.readOffset(name);
        if (offset && offset.tableId !== description.tableId) {
          throw ApplicationFailure.create({
            type: TABLE_REPLACED,
            nonRetryable: true,
            message: `table ${source.table} now has id ${description.tableId}, but offset ${offset.lastVersion} was recorded for id ${offset.tableId}: the table was replaced or re-created`,
            details: [{ remedy: 'Resync: replay the source from the new table\'s first version (signal replayFromVersion) once downstream can take a full reload.' }],
          });
        }
        return {
          latestVersion: description.latestVersion,
          latestCommitTimestamp: description.latestCommitTimestamp,
          tableId: description.tableId,
          nextVersion: offset ? offset.lastVersion + 1 : source.startingVersion,
          offsetVersion: offset?.lastVersion ?? null,
          offsetCommitTimestamp: offset?.lastCommitTimestamp ?? null,
          replayGeneration: offset?.replayGeneration ?? 0,
          deletedFileRetentionHours: description.deletedFileRetentionHours,
          ...cycleSettings(),
        };
      });
    },

    /**
     * One pinned range, in one round trip: the registry append (the one read of the range's
     * change feed, which also yields the counts and `toVersion`'s commit timestamp), then the
     * offset MERGE under the cycle's replay generation. Each write is idempotent, so a retry
     * after a crash between them (or after a lost answer) appends nothing and moves the offset
     * once; an attempt that outlives a replay's rewind moves nothing.
     */
    async captureRange({ source, tableId, fromVersion, toVersion, replayGeneration }: RangeRef & { tableId: string; replayGeneration: number }): Promise<RangeCaptured> {
      const sourceConfig = sourceNamed(source);
      return classified(async () => {
        const appended = await lakehouse.appendRangeToRegistry(sourceConfig, { fromVersion, toVersion }, tableId);
        const offset = await retryWriteConflicts(() =>
          lakehouse.mergeOffset({ source, table: sourceConfig.table, tableId, version: toVersion, commitTimestamp: appended.toVersionCommitTimestamp, replayGeneration }),
        );
        return { rowsInserted: appended.rowsInserted, counts: appended.counts, lastVersion: offset.lastVersion, advanced: offset.advanced };
      }, FEED_READ);
    },

    /**
     * An operator's replay: the offset goes back to `fromVersion - 1`, recorded with the table's
     * current id. The registry stays deduplicated, so the re-read adds only what was missing; with
     * `redispatchFromVersion` (at least `fromVersion`: requests merged in the workflow may ask to
     * capture again from an older version than they ask to dispatch again), the dispatch watermark
     * goes back to just before it and the ids changed from it on are dispatched again.
     */
    async rewindOffset({ source, fromVersion, redispatchFromVersion }: SourceRef & { fromVersion: number; redispatchFromVersion?: number }): Promise<OffsetRewound> {
      const sourceConfig = sourceNamed(source);
      return classified(async () => {
        const { tableId, latestVersion } = await lakehouse.describeSource(sourceConfig);
        if (fromVersion > latestVersion) {
          throw ApplicationFailure.nonRetryable(`fromVersion ${fromVersion} is past the latest version ${latestVersion} of ${sourceConfig.table}: pick a version from 0 to ${latestVersion}`, 'InvalidReplay');
        }
        const redispatchAfterVersion = redispatchFromVersion === undefined ? undefined : Math.max(fromVersion, redispatchFromVersion) - 1;
        const rewound = await lakehouse.rewindOffset({ source, table: sourceConfig.table, tableId, version: fromVersion - 1, redispatchAfterVersion });
        return { lastVersion: fromVersion - 1, tableId, ...rewound };
      });
    },

    /**
     * Signal-with-start of the fan-in trigger: starts it if it is not running, so the first
     * captured change is enough to bring a fan-in.
     */
    async notifyFanIn({ source, offsetVersion }: SourceRef & { offsetVersion: number }): Promise<void> {
      const { waitAfterLastChangeSeconds, maxWaitSeconds, minSecondsBetweenRuns } = config.fanIn.onChange;
      await Context.current().client.workflow.signalWithStart('fanInTrigger', {
        workflowId: fanInTriggerWorkflowId(config),
        taskQueue: config.temporal.taskQueue,
        args: [{}],
        signal: 'changesCaptured',
        signalArgs: [{ source, offsetVersion, waitAfterLastChangeSeconds, maxWaitSeconds, minSecondsBetweenRuns }],
        staticSummary: 'Starts a fan-in shortly after sources capture changes',
      });
    },
  };
}

const OFFSET_MERGE_ATTEMPTS = 5;

/**
 * Every source's offset MERGE writes the one offsets table, so two sources finishing a range
 * together conflict (DELTA_CONCURRENT_APPEND on real Delta). Retried here, after the append has
 * landed, rather than by failing the activity: a retried activity appends nothing, and the rows
 * this attempt inserted would be missing from its result (and from the worker's counters).
 */
async function retryWriteConflicts<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      const classified = classifyLakehouseError(error);
      const conflict = classified instanceof TransientError && /^DELTA_CONCURRENT_|^SQLSTATE_2D521$/.test(classified.type);
      if (!conflict || attempt >= OFFSET_MERGE_ATTEMPTS) throw error;
      await sleep(100 * attempt + Math.random() * 100);
    }
  }
}
