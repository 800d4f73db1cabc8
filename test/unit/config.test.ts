import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load';
import { workflowCacheSize } from '../../src/config/schema';

const minimalSource = { name: 'orders', table: 'upstream.orders' };

/** A minimal valid config with `overrides` merged over it at the top level. */
function configWith(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { sources: [minimalSource], ...overrides };
}

/** Runs `parse` and returns the ConfigError it throws; fails the test if it throws anything else or nothing. */
function configErrorOf(parse: () => unknown): ConfigError {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

const tempDirs: string[] = [];

/** Writes `text` as `name` in a fresh temp directory and returns its path. */
function writeTempFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-config-'));
  tempDirs.push(dir);
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

afterAll(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('parseConfig rejects', () => {
  it('a table name with a quote and a semicolon, naming the field and the value', () => {
    const table = 'upstream.orders"; DROP TABLE x; --';
    const error = configErrorOf(() => parseConfig({ sources: [{ name: 'orders', table }] }));
    expect(error.problems).toHaveLength(1);
    expect(error.message).toContain(`sources[0].table: got ${JSON.stringify(table)}`);
  });

  it('a source without a table, naming the field as missing', () => {
    const error = configErrorOf(() => parseConfig({ sources: [{ name: 'orders' }] }));
    expect(error.message).toContain('sources[0].table: missing');
  });

  it('a config without sources, naming the field as missing', () => {
    const error = configErrorOf(() => parseConfig({}));
    expect(error.message).toContain('sources: missing');
  });

  it('an unknown changed-ids strategy, naming the field, the value and both choices', () => {
    const error = configErrorOf(() => parseConfig(configWith({ databricks: { changedIds: 'view' } })));
    expect(error.message).toContain('databricks.changedIds: got "view"');
    expect(error.message).toContain('"materializedView" (serverless or pro SQL warehouse) or "table" (any Delta engine)');
  });

  it('blocking on unknown errors after fewer than one burst of attempts, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig(configWith({ capture: { blockUnknownErrorsAfterAttempts: 2 } })));
    expect(error.message).toContain('capture.blockUnknownErrorsAfterAttempts: got 2');
    expect(error.message).toContain('must be at least 3');
  });

  it('a negative batch size, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig(configWith({ fanIn: { batchSize: -5 } })));
    expect(error.message).toContain('fanIn.batchSize: got -5');
    expect(error.message).toContain('must be greater than 0');
  });

  it('an unknown lakehouse target, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig(configWith({ lakehouse: { target: 'snowflake' } })));
    expect(error.message).toContain('lakehouse.target: got "snowflake"');
    expect(error.message).toContain('must be "local" or "databricks"');
  });

  it('an unknown jobs target, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig(configWith({ jobs: { target: 'spark' } })));
    expect(error.message).toContain('jobs.target: got "spark"');
  });

  it('a statement timeout not below the activity timeout, naming both and the fix', () => {
    const error = configErrorOf(() =>
      parseConfig(configWith({ lakehouse: { target: 'databricks' }, sources: [{ name: 'orders', table: 'main.upstream.orders' }], databricks: { statementTimeoutSeconds: 1800 }, worker: { activityTimeoutSeconds: 1800 } })),
    );
    expect(error.message).toContain('databricks.statementTimeoutSeconds: got 1800; must be below worker.activityTimeoutSeconds (1800)');
    expect(error.message).toContain('Lower it or raise worker.activityTimeoutSeconds');
  });

  it('a fan-in maximum wait shorter than its debounce, naming the field, the value and the fix', () => {
    const error = configErrorOf(() => parseConfig(configWith({ fanIn: { onChange: { waitAfterLastChangeSeconds: 30, maxWaitSeconds: 10 } } })));
    expect(error.message).toContain('fanIn.onChange.maxWaitSeconds: got 10; must be at least fanIn.onChange.waitAfterLastChangeSeconds (30)');
    expect(error.message).toContain('Raise maxWaitSeconds, lower waitAfterLastChangeSeconds, or remove maxWaitSeconds for the default (60)');
  });

  it('a misspelled key, naming the enclosing field and the unknown key', () => {
    const error = configErrorOf(() => parseConfig(configWith({ fanIn: { batchsize: 10 } })));
    expect(error.message).toContain('fanIn: unknown field(s) "batchsize"');
  });

  it('a consumer view window longer than the registry retention, naming both and every way out', () => {
    const error = configErrorOf(() => parseConfig(configWith({ retention: { registryDays: 0.5 } })));
    expect(error.message).toContain('consumerView.windowHours: got 24; must not exceed retention.registryDays × 24 (12)');
    expect(error.message).toContain('or set consumerView.enabled: false');
  });

  it('a workflow cache too small for the sources, naming the field, the value, what it must hold and the fix', () => {
    const sources = Array.from({ length: 300 }, (_, i) => ({ name: `s${i}`, table: `upstream.s${i}` }));
    const error = configErrorOf(() => parseConfig(configWith({ sources, worker: { maxCachedWorkflows: 200 } })));
    expect(error.message).toContain('worker.maxCachedWorkflows: got 200; must hold the 300 source workflows plus 10 for the fan-ins (310)');
    expect(error.message).toContain('Raise it to at least 310, or remove it for the default (388)');
  });

  it('a retention of 0 days, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig(configWith({ retention: { batchDays: 0 } })));
    expect(error.message).toContain('retention.batchDays: got 0; must be greater than 0');
  });

  it('two pipeline tables with the same name, naming the second one', () => {
    const error = configErrorOf(() => parseConfig(configWith({ tables: { changedIds: 'cdf.changed_uts' } })));
    expect(error.message).toContain('tables.consumerView: got "cdf.changed_uts"; is also tables.changedIds');
  });

  it('two sources with the same name, naming the second one and the value', () => {
    const sources = [minimalSource, { name: 'orders', table: 'upstream.orders_v2' }];
    const error = configErrorOf(() => parseConfig({ sources }));
    expect(error.message).toContain('sources[1].name: got "orders"; duplicates sources[0].name');
  });

  it('a three-part table name with the local lakehouse target, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig({ sources: [{ name: 'orders', table: 'main.upstream.orders' }] }));
    expect(error.message).toContain('sources[0].table: got "main.upstream.orders"');
    expect(error.message).toContain('drop the catalog part');
  });

  it('a key column with a space, naming the field and the value', () => {
    const error = configErrorOf(() => parseConfig({ sources: [{ ...minimalSource, keyColumn: 'uts id' }] }));
    expect(error.message).toContain('sources[0].keyColumn: got "uts id"');
  });
});

