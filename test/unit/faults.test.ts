import { parseConfig } from '../../src/config/load';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import { withJobFaults, withLakehouseFaults } from '../../src/faults/faultyAdapters';
import { FaultInjector } from '../../src/faults/injector';
import type { JobLauncher, LaunchRequest } from '../../src/jobs/port';
import { classifyLakehouseError } from '../../src/lakehouse/errors';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';

const config = parseConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
const orders = config.sources[0]!;

/** An injector that gives only `kind`, every time. */
function always(kind: 'sqlConflict' | 'sqlDroppedConnection' | 'sqlPermissionDenied' | 'jobsRateLimited' | 'jobsServerError'): FaultInjector {
  const faults = new FaultInjector(config.faults);
  faults.rates[kind] = 1;
  return faults;
}

async function lakehouseWithOneCommit(): Promise<LocalLakehouse> {
  const lakehouse = await LocalLakehouse.open(':memory:', config.tables);
  await lakehouse.ensurePipelineTables();
  await ensureDemoSourceTable(lakehouse, orders);
  await lakehouse.writeUpstreamCommit(orders.table, { insert: ['u1', 'u2'] });
  return lakehouse;
}

const registryRows = async (lakehouse: LocalLakehouse) => Number((await lakehouse.db.all<{ n: bigint }>(`SELECT count(*) AS n FROM cdf.change_registry`))[0]!.n);

describe('fault injection at the adapter boundary', () => {
  it('injects nothing with the default config', () => {
    expect(new FaultInjector(config.faults).enabled).toBe(false);
  });

  it('throws a Delta write conflict that classifies as transient, before the statement runs', async () => {
    const lakehouse = await lakehouseWithOneCommit();
    const faulty = withLakehouseFaults(lakehouse, always('sqlConflict'));
    const error = await faulty.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 1 }, 'table-id').catch((e: Error) => e);
    expect(classifyLakehouseError(error)).toEqual(expect.objectContaining({ kind: 'transient', type: 'DELTA_CONCURRENT_APPEND' }));
    expect(await registryRows(lakehouse)).toBe(0);
    await lakehouse.close();
  });

  it('throws a dropped connection that classifies as transient, and a retry of the write adds nothing twice', async () => {
    const lakehouse = await lakehouseWithOneCommit();
    const faults = always('sqlDroppedConnection');
    const faulty = withLakehouseFaults(lakehouse, faults);
    for (let i = 0; i < 6; i++) {
      const error = await faulty.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 1 }, 'table-id').catch((e: Error) => e);
      expect(classifyLakehouseError(error)).toEqual(expect.objectContaining({ kind: 'transient', type: 'CONNECTION_LOST' }));
    }
    faults.rates.sqlDroppedConnection = 0;
    await faulty.appendRangeToRegistry(orders, { fromVersion: 1, toVersion: 1 }, 'table-id');
    expect(await registryRows(lakehouse)).toBe(2);
    expect(faults.counts.sqlDroppedConnection).toBe(6);
    await lakehouse.close();
  });

  it('throws a permission error that classifies as permanent with a remedy', async () => {
    const lakehouse = await lakehouseWithOneCommit();
    const error = await withLakehouseFaults(lakehouse, always('sqlPermissionDenied')).describeSource(orders).catch((e: Error) => e);
    expect(classifyLakehouseError(error)).toEqual(expect.objectContaining({ kind: 'permanent', type: 'INSUFFICIENT_PERMISSIONS', remedy: expect.stringContaining('grant SELECT') }));
    await lakehouse.close();
  });

  it('answers a launch with 429 or 503 as transient errors, after which the same token finds the same run', async () => {
    const runs = new Map<string, string>();
    const launcher: JobLauncher = {
      async launch(request: LaunchRequest) {
        const known = runs.get(request.idempotencyToken);
        if (!runs.has(request.idempotencyToken)) runs.set(request.idempotencyToken, `run-${runs.size + 1}`);
        return { runId: runs.get(request.idempotencyToken)!, runPageUrl: '', reused: Boolean(known) };
      },
      getRun: async () => ({ runId: 'run-1', lifeCycleState: 'TERMINATED', resultState: 'SUCCESS', stateMessage: '', runPageUrl: '' }),
      cancel: async () => undefined,
      close: async () => undefined,
    };
    const request: LaunchRequest = { idempotencyToken: 'k-b1-a1', runKey: 'k', batchNumber: 1, attempt: 1, batchTable: 'cdf.dispatch_batches' };
    for (const kind of ['jobsRateLimited', 'jobsServerError'] as const) {
      const error = await withJobFaults(launcher, always(kind)).launch(request).catch((e: Error) => e);
      expect(classifyLakehouseError(error).kind).toBe('transient');
    }
    expect((await launcher.launch(request)).runId).toBe('run-1');
    expect(runs.size).toBe(1);
  });
});
