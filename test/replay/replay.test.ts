import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { installQuietRuntime } from '../support/pipeline';
import { HISTORIES_DIR } from './record';

/** Recorded histories of both workflows must replay against today's code: a change that breaks them breaks running workflows. */
describe('recorded workflow histories', () => {
  const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

  it('include at least one history of each workflow type', () => {
    expect(files.some((f) => f.startsWith('sourceIngest-'))).toBe(true);
    expect(files.some((f) => f.startsWith('fanIn-'))).toBe(true);
  });

  it.each(files)('%s replays without a determinism violation', async (file) => {
    installQuietRuntime();
    const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')));
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: process.env.CDF_TEST_WORKFLOW_BUNDLE! } }, history, file.replace('.json', '')),
    ).resolves.toBeUndefined();
  });
});
