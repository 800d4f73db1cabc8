import type { Client } from '@temporalio/client';
import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import type { Config, SourceConfig } from '../src/config/schema';
import { replayFromVersionUpdate, type CycleReport } from '../src/workflows/messages';
import { invariant, scenarioConfig, startInProcessPipeline, type Invariant, type ScenarioContext, type ScenarioResult } from './context';

/** One way a Delta table breaks an incremental reader, with the recovery its remedy names. */
export interface FailureMode {
  source: string;
  /** Breaks the table whose changes the source has captured up to `offset`. */
  break(table: string, offset: number): Promise<void>;
  /** The operator's repair (if any); returns the version the replay starts from. */
  repair(table: string, offset: number): Promise<number>;
  /** The error type the blocked source must show. */
  expected: RegExp;
}

/**
 * An engine the scenario breaks tables on, and a running pipeline (worker, client) that reads
 * them. Ids are compared as `uts_id@version`.
 */
export interface FailureModesBench {
  config: Config;
  client: Client;
  modes: FailureMode[];
  tableOf(source: string): string;
  /** Creates the source's table (or leaves it) and writes `n` commits of inserts, updates and deletes. */
  commitSome(table: string, n?: number): Promise<void>;
  latestVersion(table: string): Promise<number>;
  offset(source: string): Promise<number>;
  /** Every id the registry holds for the source from `fromVersion` on. */
  registered(source: string, fromVersion: number): Promise<Set<string>>;
  /** Every id the table's own change feed shows for the range (the oracle). */
  feed(table: string, fromVersion: number, toVersion: number): Promise<Set<string>>;
  stop(): Promise<void>;
}

/** The embedded engine's four ways, broken through its own operations. */
function localModes(engine: Awaited<ReturnType<typeof startInProcessPipeline>>['lakehouse']['engine'], commitSome: FailureModesBench['commitSome']): FailureMode[] {
  return [
    {
      source: 'vacuumed',
      async break(table, offset) {
        await commitSome(table);
        await engine.vacuum(table, offset + 3);
      },
      repair: async (_table, offset) => offset + 3,
      expected: /^DELTA_FILE_NOT_FOUND_DETAILED$/,
    },
    {
      source: 'cdfoff',
      async break(table) {
        await engine.setChangeDataFeed(table, false);
        await commitSome(table, 1);
        await engine.setChangeDataFeed(table, true);
        await commitSome(table, 2);
      },
      repair: async (table) => (await engine.describe(table)).latestVersion - 1,
      expected: /^DELTA_MISSING_CHANGE_DATA$|^CDF_INCREMENTAL_READ_BROKEN$/,
    },
    {
      source: 'replaced',
      async break(table) {
        await engine.replaceTable(table);
        await commitSome(table, 2);
      },
      repair: async (table) => (await engine.describe(table)).latestVersion - 1,
      expected: /^CDF_TABLE_REPLACED$/,
    },
    {
      source: 'dropped',
      async break(table) {
        await commitSome(table, 1);
        await engine.dropTable(table);
      },
      async repair(table, offset) {
        await engine.undropTable(table);
        return offset + 1;
      },
      expected: /^TABLE_OR_VIEW_NOT_FOUND$/,
    },
  ];
}

