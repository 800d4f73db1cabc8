import { readFileSync } from 'node:fs';
import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import { FAULT_KINDS } from '../src/faults/injector';
import { replayFromVersionUpdate } from '../src/workflows/messages';
import { invariant, scenarioConfig, startInProcessPipeline, type ScenarioContext, type ScenarioResult } from './context';
import { auditPipeline } from './oracle';
import { drainFanIns } from './settle';

export interface FaultsSize {
  sources: number;
  commitsPerSource: number;
  opsPerCommit: number;
}

/**
 * Every transient fault at once (SQL conflicts, dropped connections before and after the statement,
 * statements slower than their activity timeout, Jobs 429/503/dropped connections, runs that fail
 * then succeed) while sources capture and fan-ins dispatch; then a permanent fault, which must
 * block the source with its remedy and move no offset, and a replay that recovers it.
 */
export async function faultsScenario(ctx: ScenarioContext, size: FaultsSize): Promise<ScenarioResult> {
  const config = scenarioConfig(ctx, 'faults', {
    sources: Array.from({ length: size.sources }, (_, i) => ({ name: `f${i + 1}`, table: `upstream.f${i + 1}` })),
    capture: { maxVersionsPerRange: 1, pollIntervalSeconds: 3600 },
    fanIn: { batchSize: 25, concurrency: 4, jobPollIntervalSeconds: 1, maxAttemptsPerBatch: 3 },
    jobs: { local: { path: `${ctx.workDir}/faults/jobs.duckdb`, maxConcurrentRuns: 4, failFirstAttemptRate: 0.3 } },
    faults: {
      sql: { conflictRate: 0.06, droppedConnectionRate: 0.06, slowQueryRate: 0.05, slowQuerySeconds: 5, permissionDeniedRate: 0 },
      jobs: { rateLimitRate: 0.1, serverErrorRate: 0.1, droppedConnectionRate: 0.1 },
    },
    // Slow statements (5 s) outlast the SQL activities' 3 s timeout: Temporal retries them while the first attempt still runs.
    worker: { shutdownGraceSeconds: 2, heartbeatTimeoutSeconds: 2, activityTimeoutSeconds: 3 },
  });
  const t = await startInProcessPipeline(ctx, config);
  try {
    for (let c = 0; c < size.commitsPerSource; c++) {
      for (const source of config.sources) {
        const ops = size.opsPerCommit;
        await t.lakehouse.writeUpstreamCommit(source.table, c === 0 ? { insert: ops, idSpace: 5_000 } : { insert: ops / 2, update: ops / 3, delete: ops / 6, idSpace: 5_000 });
      }
    }
    await startSourceWorkflows(t.client, config);
    await Promise.all(config.sources.map((s) => captureUntilCaughtUp(t.client, config, s.name)));
    const fanIns = await drainFanIns(t.client, config);
    const transientCounts = { ...t.faults.counts };
    const jobRunsFailedFirst = (await t.runner.runRecords()).filter((r) => r.resultState === 'FAILED').length;

    // A permanent fault: the source blocks with its remedy; its offset stays where it was.
    const blockedSource = config.sources[0]!;
    for (const kind of FAULT_KINDS) t.faults.rates[kind] = 0;
    await t.lakehouse.writeUpstreamCommit(blockedSource.table, { insert: 10, idSpace: 5_000 });
    const offsetBefore = await t.lakehouse.readOffset(blockedSource.name);
    t.faults.rates.sqlPermissionDenied = 1;
    const blockedReport = await captureUntilCaughtUp(t.client, config, blockedSource.name);
    const offsetWhileBlocked = await t.lakehouse.readOffset(blockedSource.name);
    t.faults.rates.sqlPermissionDenied = 0;
    await t.client.workflow.getHandle(sourceWorkflowId(config, blockedSource.name)).executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: offsetBefore!.lastVersion + 1, reason: 'permission granted again' }] });
    const recovered = await captureUntilCaughtUp(t.client, config, blockedSource.name);
    await drainFanIns(t.client, config);

    const audit = await auditPipeline(config, t.lakehouse, t.runner);
    const log = readFileSync(process.env.CDF_LOG_FILE!, 'utf8');
    const injectedKinds = FAULT_KINDS.filter((k) => t.faults.counts[k] > 0);
    const unlogged = injectedKinds.filter((k) => !log.includes(`"fault":"${k}"`));
    const retriesLogged = (log.match(/Activity failed/g) ?? []).length;
    const { invariants, ...figures } = audit;
    return {
      name: 'faults',
      figures: {
        sources: size.sources,
        faultsInjected: t.faults.total() + jobRunsFailedFirst,
        faultsInjectedByKind: { ...t.faults.counts, jobRunFailedThenRelaunched: jobRunsFailedFirst },
        fanIns,
        activityRetriesLogged: retriesLogged,
        ...figures,
      },
      invariants: [
        invariant('every transient fault kind was injected', FAULT_KINDS.filter((k) => k !== 'sqlPermissionDenied').every((k) => transientCounts[k] > 0) && jobRunsFailedFirst > 0,
          JSON.stringify({ ...transientCounts, jobRunFailedThenRelaunched: jobRunsFailedFirst })),
        invariant('every injected fault and the retries it caused are in the log', unlogged.length === 0 && retriesLogged > 0, `${retriesLogged} "Activity failed" lines; kinds missing from the log: ${unlogged.join(', ') || 'none'}`),
        invariant('a permanent fault blocks the source with its remedy and moves no offset',
          blockedReport.blocked?.type === 'INSUFFICIENT_PERMISSIONS' && Boolean(blockedReport.blocked?.remedy) && offsetWhileBlocked?.lastVersion === offsetBefore?.lastVersion,
          `blocked: ${blockedReport.blocked?.type} — remedy: ${blockedReport.blocked?.remedy}; offset ${offsetBefore?.lastVersion} → ${offsetWhileBlocked?.lastVersion}`),
        invariant('a replay recovers the blocked source', recovered.blocked === null && recovered.offsetVersion === recovered.latestVersion, `offset ${recovered.offsetVersion}, latest ${recovered.latestVersion}`),
        ...invariants,
      ],
      taskQueues: [config.temporal.taskQueue],
      logFiles: [],
    };
  } finally {
    await t.stop();
  }
}
