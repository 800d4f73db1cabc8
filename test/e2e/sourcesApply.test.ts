import { sourceWorkflowId } from '../../src/client/operations';
import type { Config } from '../../src/config/schema';
import { sourceStatusQuery } from '../../src/workflows/messages';
import { runCdf, writeConfigFile } from '../support/cli';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic } from '../support/traffic';

/**
 * `cdf sources apply`: the production way to start the source workflows (npm start is the demo),
 * as a real process against a worker on the dev server.
 */
describe('cdf sources apply', () => {
  let t: TestPipeline;
  const three = [
    { name: 'orders', table: 'upstream.orders' },
    { name: 'customers', table: 'upstream.customers' },
    { name: 'shipments', table: 'upstream.shipments' },
  ];
  const apply = (config: Config, ...args: string[]) => runCdf(['sources', 'apply', '--config', writeConfigFile(config), ...args]);
  const statusOf = async (config: Config, source: string) => (await t.client.workflow.getHandle(sourceWorkflowId(config, source)).describe()).status.name;
  const withSources = (names: string[]): Config => ({ ...t.config, sources: t.config.sources.filter((s) => names.includes(s.name)) });

  beforeAll(async () => {
    t = await startTestPipeline(testConfig({ sources: three }));
    for (const [index, source] of t.config.sources.entries()) await writeRandomTraffic(t.lakehouse, source, { commits: 2, maxOpsPerCommit: 5, idSpace: 50, seed: 61 + index });
  });

  afterAll(async () => {
    await terminateWorkflows(t.client, t.config);
    await t.stop();
  });

  it('with --dry-run prints a start for every source and starts nothing', async () => {
    const result = await apply(t.config, '--dry-run', '--json');
    expect(result.code).toBe(0);
    const output = JSON.parse(result.stdout);
    expect(output).toEqual(expect.objectContaining({ dryRun: true, applied: false }));
    expect(output.plan.start.map((s: { source: string }) => s.source)).toEqual(['orders', 'customers', 'shipments']);
    const listed = [];
    for await (const w of t.client.workflow.list({ query: `TaskQueue = "${t.config.temporal.taskQueue}"` })) listed.push(w.workflowId);
    expect(listed).toEqual([]);
  });

  it('starts a workflow per source, which captures its table', async () => {
    const result = await apply(t.config);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^start +${sourceWorkflowId(t.config, 'orders')} +orders: upstream.orders$`, 'm'));
    expect(result.stdout.trim().split('\n').at(-1)).toBe('applied');
    for (const source of three) expect(await statusOf(t.config, source.name)).toBe('RUNNING');
    const orders = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
    await expect(eventually(() => orders.query(sourceStatusQuery), (s) => s.offsetVersion === s.latestVersion && s.latestVersion !== null)).resolves.toBeTruthy();
  });

  it('applied again, changes nothing and says every source is running', async () => {
    const before = await t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders')).describe();
    const result = await apply(t.config);
    expect(result.code).toBe(0);
    expect(result.stdout.match(/^running /gm)).toHaveLength(3);
    expect(result.stdout.trim().split('\n').at(-1)).toBe('nothing to change');
    expect((await t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders')).describe()).runId).toBe(before.runId);
  });

  it('reports a running source the config no longer names, and leaves it running', async () => {
    // The list of running workflows is eventually consistent: a workflow started a moment ago may need a moment.
    const result = await eventually(() => apply(withSources(['orders', 'customers'])), (r) => /^removed /m.test(r.stdout));
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^removed +${sourceWorkflowId(t.config, 'shipments')} +still running, not in the config: left as it is`, 'm'));
    expect(result.stdout.trim().split('\n').at(-1)).toBe('nothing to change');
    expect(await statusOf(t.config, 'shipments')).toBe('RUNNING');
  });

  it('with --removed pause, pauses the workflow of the removed source, saying why', async () => {
    const result = await apply(withSources(['orders', 'customers']), '--removed', 'pause');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^pause +${sourceWorkflowId(t.config, 'shipments')} +not in the config \\(source shipments\\)$`, 'm'));
    const shipments = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'shipments'));
    const paused = await eventually(() => shipments.query(sourceStatusQuery), (s) => s.paused !== null);
    expect(paused.paused?.reason).toBe('removed from the config (cdf sources apply --removed pause)');
    expect(await statusOf(t.config, 'orders')).toBe('RUNNING');
  });

  it('with --removed terminate, ends the workflow of the removed source only', async () => {
    const result = await apply(withSources(['orders', 'customers']), '--removed', 'terminate');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^terminate +${sourceWorkflowId(t.config, 'shipments')} +not in the config \\(source shipments\\)$`, 'm'));
    expect(await statusOf(t.config, 'shipments')).toBe('TERMINATED');
    expect(await statusOf(t.config, 'orders')).toBe('RUNNING');
  });

  it('starts again a configured source whose workflow was terminated, saying how its last run ended', async () => {
    const result = await apply(t.config);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^start +${sourceWorkflowId(t.config, 'shipments')} +shipments: upstream.shipments \\(its last run ended terminated\\)$`, 'm'));
    expect(await statusOf(t.config, 'shipments')).toBe('RUNNING');
  });

  it('refuses an unknown --removed action as bad usage (exit 2), naming the choices', async () => {
    const result = await apply(t.config, '--removed', 'delete');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/argument 'delete' is invalid\. Allowed choices are report, terminate, pause/);
  });
});

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
