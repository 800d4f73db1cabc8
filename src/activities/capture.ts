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
}

export interface RangeCaptured {
  rowsInserted: number;
  /** The range's registry rows by change type. */
  counts: ChangeCounts;
  /** The offset after the MERGE (the stored one, if another writer had moved it further). */
  lastVersion: number;
  advanced: boolean;
  /** How long the two writes took: the workflow runs the next range as a local activity when this one was quick. */
  durationMs?: number;
}

/** These activities read the source's change feed (table_changes): a missing file there is a vacuumed range. */
const FEED_READ = { readsChangeFeed: true };

/** Activities of the capture stage: one source, one pinned version range at a time. */
export function createCaptureActivities({ config, lakehouse }: CaptureDeps) {
  const sourceNamed = (name: string): SourceConfig => {
    const source = config.sources.find((s) => s.name === name);
    if (!source) {
      throw ApplicationFailure.nonRetryable(`source "${name}" is not in the worker's config: add it to sources or stop this workflow`, 'UnknownSource');
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
          deletedFileRetentionHours: description.deletedFileRetentionHours,
          ...cycleSettings(),
        };
      });
    },

    /**
     * One pinned range, in one round trip: the registry append (the one read of the range's
     * change feed, which also yields the counts and `toVersion`'s commit timestamp), then the
     * offset MERGE. Each write is idempotent, so a retry after a crash between them (or after a
     * lost answer) appends nothing and moves the offset once.
     */
    async captureRange({ source, tableId, fromVersion, toVersion }: RangeRef & { tableId: string }): Promise<RangeCaptured> {
      const sourceConfig = sourceNamed(source);
      return classified(async () => {
        const started = performance.now();
        const appended = await lakehouse.appendRangeToRegistry(sourceConfig, { fromVersion, toVersion }, tableId);
        const offset = await retryWriteConflicts(() =>
          lakehouse.mergeOffset({ source, table: sourceConfig.table, tableId, version: toVersion, commitTimestamp: appended.toVersionCommitTimestamp }),
        );
        return {
          rowsInserted: appended.rowsInserted,
          counts: appended.counts,
          lastVersion: offset.lastVersion,
          advanced: offset.advanced,
          durationMs: Math.round(performance.now() - started),
        };
      }, FEED_READ);
    },

    /** Before captureRange (histories still running it): CDF read of one pinned range, counts per change type. */
    async readChangeSummary({ source, ...range }: RangeRef): Promise<ChangeCounts> {
      const sourceConfig = sourceNamed(source);
      return classified(() => lakehouse.summarizeChanges(sourceConfig, range), FEED_READ);
    },

    /**
     * Before captureRange: idempotent registry append of one pinned range, under the table id the
     * cycle read. (An activity scheduled before the id was passed reads the table's current id.)
     */
    async appendToRegistry({ source, tableId, fromVersion, toVersion }: RangeRef & { tableId?: string }): Promise<{ rowsInserted: number }> {
      const sourceConfig = sourceNamed(source);
      return classified(async () => {
        const id = tableId ?? (await lakehouse.describeSource(sourceConfig)).tableId;
        const { rowsInserted } = await lakehouse.appendRangeToRegistry(sourceConfig, { fromVersion, toVersion }, id);
        return { rowsInserted };
      }, FEED_READ);
    },

    /**
     * An operator's replay: the offset goes back to `fromVersion - 1`, recorded with the table's
     * current id. The registry stays deduplicated, so the re-read adds only what was missing; with
     * `redispatch`, the dispatch watermark goes back too and the ids are dispatched again.
     */
    async rewindOffset({ source, fromVersion, redispatch }: SourceRef & { fromVersion: number; redispatch?: boolean }): Promise<{ lastVersion: number; tableId: string }> {
      const sourceConfig = sourceNamed(source);
      return classified(async () => {
        const { tableId, latestVersion } = await lakehouse.describeSource(sourceConfig);
        if (fromVersion > latestVersion) {
          throw ApplicationFailure.nonRetryable(`fromVersion ${fromVersion} is past the latest version ${latestVersion} of ${sourceConfig.table}: pick a version from 0 to ${latestVersion}`, 'InvalidReplay');
        }
        await lakehouse.rewindOffset({ source, table: sourceConfig.table, tableId, version: fromVersion - 1, redispatch: redispatch === true });
        return { lastVersion: fromVersion - 1, tableId };
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

    /** Before captureRange: monotonic offset MERGE after the range is in the registry (its commit timestamp left unknown; the next captureRange records one). */
    async commitOffset({ source, version, tableId }: SourceRef & { version: number; tableId: string }): Promise<{ lastVersion: number; advanced: boolean }> {
      const sourceConfig = sourceNamed(source);
      return classified(() => lakehouse.mergeOffset({ source, table: sourceConfig.table, tableId, version, commitTimestamp: null }), FEED_READ);
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
