import type { SourceConfig } from '../../src/config/schema';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import type { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';

/** Small seeded PRNG (mulberry32), so a failing run can be reproduced from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface WrittenChange {
  source: string;
  utsId: string;
  version: number;
  op: 'insert' | 'update' | 'delete';
}

/**
 * Writes random inserts, updates and deletes with ids chosen here, and returns what was written:
 * the oracle the tests compare the pipeline against, independent of the pipeline's own SQL.
 */
export async function writeRandomTraffic(
  lakehouse: LocalLakehouse,
  source: SourceConfig,
  options: { commits: number; maxOpsPerCommit: number; idSpace: number; seed: number },
): Promise<WrittenChange[]> {
  await ensureDemoSourceTable(lakehouse, source);
  const random = seededRandom(options.seed);
  // Start from what the table holds, so a second burst continues the first one.
  const live = new Set((await lakehouse.db.all<{ k: string }>(`SELECT ${source.keyColumn} AS k FROM ${source.table}`)).map((r) => r.k));
  const written: WrittenChange[] = [];
  const pick = (from: string[], n: number) => {
    const chosen = new Set<string>();
    while (chosen.size < Math.min(n, from.length)) chosen.add(from[Math.floor(random() * from.length)]!);
    return [...chosen];
  };
  for (let c = 0; c < options.commits; c++) {
    const existing = [...live];
    const deletes = pick(existing, Math.floor(random() * options.maxOpsPerCommit * 0.3));
    const updates = pick(existing.filter((id) => !deletes.includes(id)), Math.floor(random() * options.maxOpsPerCommit * 0.5));
    const free = Array.from({ length: options.idSpace }, (_, i) => `u${String(i).padStart(9, '0')}`).filter((id) => !live.has(id));
    const inserts = pick(free, 1 + Math.floor(random() * options.maxOpsPerCommit));
    const commit = await lakehouse.writeUpstreamCommit(source.table, { insert: inserts, update: updates, delete: deletes });
    for (const id of deletes) (live.delete(id), written.push({ source: source.name, utsId: id, version: commit.version, op: 'delete' }));
    for (const id of updates) written.push({ source: source.name, utsId: id, version: commit.version, op: 'update' });
    for (const id of inserts) (live.add(id), written.push({ source: source.name, utsId: id, version: commit.version, op: 'insert' }));
  }
  return written;
}