describe('parseConfig accepts', () => {
  it('a short activity timeout on the local lakehouse, where no warehouse statement runs', () => {
    expect(parseConfig(configWith({ worker: { activityTimeoutSeconds: 300 } })).worker.activityTimeoutSeconds).toBe(300);
  });

  it('no workflow cache size, and the worker sizes its cache to hold every source with room to spare', () => {
    const sources = Array.from({ length: 500 }, (_, i) => ({ name: `s${i}`, table: `upstream.s${i}` }));
    const config = parseConfig(configWith({ sources }));
    expect(config.worker.maxCachedWorkflows).toBeUndefined();
    expect(workflowCacheSize(config.sources.length, config.worker.maxCachedWorkflows)).toBe(638);
    expect(workflowCacheSize(1, undefined)).toBe(200);
    expect(workflowCacheSize(500, 900)).toBe(900);
  });

  it('no fan-in maximum wait, and bounds the debounce at a minute, or at the debounce when that is longer', () => {
    expect(parseConfig(configWith()).fanIn.onChange.maxWaitSeconds).toBe(60);
    expect(parseConfig(configWith({ fanIn: { onChange: { waitAfterLastChangeSeconds: 90 } } })).fanIn.onChange.maxWaitSeconds).toBe(90);
  });

  it('a three-part table name when the lakehouse target is databricks', () => {
    const config = parseConfig({ lakehouse: { target: 'databricks' }, sources: [{ name: 'orders', table: 'main.upstream.orders' }] });
    expect(config.sources[0]!.table).toBe('main.upstream.orders');
  });

  it('a minimal config and fills in every default', () => {
    const config = parseConfig({ sources: [minimalSource] });
    expect(config.sources).toEqual([{ name: 'orders', table: 'upstream.orders', keyColumn: 'uts_id', extraColumns: [], startingVersion: 0 }]);
    expect(config.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'cdf-orchestrator',
      tls: {},
      uiPort: 8233,
      workflowIdPrefix: 'cdf',
    });
    expect(config.lakehouse).toEqual({ target: 'local', local: { path: '.data/lakehouse.duckdb', memoryLimitMB: 128, faults: { transientConflictRate: 0 } } });
    expect(config.jobs).toEqual({ target: 'local', local: { path: '.data/local-jobs.duckdb', maxConcurrentRuns: 4, failFirstAttemptRate: 0 } });
    expect(config.tables.registry).toBe('cdf.change_registry');
    expect(config.capture).toEqual({ maxVersionsPerRange: 100, pollIntervalSeconds: 30, blockUnknownErrorsAfterAttempts: 30 });
    expect(config.fanIn.batchSize).toBe(1000);
    expect(config.worker.shutdownGraceSeconds).toBe(30);
  });
});

