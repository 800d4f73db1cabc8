import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { runCdf, writeConfigFile } from '../support/cli';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/** `bin/cdf` as a real process against the same dev server, task queue and prefix as a running pipeline. */
describe('the cdf CLI', () => {
  let t: TestPipeline;
  let configFile: string;
  const cdf = (...args: string[]) => runCdf([...args, '--config', configFile]);
  const status = () => t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders')).query(sourceStatusQuery);

  beforeAll(async () => {
    t = await startTestPipeline(testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }] }));
    for (const [index, source] of t.config.sources.entries()) {
      await writeRandomTraffic(t.lakehouse, source, { commits: 4, maxOpsPerCommit: 8, idSpace: 100, seed: 31 + index });
    }
    await startSourceWorkflows(t.client, t.config);
    for (const source of t.config.sources) await captureUntilCaughtUp(t.client, t.config, source.name);
    configFile = writeConfigFile(t.config);
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('`status --json` prints the status query of every source', async () => {
    const result = await cdf('status', '--json');
    expect(result.code).toBe(0);
    const rows = JSON.parse(result.stdout);
    expect(rows.map((r: { source: string }) => r.source)).toEqual(['orders', 'customers']);
    expect(rows[0]).toEqual(expect.objectContaining({ running: true, workflowId: sourceWorkflowId(t.config, 'orders'), ...pick(await status(), 'offsetVersion', 'latestVersion', 'lagVersions') }));
    expect(rows[0].offsetVersion).toBe(4);
  });

  it('`status` prints one table line per source with its state and offset', async () => {
    const result = await cdf('status');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^SOURCE +STATE +OFFSET +LATEST/);
    expect(result.stdout).toMatch(/^orders +capturing +4 +4 +0 /m);
    expect(result.stdout).toMatch(/^customers +capturing +4 +4 +0 /m);
  });

  it('refuses a replay past the latest version with the workflow\'s reason, exit 1, and the offset stays', async () => {
    const result = await cdf('replay', 'orders', '--from', '999');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/replay of orders from version 999 refused by .*: .*past the latest version 4/);
    const after = await status();
    expect(after.offsetVersion).toBe(4);
    expect(after.pendingReplay).toBeNull();
  });

  it('rejects `replay --from abc` as bad usage (exit 2) naming the option, the value and the fix', async () => {
    // No server is needed to refuse it: an unreachable address would otherwise fail with exit 1.
    const result = await runCdf(['replay', 'orders', '--from', 'abc', '--config', configFile], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("option '--from <version>' argument 'abc' is invalid");
    expect(result.stderr).toContain('must be a whole number');
  });

  it('replays from a valid version and the source captures back to the latest version', async () => {
    const result = await cdf('replay', 'orders', '--from', '2', '--reason', 'cli test', '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ source: 'orders', workflowId: sourceWorkflowId(t.config, 'orders'), fromVersion: 2, previousOffset: 4, redispatch: false });
    const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(report.offsetVersion).toBe(4);
  });

  it('pause and resume show in status', async () => {
    const paused = await cdf('pause', 'orders', '--reason', 'maintenance window');
    expect(paused.code).toBe(0);
    const whilePaused = await cdf('status', 'orders', '--json');
    expect(JSON.parse(whilePaused.stdout).paused).toEqual(expect.objectContaining({ reason: 'maintenance window' }));
    expect((await cdf('status')).stdout).toMatch(/^orders +paused .*paused: maintenance window$/m);

    const resumed = await cdf('resume', 'orders');
    expect(resumed.code).toBe(0);
    expect(JSON.parse((await cdf('status', 'orders', '--json')).stdout).paused).toBeNull();
  });

  it.each([
    ['status', ['status', 'nope']],
    ['replay', ['replay', 'nope', '--from', '1']],
    ['pause', ['pause', 'nope']],
  ])('`%s` of a source not in the config exits 1 naming the known sources', async (_command, args) => {
    const result = await cdf(...args);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('source nope is not in the config (known: orders, customers)');
  });

  it('`fan-in --wait` runs a fan-in and prints its summary', async () => {
    const result = await cdf('fan-in', '--wait', '--json');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toEqual(expect.objectContaining({ committed: true, batchesParked: 0 }));
    expect(summary.changedIds).toBeGreaterThan(0);
  });

  it('exits 1 with the address and the fix when Temporal cannot be reached', async () => {
    const result = await runCdf(['status', '--config', configFile], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  });
});

function pick<T extends object, K extends keyof T>(value: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, value[k]])) as Pick<T, K>;
}
