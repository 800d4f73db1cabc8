import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { startDevServer, type DevServer } from '../../src/temporal/devServer';
import { searchAttributeFlags } from '../../src/temporal/searchAttributes';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/** A dev server of its own, which suggests continue-as-new after 40 history events. */
describe('a source workflow that continues as new', () => {
  let server: DevServer;
  let t: TestPipeline;
  const written: WrittenChange[] = [];

  beforeAll(async () => {
    server = await startDevServer({
      cliPath: process.env.TEMPORAL_CLI_PATH!,
      dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 40 },
      extraArgs: searchAttributeFlags(),
    });
    const config = testConfig({
      address: server.address,
      sources: [{ name: 'orders', table: 'upstream.orders' }],
      capture: { maxVersionsPerRange: 1 },
    });
    t = await startTestPipeline(config);
    const source = config.sources[0]!;
    written.push(...(await writeRandomTraffic(t.lakehouse, source, { commits: 12, maxOpsPerCommit: 10, idSpace: 200, seed: 42 })));
    await startSourceWorkflows(t.client, config);
    await captureUntilCaughtUp(t.client, config, 'orders');
    // A second burst after the first continue-as-new: the new run must pick up where the old one stopped.
    written.push(...(await writeRandomTraffic(t.lakehouse, source, { commits: 6, maxOpsPerCommit: 10, idSpace: 200, seed: 43 })));
    await captureUntilCaughtUp(t.client, config, 'orders');
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
    await server.stop();
  });

  it('continues as new at least once while capturing a long backlog', async () => {
    const handle = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
    const status = await handle.query(sourceStatusQuery);
    expect(status.continuedAsNewTimes).toBeGreaterThanOrEqual(1);
    const description = await handle.describe();
    expect(description.runId).not.toBe(description.raw.workflowExecutionInfo?.firstRunId);
  });

  it('carries its offset and totals into the new run without losing or repeating a change', async () => {
    const status = await t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders')).query(sourceStatusQuery);
    const { latestVersion } = await t.lakehouse.engine.describe('upstream.orders');
    expect(status.offsetVersion).toBe(latestVersion);
    expect(status.totals.registryRowsInserted).toBe(written.length);
    expect(status.totals.ranges).toBe(latestVersion + 1); // versions 0..latest, one per range
    const rows = await t.lakehouse.db.all<{ k: string }>(`SELECT uts_id || '|' || commit_version AS k FROM cdf.change_registry`);
    expect(new Set(rows.map((r) => r.k))).toEqual(new Set(written.map((w) => `${w.utsId}|${w.version}`)));
  });
});
