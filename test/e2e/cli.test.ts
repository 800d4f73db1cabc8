import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { replayFromVersionSignal, replayFromVersionUpdate, sourceStatusQuery } from '../../src/workflows/messages';
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
    expect(JSON.parse(result.stdout)).toEqual({ source: 'orders', workflowId: sourceWorkflowId(t.config, 'orders'), fromVersion: 2, requestedFromVersion: 2, previousOffset: 4, redispatch: false, redispatchFromVersion: null, redispatchMarked: false, requestsMerged: 1, applied: true });
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

  it('`replay` of a paused source says the replay waits for resume, and resume applies it', async () => {
    await cdf('pause', 'orders', '--reason', 'maintenance window');
    const result = await cdf('replay', 'orders', '--from', '3');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/replay from version 3 accepted \(offset 4\), but the source is paused \(maintenance window\): it is applied when you resume it \(`cdf resume orders`\)/);
    expect((await status()).pendingReplay).toEqual(expect.objectContaining({ fromVersion: 3 }));
    expect((await cdf('resume', 'orders')).stdout).toMatch(/orders: resumed; a capture cycle starts now/);
    expect((await captureUntilCaughtUp(t.client, t.config, 'orders')).offsetVersion).toBe(4);
    expect((await status()).pendingReplay).toBeNull();
  });

  it('`pause` of a paused source says it already was, since when, and the reason it now has', async () => {
    await cdf('pause', 'orders', '--reason', 'first');
    const since = (await status()).paused!.since;
    const again = await cdf('pause', 'orders', '--reason', 'second');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`orders: already paused since ${since} (first); the reason is now "second"`);
    expect((await status()).paused).toEqual({ reason: 'second', since });
    await cdf('resume', 'orders');
  });

  it('`resume` of a source that is not paused says there is nothing to resume', async () => {
    const result = await cdf('resume', 'orders', '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(expect.objectContaining({ paused: false, wasPaused: false }));
    expect((await cdf('resume', 'orders')).stdout).toMatch(/orders: not paused, nothing to resume/);
  });

  it('`status` shows a refused replay signal with its time, until a replay is applied', async () => {
    const handle = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
    await handle.signal(replayFromVersionSignal, { fromVersion: -1 });
    const rejected = await waitFor(async () => (await status()).lastRejected);
    expect((await cdf('status')).stdout).toContain(`last rejected replayFromVersion at ${rejected.at}: fromVersion must be 0 or more, got -1`);
    await cdf('replay', 'orders', '--from', '4');
    expect((await status()).lastRejected).toBeNull();
  });

  it('refuses an invalid replay update as a non-retryable InvalidRequest failure', async () => {
    const handle = t.client.workflow.getHandle(sourceWorkflowId(t.config, 'orders'));
    const error = await handle.executeUpdate(replayFromVersionUpdate, { args: [{ fromVersion: 'x' as unknown as number }] }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect((error as WorkflowUpdateFailedError).cause).toEqual(expect.objectContaining({ type: 'InvalidRequest', nonRetryable: true, message: expect.stringContaining('fromVersion must be a whole number') }));
  });

  it.each([
    ['an operation that fails', ['replay', 'nope', '--from', '1'], 1, 'OperationFailedError', /source nope is not in the config/],
    ['bad usage', ['replay', 'orders', '--from', 'abc'], 2, 'UsageError', /option '--from <version>' argument 'abc' is invalid/],
  ])('with --json, prints %s as one JSON object on stderr with its exit code', async (_case, args, exitCode, type, message) => {
    const result = await cdf(...args, '--json');
    expect(result.code).toBe(exitCode);
    expect(result.stdout).toBe('');
    const error = JSON.parse(result.stderr);
    expect(error).toEqual({ error: { type, message: expect.stringMatching(message) }, exitCode });
  });

  it.each(['status', 'replay', 'pause', 'resume', 'fan-in', 'batches list', 'batches retry', 'batches abandon', 'sources apply', 'schedules apply'])(
    '`%s --help` lists --json and --config',
    async (command) => {
      const result = await cdf(...command.split(' '), '--help');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/--json +print machine-readable JSON/);
      expect(result.stdout).toMatch(/--config <file>/);
    },
  );

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

  it('`status` of a source whose workflow was terminated says not running and how it ended', async () => {
    await t.client.workflow.getHandle(sourceWorkflowId(t.config, 'customers')).terminate('cli test');
    const all = await cdf('status');
    expect(all.stdout).toMatch(/^customers +not running .*: terminated at \d{4}-\d\d-\d\dT/m);
    const one = await cdf('status', 'customers');
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/the workflow of source customers \(.*\) is not running \(terminated at .*\): start it again with `cdf sources apply`/);
  });

  it('exits 1 with the address and the fix when Temporal cannot be reached', async () => {
    const result = await runCdf(['status', '--config', configFile], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to Temporal at 127\.0\.0\.1:1 \(.*\): start it \(npm start runs a dev server\) or set temporal.address/);
  });
});

async function waitFor<T>(read: () => Promise<T | null | undefined>): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const value = await read();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('timed out');
}

function pick<T extends object, K extends keyof T>(value: T, ...keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, value[k]])) as Pick<T, K>;
}
