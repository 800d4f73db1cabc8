import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../src/client/operations';
import type { SourceConfig } from '../src/config/schema';
import { replayFromVersionUpdate, type CycleReport } from '../src/workflows/messages';
import { invariant, scenarioConfig, startInProcessPipeline, type InProcessPipeline, type Invariant, type ScenarioContext, type ScenarioResult } from './context';

interface Mode {
  source: string;
  /** Breaks the table; returns the version to replay from once repaired. */
  break(t: InProcessPipeline, table: string, offset: number): Promise<void>;
  /** The operator's repair (if any) and the version the replay starts from. */
  repair(t: InProcessPipeline, table: string, offset: number): Promise<number>;
  expected: RegExp;
}

const commitSome = (t: InProcessPipeline, table: string, n = 3) =>
  (async () => {
    for (let i = 0; i < n; i++) await t.lakehouse.writeUpstreamCommit(table, { insert: 5, update: 3, delete: 1, idSpace: 2_000 });
  })();

/** The four ways a Delta table breaks an incremental reader, each with the recovery its remedy names. */
const MODES: Mode[] = [
  {
    source: 'vacuumed',
    async break(t, table, offset) {
      await commitSome(t, table);
      await t.lakehouse.engine.vacuum(table, offset + 3);
    },
    repair: async (_t, _table, offset) => offset + 3,
    expected: /^DELTA_FILE_NOT_FOUND_DETAILED$/,
  },
  {
    source: 'cdfoff',
    async break(t, table) {
      await t.lakehouse.engine.setChangeDataFeed(table, false);
      await commitSome(t, table, 1);
      await t.lakehouse.engine.setChangeDataFeed(table, true);
      await commitSome(t, table, 2);
    },
    repair: async (t, table) => (await t.lakehouse.engine.describe(table)).latestVersion - 1,
    expected: /^DELTA_MISSING_CHANGE_DATA$|^CDF_INCREMENTAL_READ_BROKEN$/,
  },
  {
    source: 'replaced',
    async break(t, table) {
      await t.lakehouse.engine.replaceTable(table);
      await commitSome(t, table, 2);
    },
    repair: async (t, table) => (await t.lakehouse.engine.describe(table)).latestVersion - 1,
    expected: /^CDF_TABLE_REPLACED$/,
  },
  {
    source: 'dropped',
    async break(t, table) {
      await commitSome(t, table, 1);
      await t.lakehouse.engine.dropTable(table);
    },
    async repair(t, table, offset) {
      await t.lakehouse.engine.undropTable(table);
      return offset + 1;
    },
    expected: /^TABLE_OR_VIEW_NOT_FOUND$/,
  },
];

/**
 * Vacuumed versions past the offset, CDF off for a range, a replaced table (new id) and a dropped
 * table: each must be detected, put its source in the blocked state with the remedy, leave the
 * offset where it was, and recover through the path the remedy names.
 */
export async function failureModesScenario(ctx: ScenarioContext): Promise<ScenarioResult> {
  const sources: Pick<SourceConfig, 'name' | 'table'>[] = MODES.map((m) => ({ name: m.source, table: `upstream.${m.source}` }));
  const config = scenarioConfig(ctx, 'failuremodes', { sources, capture: { maxVersionsPerRange: 2, pollIntervalSeconds: 3600 } });
  const t = await startInProcessPipeline(ctx, config);
  const invariants: Invariant[] = [];
  const detected: Record<string, { type: string | undefined; remedy: string | undefined; recovered: boolean }> = {};
  try {
    for (const s of sources) await commitSome(t, s.table);
    await startSourceWorkflows(t.client, config);
    for (const s of sources) await captureUntilCaughtUp(t.client, config, s.name);
    for (const mode of MODES) {
      const table = `upstream.${mode.source}`;
      const offset = (await t.lakehouse.readOffset(mode.source))!.lastVersion;
      await mode.break(t, table, offset);
      const blocked: CycleReport = await captureUntilCaughtUp(t.client, config, mode.source);
      const offsetWhileBlocked = (await t.lakehouse.readOffset(mode.source))!.lastVersion;
      ctx.progress(`failure modes: ${mode.source}: blocked with ${blocked.blocked?.type ?? 'nothing'}`);
      const fromVersion = await mode.repair(t, table, offset);
      await t.client.workflow.getHandle(sourceWorkflowId(config, mode.source)).executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion, reason: `recovery after ${mode.source}` }] });
      const after = await captureUntilCaughtUp(t.client, config, mode.source);
      const latest = (await t.lakehouse.engine.describe(table)).latestVersion;
      const registered = await t.lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry WHERE source = ? AND commit_version >= ?`, [mode.source, fromVersion]);
      const recovered = after.blocked === null && after.offsetVersion === latest && Number(registered[0]!.n) > 0;
      detected[mode.source] = { type: blocked.blocked?.type, remedy: blocked.blocked?.remedy, recovered };
      invariants.push(
        invariant(`${mode.source}: detected, blocked with its remedy, offset unmoved`, mode.expected.test(blocked.blocked?.type ?? '') && Boolean(blocked.blocked?.remedy) && offsetWhileBlocked === offset,
          `${blocked.blocked?.type}: ${blocked.blocked?.remedy} (offset ${offset} → ${offsetWhileBlocked})`),
        invariant(`${mode.source}: recovered by replaying from version ${fromVersion}`, recovered, `offset ${after.offsetVersion}, latest ${latest}, ${registered[0]!.n} registry rows from the replayed versions`),
      );
    }
    return { name: 'failureModes', figures: { modes: detected }, invariants, taskQueues: [config.temporal.taskQueue], logFiles: [] };
  } finally {
    await t.stop();
  }
}
