import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { configSchema, type Config } from './schema';

export const DEFAULT_CONFIG_FILE = 'cdf.config.yaml';

/** Raised before anything starts: the message lists every bad field, its value and the fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(`Invalid configuration (${file}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/**
 * Environment variables that override a config field. Only names and addresses: secrets
 * (DATABRICKS_TOKEN, client secrets) are read by the adapters that need them, never copied here.
 */
const ENV_OVERRIDES: ReadonlyArray<readonly [string, readonly string[], ('number' | 'string' | 'boolean')?]> = [
  ['TEMPORAL_ADDRESS', ['temporal', 'address']],
  ['TEMPORAL_NAMESPACE', ['temporal', 'namespace']],
  // The Temporal CLI's and SDKs' names for the same settings (environment configuration).
  ['TEMPORAL_TLS', ['temporal', 'tls', 'enabled'], 'boolean'],
  ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', ['temporal', 'tls', 'serverCaCertPath']],
  ['TEMPORAL_TLS_CLIENT_CERT_PATH', ['temporal', 'tls', 'clientCertPath']],
  ['TEMPORAL_TLS_CLIENT_KEY_PATH', ['temporal', 'tls', 'clientKeyPath']],
  ['TEMPORAL_TLS_SERVER_NAME', ['temporal', 'tls', 'serverNameOverride']],
  ['CDF_TASK_QUEUE', ['temporal', 'taskQueue']],
  ['CDF_UI_PORT', ['temporal', 'uiPort'], 'number'],
  ['CDF_LAKEHOUSE_TARGET', ['lakehouse', 'target']],
  ['CDF_LOCAL_LAKEHOUSE_PATH', ['lakehouse', 'local', 'path']],
  ['CDF_JOBS_TARGET', ['jobs', 'target']],
  ['CDF_LOCAL_JOBS_PATH', ['jobs', 'local', 'path']],
  ['CDF_METRICS_PORT', ['worker', 'metrics', 'port'], 'number'],
  ['CDF_METRICS_HOST', ['worker', 'metrics', 'host']],
];

export interface LoadOptions {
  /** Config file; defaults to $CDF_CONFIG, then ./cdf.config.yaml. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Reads, merges and validates the configuration. Throws ConfigError; never returns a partial config. */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = resolve(cwd, options.file ?? env.CDF_CONFIG ?? DEFAULT_CONFIG_FILE);
  if (!existsSync(file)) {
    throw new ConfigError(file, [`the file does not exist: create it (see cdf.config.yaml in the repository) or set CDF_CONFIG to its path`]);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(readFileSync(file, 'utf8')) : YAML.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(file, [`cannot be parsed: ${(error as Error).message}`]);
  }
  const config = parseConfig(applyEnvOverrides(raw ?? {}, env), file);
  return resolveLocalPaths(config, dirname(file));
}

/** Validates an in-memory config object (tests and embedding use this directly). */
export function parseConfig(raw: unknown, origin = '<inline config>'): Config {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(origin, result.error.issues.map(describeIssue));
  return result.data;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return `${field || '(top level)'}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}: remove them or check the spelling against the README's configuration reference`;
  }
  const value = 'input' in issue && issue.input !== undefined ? `got ${JSON.stringify(issue.input)}` : 'missing';
  return `${field}: ${value}; ${issue.message}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, key) => (typeof key === 'number' ? `${text}[${key}]` : text ? `${text}.${String(key)}` : String(key)), '');
}

function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const merged = structuredClone(raw) as Record<string, unknown>;
  for (const [variable, path, type] of ENV_OVERRIDES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    let node = merged;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    // A value that is not a number stays a string, so the schema reports it with the variable's text.
    node[path[path.length - 1]!] = type === 'number' && /^\d+$/.test(value) ? Number(value) : type === 'boolean' && /^(true|false)$/i.test(value) ? value.toLowerCase() === 'true' : value;
  }
  return merged;
}

/** Relative local paths are relative to the config file, not to wherever the process started. */
function resolveLocalPaths(config: Config, baseDir: string): Config {
  const absolute = (path: string) => (isAbsolute(path) || path === ':memory:' ? path : resolve(baseDir, path));
  return {
    ...config,
    lakehouse: { ...config.lakehouse, local: { ...config.lakehouse.local, path: absolute(config.lakehouse.local.path) } },
    jobs: { ...config.jobs, local: { ...config.jobs.local, path: absolute(config.jobs.local.path) } },
    temporal: { ...config.temporal, tls: mapDefined(config.temporal.tls, ['serverCaCertPath', 'clientCertPath', 'clientKeyPath'], absolute) },
  };
}

function mapDefined<T extends object, K extends keyof T>(object: T, keys: K[], map: (value: string) => string): T {
  const mapped = { ...object };
  for (const key of keys) if (typeof mapped[key] === 'string') mapped[key] = map(mapped[key] as string) as T[K];
  return mapped;
}