describe('loadConfig', () => {
  it('lets TEMPORAL_ADDRESS and CDF_LAKEHOUSE_TARGET override the file', () => {
    const file = writeTempFile(
      'cdf.config.yaml',
      ['temporal:', '  address: 127.0.0.1:7233', 'lakehouse:', '  target: local', 'sources:', '  - name: orders', '    table: upstream.orders', ''].join('\n'),
    );
    const config = loadConfig({ file, env: { TEMPORAL_ADDRESS: 'temporal.internal:7400', CDF_LAKEHOUSE_TARGET: 'databricks' } });
    expect(config.temporal.address).toBe('temporal.internal:7400');
    expect(config.lakehouse.target).toBe('databricks');
  });

  it('reports an invalid env override against the file it was merged into', () => {
    const file = writeTempFile('cdf.config.yaml', 'sources:\n  - name: orders\n    table: upstream.orders\n');
    const error = configErrorOf(() => loadConfig({ file, env: { CDF_JOBS_TARGET: 'spark' } }));
    expect(error.file).toBe(file);
    expect(error.message).toContain('jobs.target: got "spark"');
  });

  it('resolves relative local paths against the config file directory', () => {
    const file = writeTempFile(
      'cdf.config.yaml',
      ['lakehouse:', '  local:', '    path: data/lake.duckdb', 'jobs:', '  local:', '    path: ../jobs.duckdb', 'sources:', '  - name: orders', '    table: upstream.orders', ''].join('\n'),
    );
    const config = loadConfig({ file, env: {}, cwd: '/' });
    expect(config.lakehouse.local.path).toBe(resolve(file, '..', 'data/lake.duckdb'));
    expect(config.jobs.local.path).toBe(resolve(file, '..', '..', 'jobs.duckdb'));
  });

  it('keeps :memory: and absolute local paths as they are', () => {
    const file = writeTempFile(
      'cdf.config.yaml',
      ['lakehouse:', '  local:', '    path: ":memory:"', 'jobs:', '  local:', '    path: /var/lib/jobs.duckdb', 'sources:', '  - name: orders', '    table: upstream.orders', ''].join('\n'),
    );
    const config = loadConfig({ file, env: {} });
    expect(config.lakehouse.local.path).toBe(':memory:');
    expect(config.jobs.local.path).toBe('/var/lib/jobs.duckdb');
  });

  it('reports a missing file with how to fix it', () => {
    const file = join(tmpdir(), 'cdf-config-does-not-exist', 'cdf.config.yaml');
    const error = configErrorOf(() => loadConfig({ file, env: {} }));
    expect(error.file).toBe(file);
    expect(error.message).toContain('the file does not exist');
    expect(error.message).toContain('set CDF_CONFIG');
  });

  it('reports a file that is not valid YAML', () => {
    const file = writeTempFile('cdf.config.yaml', 'sources: [unclosed\n');
    const error = configErrorOf(() => loadConfig({ file, env: {} }));
    expect(error.message).toContain('cannot be parsed');
  });

  it('finds the file through CDF_CONFIG when no file is given', () => {
    const file = writeTempFile('custom.yaml', 'sources:\n  - name: customers\n    table: upstream.customers\n');
    const config = loadConfig({ env: { CDF_CONFIG: file } });
    expect(config.sources.map((s) => s.name)).toEqual(['customers']);
  });

  it("loads the repository's own cdf.config.yaml", () => {
    const repoRoot = resolve(__dirname, '..', '..');
    const config = loadConfig({ file: join(repoRoot, 'cdf.config.yaml'), env: {} });
    expect(config.sources.map((s) => s.name)).toEqual(['orders', 'customers', 'shipments']);
    expect(config.sources[0]!.extraColumns).toEqual(['status']);
    expect(config.lakehouse.local.path).toBe(join(repoRoot, '.data', 'lakehouse.duckdb'));
  });
});

describe('the schedules section', () => {
  it('is optional: without it no schedule is configured', () => {
    expect(parseConfig(configWith()).schedules).toEqual({});
  });

  it('fills in offset, jitter, overlap, catch-up window and paused', () => {
    const config = parseConfig(configWith({ schedules: { fanIn: { every: '15m' } } }));
    expect(config.schedules.fanIn).toEqual({ every: '15m', offset: '0s', jitter: '0s', overlap: 'skip', catchupWindow: '10m', paused: false });
  });

  it('rejects a duration with a space and an unknown overlap policy, naming the fields, the values and the fix', () => {
    const error = configErrorOf(() => parseConfig(configWith({ schedules: { fanIn: { every: '15 min', overlap: 'never' } } })));
    expect(error.problems).toEqual([
      expect.stringMatching(/^schedules\.fanIn\.every: got "15 min"; must be a whole number followed by s, m, h or d/),
      expect.stringMatching(/^schedules\.fanIn\.overlap: got "never"; must be one of skip, buffer_one, buffer_all, cancel_other, terminate_other, allow_all/),
    ]);
  });

  it('refuses the removed schedules.sources, saying that sources poll by themselves and how to delete the old schedules', () => {
    const error = configErrorOf(() => parseConfig(configWith({ schedules: { sources: { every: '5m' } } })));
    expect(error.problems).toEqual([expect.stringMatching(/^schedules\.sources: got \{"every":"5m"\}; was removed: every source workflow already polls by itself every capture\.pollIntervalSeconds.*run `cdf schedules apply`, which deletes the poll schedules/)]);
  });

  it('rejects a catch-up window under the server minimum of 10 s and an offset not shorter than every', () => {
    const error = configErrorOf(() => parseConfig(configWith({ schedules: { fanIn: { every: '1h', offset: '1h', catchupWindow: '5s' } } })));
    expect(error.problems).toEqual([
      'schedules.fanIn.offset: got "1h"; must be shorter than every (1h)',
      'schedules.fanIn.catchupWindow: got "5s"; must be at least "10s" (the Temporal server\'s minimum)',
    ]);
  });
});
