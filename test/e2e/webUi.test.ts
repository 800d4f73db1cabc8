import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { captureUntilCaughtUp, sourceWorkflowId, startSourceWorkflows } from '../../src/client/operations';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/devServer';
import { searchAttributeFlags } from '../../src/temporal/searchAttributes';
import { sourceStatusQuery, type SourceStatus } from '../../src/workflows/messages';
import { startTestPipeline, terminateWorkflows, testConfig, type TestPipeline } from '../support/pipeline';
import { writeRandomTraffic, type WrittenChange } from '../support/traffic';

/**
 * What an operator sees and does in the Temporal Web UI (2.42, served by the dev server): the
 * source workflows are found by their search attribute, show their summary, and take a replay
 * signal from the UI's Signal dialog. Runs its own dev server, because the shared one is headless.
 * Needs /usr/bin/chromium (`tsx scripts/setup-browser.ts` installs it; `npm test` does so first).
 */

const ARTIFACTS = join(__dirname, '..', '..', 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps calling Google services, which fail here.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];
const UI_TIMEOUT_MS = 30_000;

describe('the Temporal Web UI on the pipeline', () => {
  let server: DevServer;
  let t: TestPipeline;
  let written: WrittenChange[];
  let browser: BrowserContext;
  let page: Page;
  let profileDir: string;
  const ui = () => server.uiUrl!;
  const ordersId = () => sourceWorkflowId(t.config, 'orders');
  const status = (): Promise<SourceStatus> => t.client.workflow.getHandle(ordersId()).query(sourceStatusQuery);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run \`npx tsx scripts/setup-browser.ts\` (npm test does it first)`);
    server = await startDevServer({
      cliPath: process.env.TEMPORAL_CLI_PATH!,
      uiPort: await freePort(),
      extraArgs: searchAttributeFlags(),
      logFile: join(ARTIFACTS, 'webui-dev-server.log'),
    });
    await waitForHttp(ui(), 60_000); // start-dev does not wait for its UI listener
    t = await startTestPipeline(
      testConfig({ address: server.address, sources: [{ name: 'orders', table: 'upstream.orders' }, { name: 'customers', table: 'upstream.customers' }] }),
    );
    written = await writeRandomTraffic(t.lakehouse, t.config.sources[0]!, { commits: 6, maxOpsPerCommit: 10, idSpace: 200, seed: 31 });
    await writeRandomTraffic(t.lakehouse, t.config.sources[1]!, { commits: 3, maxOpsPerCommit: 10, idSpace: 200, seed: 32 });
    await startSourceWorkflows(t.client, t.config);
    for (const source of t.config.sources) await captureUntilCaughtUp(t.client, t.config, source.name);

    profileDir = mkdtempSync(join(tmpdir(), 'cdf-chromium-'));
    browser = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 900 } });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(UI_TIMEOUT_MS);
  });

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    if (t) {
      await terminateWorkflows(t.client, t.config);
      await t.stop();
    }
    await server?.stop();
  });

  it('lists the orders source workflow, and not the customers one, for the query CdfSource="orders"', async () => {
    await debugOnFailure(page, 'ui-workflow-list', async () => {
      await page.goto(`${ui()}/namespaces/default/workflows?query=${encodeURIComponent('CdfSource="orders"')}`);
      await page.getByRole('link', { name: ordersId(), exact: true }).waitFor();
      await page.getByText('1 Workflow', { exact: true }).waitFor(); // the count of the filtered list
      expect(await page.getByText(sourceWorkflowId(t.config, 'customers')).count()).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, 'ui-workflow-list.png') });
    });
  });

  it('shows the source workflow with its summary', async () => {
    await debugOnFailure(page, 'ui-source-workflow', async () => {
      await openWorkflow(page, ui(), ordersId());
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      // The UI renders the summary as markdown inside an iframe.
      await page.frameLocator('iframe[title="output"]').first().getByText(`CDF capture of ${t.config.sources[0]!.table}`, { exact: true }).waitFor();
      await page.screenshot({ path: join(ARTIFACTS, 'ui-source-workflow.png') });
    });
  });

  it("shows the source's state, offset and lag in the Current Details panel of its page", async () => {
    const latest = Math.max(...written.map((change) => change.version));
    await debugOnFailure(page, 'ui-source-current-details', async () => {
      await openWorkflow(page, ui(), ordersId());
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      await page.getByText('Current Details', { exact: true }).waitFor();
      // Rendered from the workflow's markdown in the second output iframe (the first is the summary).
      const panel = page.frameLocator('iframe[title="output"]').nth(1);
      await panel.getByText('orders: capturing', { exact: true }).waitFor();
      await panel.getByRole('columnheader', { name: 'lag' }).waitFor();
      expect(await panel.getByRole('row').nth(1).getByRole('cell').allTextContents()).toEqual([String(latest), String(latest), 'caught up', expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/)]);
      await page.screenshot({ path: join(ARTIFACTS, 'ui-source-current-details.png') });
    });
  });

  it('replays from version 1 when the replayFromVersion signal is sent from the Signal dialog', async () => {
    const before = await status();
    const latest = Math.max(...written.map((change) => change.version));
    expect(before).toEqual(expect.objectContaining({ offsetVersion: latest, lastRejected: null, pendingReplay: null }));

    await debugOnFailure(page, 'ui-signal-dialog', async () => {
      await openWorkflow(page, ui(), ordersId());
      await page.getByRole('button', { name: 'More Actions' }).click();
      await page.getByRole('menuitem', { name: 'Send a Signal' }).click();
      const dialog = page.getByRole('dialog').filter({ hasText: 'Send a Signal' });
      await dialog.waitFor();
      // The signal names in the dropdown come from the workflow's handler metadata.
      // The dropdown's button has no accessible name of its own (its label points at a hidden input).
      await dialog.getByTestId('signal-select-button').click();
      await dialog.getByRole('option').filter({ has: page.getByText('replayFromVersion', { exact: true }) }).click();
      const data = dialog.locator('[role="textbox"][contenteditable="true"]'); // a CodeMirror JSON editor
      await data.fill('{"fromVersion": 1}');
      expect(JSON.parse((await data.textContent()) ?? '')).toEqual({ fromVersion: 1 });
      const submit = dialog.getByRole('button', { name: 'Submit' });
      await expectEnabled(submit);
      await page.screenshot({ path: join(ARTIFACTS, 'ui-signal-dialog.png') });
      await submit.click();
      await dialog.waitFor({ state: 'hidden' });
    });

    // The signal wakes the workflow, which applies the replay before its next cycle.
    const applied = await eventually(async () => {
      const now = await status();
      return now.lastRejected !== null || now.pendingReplay !== null || now.totals.ranges > before.totals.ranges ? now : undefined;
    }, 30_000);
    expect(applied.lastRejected).toBeNull();
    // What the dialog sent, as the history recorded it: one signal, one JSON payload.
    const signals = ((await t.client.workflow.getHandle(ordersId()).fetchHistory()).events ?? [])
      .map((event) => event.workflowExecutionSignaledEventAttributes)
      .filter((signaled) => signaled?.signalName === 'replayFromVersion');
    expect(signals).toHaveLength(1);
    expect(signals[0]!.input?.payloads?.map((payload) => defaultPayloadConverter.fromPayload(payload))).toEqual([{ fromVersion: 1 }]);
    const report = await captureUntilCaughtUp(t.client, t.config, 'orders');
    expect(report).toEqual(expect.objectContaining({ blocked: null, offsetVersion: latest }));

    // Oracle from what was written: versions 1..latest captured again, once, in ranges of
    // maxVersionsPerRange; each range counts its registry rows, one per id and version (an update's
    // two images are one row); the registry gains nothing.
    const after = await status();
    const rereadChanges = new Set(written.filter((change) => change.version >= 1).map((change) => `${change.utsId}|${change.version}`)).size;
    expect(after.lastRejected).toBeNull();
    expect(after.pendingReplay).toBeNull();
    expect(after.totals.ranges - before.totals.ranges).toBe(Math.ceil(latest / t.config.capture.maxVersionsPerRange));
    expect(after.totals.changesRead - before.totals.changesRead).toBe(rereadChanges);
    expect(after.totals.registryRowsInserted).toBe(before.totals.registryRowsInserted);
  });
});

/** Opens a workflow's page; the UI redirects a bare workflow id to its latest run. */
async function openWorkflow(page: Page, ui: string, workflowId: string): Promise<void> {
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
  await page.getByRole('heading', { name: workflowId }).first().waitFor();
}

/** On failure, keeps the page's HTML and a screenshot in test-artifacts/ next to the error. */
async function debugOnFailure(page: Page, name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    writeFileSync(join(ARTIFACTS, `${name}.failure.html`), await page.content().catch(() => '(no page content)'));
    await page.screenshot({ path: join(ARTIFACTS, `${name}.failure.png`), fullPage: true }).catch(() => undefined);
    throw new Error(`${(error as Error).message}\n(page at ${page.url()}; HTML and screenshot in test-artifacts/${name}.failure.*)`);
  }
}

async function expectEnabled(locator: ReturnType<Page['locator']>): Promise<void> {
  await eventually(async () => ((await locator.isEnabled()) ? true : undefined), UI_TIMEOUT_MS);
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  await eventually(() => fetch(url).then((response) => (response.ok ? true : undefined), () => undefined), timeoutMs, `${url} did not answer`);
}

async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what = 'condition not met'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
