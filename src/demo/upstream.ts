import type { SourceConfig } from '../config/schema';
import type { ColumnSpec, CommitResult } from '../lakehouse/local/deltaEngine';
import type { LocalLakehouse } from '../lakehouse/local/localLakehouse';

export interface TrafficPlan {
  /** Rows inserted by the first commit of a new table. */
  seedRows: number;
  commits: number;
  insertsPerCommit: number;
  updatesPerCommit: number;
  deletesPerCommit: number;
  /** Ids are drawn from u000000000 … u(idSpace-1), shared by all sources. */
  idSpace: number;
  seed: number;
}

export const DEMO_TRAFFIC: TrafficPlan = {
  seedRows: 1500,
  commits: 4,
  insertsPerCommit: 60,
  updatesPerCommit: 120,
  deletesPerCommit: 25,
  idSpace: 5000,
  seed: 7,
};

/** Creates a source table in the demo shape (key, status, amount, updated_at) if it does not exist. */
export async function ensureDemoSourceTable(lakehouse: LocalLakehouse, source: SourceConfig): Promise<void> {
  const textColumns = [...new Set(['status', ...source.extraColumns])].filter((name) => !['amount', 'updated_at', source.keyColumn].includes(name));
  const columns: ColumnSpec[] = [
    { name: source.keyColumn, type: 'VARCHAR' },
    ...textColumns.map((name): ColumnSpec => ({ name, type: 'VARCHAR' })),
    { name: 'amount', type: 'DOUBLE' },
    { name: 'updated_at', type: 'TIMESTAMP' },
  ];
  await lakehouse.engine.createTable(source.table, columns, { keyColumn: source.keyColumn });
}

/**
 * Writes upstream traffic to one source: a seed commit if the table is empty, then `commits`
 * commits of random inserts, updates and deletes. Returns what each commit did; an aborted
 * `signal` stops it between commits.
 */
export async function writeTraffic(
  lakehouse: LocalLakehouse,
  source: SourceConfig,
  plan: TrafficPlan,
  onCommit: (commit: CommitResult) => void = () => undefined,
  signal?: AbortSignal,
): Promise<CommitResult[]> {
  const commits: CommitResult[] = [];
  const { latestVersion } = await lakehouse.engine.describe(source.table);
  if (latestVersion === 0 && plan.seedRows > 0) {
    commits.push(await lakehouse.writeUpstreamCommit(source.table, { insert: plan.seedRows, idSpace: plan.idSpace, seed: plan.seed }));
    onCommit(commits[commits.length - 1]!);
  }
  for (let i = 0; i < plan.commits && !signal?.aborted; i++) {
    const commit = await lakehouse.writeUpstreamCommit(source.table, {
      insert: plan.insertsPerCommit,
      update: plan.updatesPerCommit,
      delete: plan.deletesPerCommit,
      idSpace: plan.idSpace,
      seed: plan.seed * 1000 + latestVersion + i,
    });
    commits.push(commit);
    onCommit(commit);
  }
  return commits;
}
