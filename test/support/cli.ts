import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';

export const ROOT = join(__dirname, '..', '..');

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, capturing both streams. */
export function runProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  onStart?: (child: ChildProcessByStdio<null, Readable, Readable>) => void,
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    onStart?.(child);
  });
}

/** `bin/cdf <args>` as an operator runs it, against the test dev server. */
export function runCdf(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  return runProcess(join(ROOT, 'bin', 'cdf'), args, { TEMPORAL_ADDRESS: process.env.CDF_TEST_TEMPORAL_ADDRESS, ...env });
}

/** Writes a parsed config as a JSON config file (loadConfig reads .json) and returns its path. */
export function writeConfigFile(config: Config): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cdf-cli-')), 'cdf.config.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** The same pipeline (task queue, data files) with a fresh workflow id prefix and the given schedules section. */
export function withSchedules(config: Config, schedules: unknown, overrides: { freshPrefix?: boolean; sources?: Config['sources'] } = {}): Config {
  const prefix = overrides.freshPrefix === false ? config.temporal.workflowIdPrefix : `t${randomBytes(4).toString('hex')}`;
  return parseConfig({ ...config, temporal: { ...config.temporal, workflowIdPrefix: prefix }, sources: overrides.sources ?? config.sources, schedules });
}
