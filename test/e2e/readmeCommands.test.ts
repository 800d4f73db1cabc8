import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT, runProcess } from '../support/cli';
import { demoEnv, killDemo, startDemo, type Demo } from '../support/demoProcess';

/*
 * The README's shell examples, run as written against a running `npm start`: every line of every
 * ```bash block, in the order a reader meets them. Only the demo's address differs (the test's
 * own ports instead of 127.0.0.1:7233, through TEMPORAL_ADDRESS for the project's commands and by
 * substitution in the `temporal` lines). `npm ci`, `npm start` and `npm test` lines are what CI and
 * the start/stop tests run; they are not run again here.
 */
const README_ADDRESS = '127.0.0.1:7233';

interface Example {
  line: number;
  command: string;
}

function readmeExamples(): Example[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  const examples: Example[] = [];
  let inBash = false;
  lines.forEach((text, index) => {
    if (text.startsWith('```')) {
      inBash = !inBash && text.trim() === '```bash';
      return;
    }
    if (inBash && text.trim() !== '' && !/^npm (ci|start|test)\b/.test(text)) examples.push({ line: index + 1, command: text });
  });
  return examples;
}

describe("the README's commands, run as written against the demo", () => {
  const examples = readmeExamples();
  let demo: Demo;

  beforeAll(async () => {
    demo = await startDemo(['--commits', '1', '--traffic-every', '1h']);
    await demo.waitFor(/serving:/);
  });

  afterAll(() => {
    if (demo) killDemo(demo);
  });

  it('has examples for bin/cdf, npm run traffic and the Temporal CLI, every temporal one with the demo\'s address', () => {
    expect(examples.filter((e) => e.command.startsWith('bin/cdf ')).length).toBeGreaterThanOrEqual(8);
    expect(examples.some((e) => e.command.startsWith('npm run traffic '))).toBe(true);
    const temporal = examples.filter((e) => e.command.startsWith('temporal '));
    expect(temporal.length).toBeGreaterThanOrEqual(10);
    for (const example of temporal) expect(`${example.line}: ${example.command}`).toContain(`--address ${README_ADDRESS}`);
  });

  it('runs every example to exit code 0, in order', async () => {
    const env = {
      ...demoEnv(demo),
      // The README's `temporal` is the one `npm run setup` installs (on PATH for a user who added it).
      PATH: `${dirname(process.env.TEMPORAL_CLI_PATH!)}:${process.env.PATH}`,
    };
    const failures: string[] = [];
    for (const example of examples) {
      const command = example.command.replaceAll(README_ADDRESS, demo.address);
      const result = await runProcess('bash', ['-c', command], env);
      if (result.code !== 0) failures.push(`README.md:${example.line}: exit ${result.code}: ${example.command}\n${result.stdout}${result.stderr}`);
    }
    expect(failures).toEqual([]);
  });
});
