import { parseConfig } from '../../src/config/load';
import { openDatabricksLakehouse } from '../../src/lakehouse/databricks';

/**
 * The Databricks lakehouse adapter against a real SQL warehouse. Runs only when credentials and a
 * CDF-enabled test table are given; it creates the pipeline tables in DATABRICKS_TEST_SCHEMA
 * (catalog.schema) and reads the table's newest version.
 */
const env = process.env;
const required = ['DATABRICKS_HOST', 'DATABRICKS_TOKEN', 'DATABRICKS_WAREHOUSE_HTTP_PATH', 'DATABRICKS_TEST_TABLE', 'DATABRICKS_TEST_SCHEMA'];
const missing = required.filter((name) => !env[name]);
if (missing.length > 0) {
  console.warn(`[databricks warehouse] real-warehouse suite skipped: set ${missing.join(', ')} to run it`);
}
const suite = missing.length > 0 ? describe.skip : describe;

suite('the Databricks lakehouse adapter on a real SQL warehouse', () => {
  // Built lazily: describe bodies run even when the suite is skipped.
  const schema = env.DATABRICKS_TEST_SCHEMA ?? 'main.cdf_test';
  const config = () => parseConfig({
    lakehouse: { target: 'databricks' },
    jobs: { target: 'databricks' },
    tables: {
      registry: `${schema}.change_registry`,
      offsets: `${schema}.source_offsets`,
      changedIds: `${schema}.changed_ids`,
      batches: `${schema}.dispatch_batches`,
      fanInRuns: `${schema}.fan_in_runs`,
      master: `${schema}.entity_master`,
      target: `${schema}.entity_target`,
    },
    sources: [{ name: 'real', table: env.DATABRICKS_TEST_TABLE }],
  });
  let lakehouse: ReturnType<typeof openDatabricksLakehouse>;
  let source: ReturnType<typeof config>['sources'][number];

  beforeAll(() => {
    lakehouse = openDatabricksLakehouse(config());
    source = config().sources[0]!;
  });

  afterAll(() => lakehouse?.close());

  it('creates the pipeline tables and view twice without error', async () => {
    await lakehouse.ensurePipelineTables();
    await lakehouse.ensurePipelineTables();
  });

  it('reads the latest version and the table id', async () => {
    const description = await lakehouse.describeSource(source);
    expect(description.latestVersion).toBeGreaterThanOrEqual(0);
    expect(description.tableId).toMatch(/[0-9a-f-]{36}/);
  });

  it('appends the newest version twice and inserts its rows only once', async () => {
    const { latestVersion, tableId } = await lakehouse.describeSource(source);
    const range = { fromVersion: latestVersion, toVersion: latestVersion };
    await lakehouse.summarizeChanges(source, range);
    await lakehouse.appendRangeToRegistry(source, range, tableId);
    expect(await lakehouse.appendRangeToRegistry(source, range, tableId)).toEqual({ rowsInserted: 0 });
  });
});
