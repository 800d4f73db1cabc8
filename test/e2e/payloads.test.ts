import { captureUntilCaughtUp, fanInWorkflowId, runFanIn, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { ensureDemoSourceTable } from '../../src/demo/upstream';
import type { FanInSummary } from '../../src/workflows/fanIn';
import { fetchHistory, payloadSizes } from '../support/history';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';

const CHANGED_IDS = 100_000;
const LIMIT_BYTES = 64 * 1024;

/** The data stays in the warehouse: 100,000 changed ids leave no trace in any Temporal payload. */
describe('a fan-in over 100,000 changed ids', () => {
  let t: TestPipeline;
  let summary: FanInSummary;
  let fanInId: string;

  beforeAll(async () => {
    t = await startTestPipeline(
      testConfig({
        sources: [{ name: 'orders', table: 'upstream.orders', extraColumns: ['status'] }],
        fanIn: { batchSize: 1000, concurrency: 8 },
        jobs: { maxConcurrentRuns: 8 },
      }),
    );
    const source = t.config.sources[0]!;
    await ensureDemoSourceTable(t.lakehouse, source);
    await t.lakehouse.writeUpstreamCommit(source.table, { insert: CHANGED_IDS, idSpace: CHANGED_IDS * 2, seed: 1 });
    await startSourceWorkflows(t.client, t.config);
    await captureUntilCaughtUp(t.client, t.config, source.name);
    fanInId = fanInWorkflowId(t.config);
    summary = await runFanIn(t.client, t.config);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('dispatches all of them in 100 batches that all succeed', () => {
    expect(summary).toEqual(expect.objectContaining({ changedIds: CHANGED_IDS, batches: 100, batchesSucceeded: 100, committed: true }));
  });

  it('keeps every payload of both workflow histories under 64 KB', async () => {
    for (const workflowId of [sourceWorkflowId(t.config, 'orders'), fanInId]) {
      const sizes = payloadSizes(await fetchHistory(t.client, workflowId));
      expect(sizes.length).toBeGreaterThan(10); // the histories really were read
      expect(Math.max(...sizes)).toBeLessThan(LIMIT_BYTES);
    }
  });

  it('returns a result far smaller than the ids it dispatched', () => {
    expect(Buffer.byteLength(JSON.stringify(summary))).toBeLessThan(LIMIT_BYTES);
    expect(summary.batchResults.length).toBeLessThanOrEqual(20);
    expect(summary.batchResultsOmitted).toBe(summary.batches - summary.batchResults.length);
  });
});