/** The scenario on the embedded engine (the default lakehouse). */
async function localBench(ctx: ScenarioContext): Promise<FailureModesBench> {
  const names = ['vacuumed', 'cdfoff', 'replaced', 'dropped'];
  const sources: Pick<SourceConfig, 'name' | 'table'>[] = names.map((name) => ({ name, table: `upstream.${name}` }));
  const config = scenarioConfig(ctx, 'failuremodes', { sources, capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 3600 } });
  const t = await startInProcessPipeline(ctx, config);
  const { lakehouse } = t;
  const commitSome = async (table: string, n = 3) => {
    for (let i = 0; i < n; i++) await lakehouse.writeUpstreamCommit(table, { insert: 5, update: 3, delete: 1, idSpace: 2_000 });
  };
  return {
    config,
    client: t.client,
    modes: localModes(lakehouse.engine, commitSome),
    tableOf: (source) => `upstream.${source}`,
    commitSome,
    latestVersion: async (table) => (await lakehouse.engine.describe(table)).latestVersion,
    offset: async (source) => (await lakehouse.readOffset(source))!.lastVersion,
    async registered(source, fromVersion) {
      const rows = await lakehouse.db.all<{ uts_id: string; v: bigint }>(`SELECT uts_id, commit_version AS v FROM ${config.tables.registry} WHERE source = ? AND commit_version >= ?`, [source, fromVersion]);
      return new Set(rows.map((r) => `${r.uts_id}@${r.v}`));
    },
    async feed(table, fromVersion, toVersion) {
      const { sql, keyColumn } = await lakehouse.engine.changesRelation(table, fromVersion, toVersion);
      const rows = await lakehouse.db.all<{ uts_id: string; v: bigint }>(`SELECT DISTINCT CAST("${keyColumn}" AS VARCHAR) AS uts_id, _commit_version AS v FROM (${sql}) c WHERE "${keyColumn}" IS NOT NULL`);
      return new Set(rows.map((r) => `${r.uts_id}@${r.v}`));
    },
    stop: () => t.stop(),
  };
}

/**
 * Vacuumed versions past the offset, CDF off for a range, a replaced table (new id) and a dropped
 * table: each must be detected, put its source in the blocked state with the remedy, leave the
 * offset where it was, and recover through the path the remedy names, registering exactly what
 * the table's feed shows for the replayed versions.
 */
export async function failureModesScenario(ctx: ScenarioContext, bench?: FailureModesBench, name = 'failureModes'): Promise<ScenarioResult> {
  const b = bench ?? (await localBench(ctx));
  const { config, client } = b;
  const invariants: Invariant[] = [];
  const detected: Record<string, { type: string | undefined; remedy: string | undefined; recovered: boolean }> = {};
  try {
    for (const mode of b.modes) await b.commitSome(b.tableOf(mode.source));
    await startSourceWorkflows(client, config);
    for (const mode of b.modes) await captureUntilCaughtUp(client, config, mode.source);
    for (const mode of b.modes) {
      const table = b.tableOf(mode.source);
      const offset = await b.offset(mode.source);
      await mode.break(table, offset);
      const blocked: CycleReport = await captureUntilCaughtUp(client, config, mode.source);
      const offsetWhileBlocked = await b.offset(mode.source);
      ctx.progress(`${name}: ${mode.source}: blocked with ${blocked.blocked?.type ?? 'nothing'}`);
      const fromVersion = await mode.repair(table, offset);
      await client.workflow.getHandle(sourceWorkflowId(config, mode.source)).executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion, reason: `recovery after ${mode.source}` }] });
      const after = await captureUntilCaughtUp(client, config, mode.source);
      const latest = await b.latestVersion(table);
      const registered = await b.registered(mode.source, fromVersion);
      const feed = await b.feed(table, fromVersion, latest);
      const missing = [...feed].filter((id) => !registered.has(id));
      const extra = [...registered].filter((id) => !feed.has(id));
      const recovered = after.blocked === null && after.offsetVersion === latest && feed.size > 0 && missing.length === 0 && extra.length === 0;
      detected[mode.source] = { type: blocked.blocked?.type, remedy: blocked.blocked?.remedy, recovered };
      invariants.push(
        invariant(`${mode.source}: detected, blocked with its remedy, offset unmoved`, mode.expected.test(blocked.blocked?.type ?? '') && Boolean(blocked.blocked?.remedy) && offsetWhileBlocked === offset,
          `${blocked.blocked?.type}: ${blocked.blocked?.remedy} (offset ${offset} → ${offsetWhileBlocked})`),
        invariant(`${mode.source}: recovered by replaying from version ${fromVersion}, registering exactly the feed of the replayed versions`, recovered,
          `offset ${after.offsetVersion}, latest ${latest}, blocked ${after.blocked?.type ?? 'no'}; feed ${feed.size} ids, registry ${registered.size}, missing ${missing.slice(0, 5).join(' ') || 'none'}, extra ${extra.slice(0, 5).join(' ') || 'none'}`),
      );
    }
    return { name, figures: { modes: detected }, invariants, taskQueues: [config.temporal.taskQueue], logFiles: [] };
  } finally {
    await b.stop();
  }
}
