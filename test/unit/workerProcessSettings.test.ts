import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WORKER_ENV, WORKER_NODE_FLAGS } from '../../src/workerProcessSettings';

const scripts = (JSON.parse(readFileSync(resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('worker processes start with the worker process settings', () => {
  it.each(['worker', 'start'])('npm run %s sets every worker environment variable and passes every worker flag to node', (name) => {
    const words = scripts[name]!.split(' ');
    const nodeAt = words.indexOf('node');
    expect(nodeAt).toBeGreaterThanOrEqual(0);
    const env = Object.fromEntries(words.slice(0, nodeAt).map((w) => w.split('=') as [string, string]));
    expect(env).toEqual(WORKER_ENV);
    for (const flag of WORKER_NODE_FLAGS) expect(words.slice(nodeAt + 1)).toContain(flag);
  });
});
