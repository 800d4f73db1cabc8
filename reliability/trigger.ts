import { setTimeout as sleep } from 'node:timers/promises';
import { temporal } from '@temporalio/proto';
import { fanInTriggerWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { fanInTriggerStatusQuery, MAX_TRIGGER_HISTORY_EVENTS, type FanInTriggerInput } from '../src/workflows/fanInTrigger';
import { eventTimeMs } from '../test/support/history';
import { invariant, scenarioConfig, startInProcessPipeline, type ScenarioContext, type ScenarioResult } from './context';
import { auditPipeline } from './oracle';
import { drainFanIns, waitForCatchUp } from './settle';

const EventType = temporal.api.enums.v1.EventType;

/** Sizes: sources (each polls every second, so each captures and notifies about once a second) and seconds of traffic. */
const SIZES = { ci: { sources: 8, trafficSeconds: 55 }, full: { sources: 16, trafficSeconds: 120 } } as const;
const WAIT_AFTER_LAST_CHANGE_SECONDS = 3;
const MAX_WAIT_SECONDS = 8;
/** Events a run may pass its bound by: the workflow task that decides to continue as new, and signals that race it. */
const HISTORY_SLACK_EVENTS = 50;

/**
 * Sources commit without pause while the event-driven trigger debounces them (3 s quiet, 8 s at
 * most): the debounce (almost) never settles, so the maximum wait starts the fan-ins, and the stream of
 * notifications must not grow one history without bound. Downstream jobs take a while, so the
 * trigger also continues as new while a fan-in is in flight. Afterwards the oracle audits every change.
 */
export async function starvedTriggerScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const size = SIZES[ctx.size];
  const config = scenarioConfig(ctx, 'starvedtrigger', {
    sources: Array.from({ length: size.sources }, (_, i) => ({ name: `s${i + 1}`, table: `upstream.s${i + 1}` })),
    capture: { maxVersionsPerRange: 4, pollIntervalSeconds: 1 },
    fanIn: { batchSize: 100, concurrency: 4, jobPollIntervalSeconds: 1, onChange: { enabled: true, waitAfterLastChangeSeconds: WAIT_AFTER_LAST_CHANGE_SECONDS, maxWaitSeconds: MAX_WAIT_SECONDS, minSecondsBetweenRuns: 0 } },
  });
  const t = await startInProcessPipeline(ctx, config, {
    processor: (lakehouse) => async (runKey, batchNumber) => {
      await sleep(1_000); // a downstream job that takes a moment keeps fan-ins in flight while notifications arrive
      return lakehouse.processBatch(runKey, batchNumber);
    },
  });
  try {
    await startSourceWorkflows(t.client, config);
    // One commit to the next source every 1/n s: every source has a new version at each of its polls.
    const trafficStart = Date.now();
    let commits = 0;
    while (Date.now() - trafficStart < size.trafficSeconds * 1000) {
      const source = config.sources[commits % config.sources.length]!;
      await t.lakehouse.writeUpstreamCommit(source.table, commits < config.sources.length ? { insert: 8, idSpace: 2_000, seed: commits } : { insert: 4, update: 3, delete: 1, idSpace: 2_000, seed: commits });
      commits += 1;
      await sleep(Math.max(0, trafficStart + (commits * 1000) / config.sources.length - Date.now()));
    }
    const trafficEnd = Date.now();
    ctx.progress(`starved trigger: ${commits} commits on ${config.sources.length} sources in ${Math.round((trafficEnd - trafficStart) / 1000)} s`);

    await waitForCatchUp(t.client, config, 120);
    const trigger = t.client.workflow.getHandle(fanInTriggerWorkflowId(config));
    for (let waited = 0; ; waited++) {
      const status = await trigger.query(fanInTriggerStatusQuery);
      if (status.pendingSources.length === 0 && status.fanInInFlight === null) break;
      if (waited > 120) throw new Error(`the trigger did not finish its fan-ins within 120 s of the sources catching up: ${JSON.stringify(status)}`);
      await sleep(1000);
    }
    const fanIns = await drainFanIns(t.client, config);

    const fanInStarts: number[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowType = "fanIn" AND TaskQueue = "${config.temporal.taskQueue}"` })) fanInStarts.push(w.startTime.getTime());
    const startsDuringTraffic = fanInStarts.filter((at) => at >= trafficStart && at <= trafficEnd).sort((a, b) => a - b);

    const runs: { events: number; signals: number[]; carriedFanIn: boolean }[] = [];
    for await (const w of t.client.workflow.list({ query: `WorkflowId = "${trigger.workflowId}"` })) {
      const events = (await t.client.workflow.getHandle(w.workflowId, w.runId).fetchHistory()).events ?? [];
      const input = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      const carried = input ? (JSON.parse(Buffer.from(input).toString('utf8')) as FanInTriggerInput).carried : undefined;
      runs.push({ events: events.length, signals: events.filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED).map(eventTimeMs), carriedFanIn: Boolean(carried?.running) });
    }
    const signals = runs.flatMap((r) => r.signals).sort((a, b) => a - b);
    const signalsDuringTraffic = signals.filter((at) => at <= trafficEnd);
    const longestQuietMs = Math.max(0, ...signalsDuringTraffic.slice(1).map((at, i) => at - signalsDuringTraffic[i]!));
    const maxEvents = Math.max(...runs.map((r) => r.events));
    const gaps = startsDuringTraffic.map((at, i) => at - (i === 0 ? trafficStart : startsDuringTraffic[i - 1]!));
    // A fan-in the maximum wait started had a notification less than the debounce before it: it did not wait for a quiet moment.
    const startedByMaxWait = startsDuringTraffic.filter((at) => signals.some((s) => s < at && s > at - WAIT_AFTER_LAST_CHANGE_SECONDS * 1000));
    const minimumFanIns = Math.floor(size.trafficSeconds / (MAX_WAIT_SECONDS * 1.5));
    ctx.progress(`starved trigger: ${signals.length} notifications (longest pause ${longestQuietMs} ms), ${startsDuringTraffic.length} fan-ins during traffic, ${runs.length} trigger runs of at most ${maxEvents} events`);

    const audit = await auditPipeline(config, t.lakehouse, t.runner);
    const { invariants: auditInvariants, ...auditFigures } = audit;
    return {
      name: 'starvedTrigger',
      figures: {
        sources: config.sources.length,
        commits,
        notifications: signals.length,
        longestPauseBetweenNotificationsMs: longestQuietMs,
        fanInsDuringTraffic: startsDuringTraffic.length,
        fanInsStartedByMaxWait: startedByMaxWait.length,
        secondsBetweenFanInStarts: gaps.map((g) => Math.round(g / 100) / 10),
        triggerRuns: runs.length,
        triggerRunsCarryingAFanInInFlight: runs.filter((r) => r.carriedFanIn).length,
        maxEventsInOneTriggerRun: maxEvents,
        drainFanIns: fanIns,
        ...auditFigures,
      },
      invariants: [
        invariant(`at least ${minimumFanIns} fan-ins started while notifications kept coming, none waiting for the ${WAIT_AFTER_LAST_CHANGE_SECONDS} s debounce to settle`,
          startedByMaxWait.length >= minimumFanIns,
          `${signalsDuringTraffic.length} notifications during ${size.trafficSeconds} s, longest pause ${longestQuietMs} ms; ${startsDuringTraffic.length} fan-ins started meanwhile (${startedByMaxWait.length} with a notification under ${WAIT_AFTER_LAST_CHANGE_SECONDS} s before), ${gaps.map((g) => (g / 1000).toFixed(1)).join(', ')} s apart`),
        invariant(`the trigger continued as new and no run of it exceeded ${MAX_TRIGGER_HISTORY_EVENTS + HISTORY_SLACK_EVENTS} events`,
          runs.length >= 2 && maxEvents <= MAX_TRIGGER_HISTORY_EVENTS + HISTORY_SLACK_EVENTS,
          `${runs.length} runs (${runs.filter((r) => r.carriedFanIn).length} started with a fan-in in flight), ${runs.map((r) => r.events).join(', ')} events`),
        ...auditInvariants,
      ],
      taskQueues: [config.temporal.taskQueue],
      logFiles: [],
    };
  } finally {
    await t.stop();
  }
}
