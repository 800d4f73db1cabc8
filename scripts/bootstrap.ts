/**
 * `npm run bootstrap -- [--dry-run] [--enable-cdf]`: creates the pipeline's tables and the
 * changed-ids view from the config, idempotently. On the local target it creates the DuckDB
 * tables; on Databricks it runs the DDL on the configured SQL warehouse.
 */
import { Command } from 'commander';
import { ConfigError, loadConfig } from '../src/config/load';
import { DatabricksConfigError } from '../src/databricks/connection';
import { consumerWindowHours, createSqlRunner } from '../src/lakehouse/databricks';
import { bootstrapStatements, runBootstrap } from '../src/lakehouse/databricks/bootstrap';
import { LocalLakehouse } from '../src/lakehouse/local/localLakehouse';
import { pipelineStatements } from '../src/lakehouse/local/statements';

const options = new Command()
  .name('npm run bootstrap --')
  .description('Create the registry, offsets, fan-in and batch tables and the changed-ids view, idempotently.')
  .option('--config <file>', 'configuration file (default: $CDF_CONFIG or ./cdf.config.yaml)')
  .option('--dry-run', 'print the DDL instead of running it')
  .option('--enable-cdf', "also switch on delta.enableChangeDataFeed on every source table (Databricks)")
  .parse()
  .opts<{ config?: string; dryRun?: boolean; enableCdf?: boolean }>();

async function main(): Promise<void> {
  const config = loadConfig({ file: options.config });
  if (config.lakehouse.target === 'local') {
    const windowHours = consumerWindowHours(config);
    const ddl = (({ createSchemas, createTables, createConsumerView }) => [...createSchemas, ...createTables, ...(windowHours ? [createConsumerView(windowHours, true)] : [])])(
      pipelineStatements(config.tables),
    );
    if (options.dryRun) return void console.log(ddl.map((sql) => `${sql};`).join('\n\n'));
    const lakehouse = await LocalLakehouse.open(config.lakehouse.local.path, config.tables, { consumerWindowHours: windowHours, replaceConsumerView: true });
    await lakehouse.ensurePipelineTables();
    await lakehouse.close();
    return void console.error(`[bootstrap] ${ddl.length} statements applied to ${config.lakehouse.local.path}`);
  }
  const statements = bootstrapStatements(config, { enableCdf: Boolean(options.enableCdf) });
  if (options.dryRun) return void console.log(statements.map((s) => `${s.sql};`).join('\n\n'));
  const runner = createSqlRunner(config);
  try {
    await runBootstrap(runner, statements, (message) => console.error(`[bootstrap] ${message}`));
  } finally {
    await runner.close();
  }
  console.error(`[bootstrap] done: ${statements.length} statements`);
}

main().catch((error: Error) => {
  console.error(error instanceof ConfigError || error instanceof DatabricksConfigError ? error.message : `[bootstrap] failed: ${error.message}`);
  process.exit(1);
});
