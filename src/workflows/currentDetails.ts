import type { FanInStatus, SourceStatus } from './messages';

/*
 * What the Web UI shows in a workflow's "Current Details" panel (Temporal's current details,
 * markdown, read through the built-in __temporal_workflow_metadata query): the state at a glance,
 * without running a query (the queries status and fanInStatus hold the rest). The UI shows it
 * in a short panel, so what needs an operator comes first. Setting it records nothing in the
 * history, so it may change freely.
 */

/** Keeps a message in one table cell: no pipes or line breaks, at most a few hundred characters. */
function cell(text: string, max = 300): string {
  const flat = text.replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function version(value: number | null): string {
  return value === null ? '—' : String(value);
}

/** capturing, retrying, blocked or paused: the same words as the CdfState search attribute. */
export function sourceState(status: Pick<SourceStatus, 'paused' | 'blocked' | 'retrying'>): 'paused' | 'blocked' | 'retrying' | 'capturing' {
  return status.paused ? 'paused' : status.blocked ? 'blocked' : status.retrying ? 'retrying' : 'capturing';
}

export function sourceDetails(status: SourceStatus): string {
  const state = sourceState(status);
  const lag =
    status.lagVersions === null
      ? 'not read yet'
      : status.lagVersions === 0
        ? 'caught up'
        : `${status.lagVersions} version${status.lagVersions === 1 ? '' : 's'}${status.lagSeconds === null ? '' : ` (${Math.round(status.lagSeconds)} s)`}`;
  const lines = [`**${status.source}: ${state}**`];
  if (status.blocked) {
    lines.push('', `\`${status.blocked.type}\` since ${status.blocked.since}: ${cell(status.blocked.message, 600)}`, '', `**Remedy:** ${cell(status.blocked.remedy, 600)}`);
  }
  if (status.retrying) {
    const until = status.retrying.recognised ? 'retried while it lasts' : 'blocks after capture.blockUnknownErrorsAfterAttempts';
    lines.push('', `\`${status.retrying.type}\` since ${status.retrying.since}, ${status.retrying.attempts} attempts (${until}): ${cell(status.retrying.message)}`);
  }
  if (status.paused) lines.push('', `Paused since ${status.paused.since}: ${cell(status.paused.reason)}. Signal resume \`{}\` to continue.`);
  if (status.pendingReplay) lines.push('', `Replay from version ${status.pendingReplay.fromVersion} waiting${status.paused ? ' for resume' : ' for the next cycle'}.`);
  if (status.retentionAtRisk && status.retentionHeadroomHours !== null) {
    lines.push('', `**Retention at risk:** ${status.retentionHeadroomHours} h left before the offset's files may be vacuumed.`);
  }
  if (status.lastRejected) lines.push('', `Last rejected \`${status.lastRejected.handler}\` at ${status.lastRejected.at}: ${cell(status.lastRejected.reason)}`);
  lines.push(
    '',
    '| offset | latest | lag | registry rows | cycles |',
    '|---|---|---|---|---|',
    `| ${version(status.offsetVersion)} | ${version(status.latestVersion)} | ${lag} | ${status.totals.registryRowsInserted} | ${status.cyclesCompleted} |`,
  );
  return lines.join('\n');
}

export function fanInDetails(status: FanInStatus): string {
  const lines = [
    `**fan-in: ${status.phase}**${status.runKey ? ` · run \`${status.runKey}\`` : ''}${status.execution > 1 ? ` · execution ${status.execution}` : ''}`,
    '',
    '| changed ids | batches | succeeded | parked | running | waiting to relaunch |',
    '|---|---|---|---|---|---|',
    `| ${status.changedIds} | ${status.batches} | ${status.batchesSucceeded} | ${status.batchesParked} | ${status.batchesRunning} | ${status.batchesWaitingToRelaunch} |`,
  ];
  if (status.batchesParked > 0) lines.splice(1, 0, '', 'Parked batches wait for `cdf batches retry` or `cdf batches abandon`.');
  return lines.join('\n');
}
