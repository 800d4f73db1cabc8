import { fanInDetails, sourceDetails } from '../../src/workflows/currentDetails';
import type { FanInStatus, SourceStatus } from '../../src/workflows/messages';

function sourceStatus(overrides: Partial<SourceStatus> = {}): SourceStatus {
  return {
    source: 'orders',
    paused: null,
    pendingReplay: null,
    lastRejected: null,
    offsetVersion: 40,
    latestVersion: 42,
    lagVersions: 2,
    lagSeconds: 12.4,
    retentionHeadroomHours: null,
    retentionAtRisk: false,
    cyclesCompleted: 7,
    lastCycle: null,
    totals: { ranges: 3, changesRead: 900, registryRowsInserted: 800 },
    blocked: null,
    retrying: null,
    continuedAsNewTimes: 0,
    ...overrides,
  };
}

describe('the current details of a source workflow', () => {
  it('show the state, then offset, latest version, lag in versions and seconds, registry rows and cycles', () => {
    expect(sourceDetails(sourceStatus())).toBe(
      ['**orders: capturing**', '', '| offset | latest | lag | registry rows | cycles |', '|---|---|---|---|---|', '| 40 | 42 | 2 versions (12 s) | 800 | 7 |'].join('\n'),
    );
  });

  it('put a blocked reason and its remedy before the figures, keeping a message with pipes and line breaks in one line', () => {
    const details = sourceDetails(sourceStatus({ blocked: { type: 'DELTA_MISSING_CHANGE_DATA', message: 'CDF was off\nfor | version 41', remedy: 'switch CDF on, then replay', since: '2026-12-03T10:00:00.000Z' } }));
    expect(details.split('\n').slice(0, 5)).toEqual([
      '**orders: blocked**',
      '',
      '`DELTA_MISSING_CHANGE_DATA` since 2026-12-03T10:00:00.000Z: CDF was off for \\| version 41',
      '',
      '**Remedy:** switch CDF on, then replay',
    ]);
  });

  it('say a paused source is paused, why, and that a waiting replay waits for resume', () => {
    const details = sourceDetails(sourceStatus({ paused: { reason: 'maintenance', since: '2026-12-03T10:00:00.000Z' }, pendingReplay: { fromVersion: 12, redispatchFromVersion: null, requestsMerged: 1 } }));
    expect(details).toMatch(/^\*\*orders: paused\*\*\n\nPaused since 2026-12-03T10:00:00.000Z: maintenance\. Signal resume `\{\}` to continue\.\n\nReplay from version 12 waiting for resume\./);
  });

  it('say how many attempts a retrying step took and that an unrecognised error will block', () => {
    const details = sourceDetails(sourceStatus({ retrying: { type: 'UNCLASSIFIED', message: 'boom', attempts: 6, recognised: false, since: '2026-12-03T10:00:00.000Z' } }));
    expect(details).toContain('**orders: retrying**\n\n`UNCLASSIFIED` since 2026-12-03T10:00:00.000Z, 6 attempts (blocks after capture.blockUnknownErrorsAfterAttempts): boom');
  });

  it('shorten a very long message', () => {
    const details = sourceDetails(sourceStatus({ blocked: { type: 'X', message: 'a'.repeat(5000), remedy: 'r', since: 's' } }));
    expect(details.length).toBeLessThan(1000);
    expect(details).toContain(`${'a'.repeat(599)}…`);
  });

  it('show "caught up" without seconds at lag 0, and "not read yet" before the first cycle', () => {
    expect(sourceDetails(sourceStatus({ lagVersions: 0, lagSeconds: 0 }))).toContain('| 40 | 42 | caught up |');
    expect(sourceDetails(sourceStatus({ lagVersions: null, offsetVersion: null, latestVersion: null }))).toContain('| — | — | not read yet |');
  });
});

describe('the current details of a fan-in', () => {
  const status: FanInStatus = { runKey: 'fi-1', phase: 'dispatching', execution: 2, changedIds: 5000, batches: 10, batchesSucceeded: 4, batchesParked: 1, batchesRunning: 3, batchesWaitingToRelaunch: 1, runningBatches: [] };

  it('show the phase, the run key, the execution and the batch counts, with what to do about parked batches first', () => {
    expect(fanInDetails(status)).toBe(
      [
        '**fan-in: dispatching** · run `fi-1` · execution 2',
        '',
        'Parked batches wait for `cdf batches retry` or `cdf batches abandon`.',
        '',
        '| changed ids | batches | succeeded | parked | running | waiting to relaunch |',
        '|---|---|---|---|---|---|',
        '| 5000 | 10 | 4 | 1 | 3 | 1 |',
      ].join('\n'),
    );
  });
});
