import type { Config } from '../../config/schema';
import { consumerWindowHours } from './index';
import { databricksStatements } from './statements';
import type { SqlRunner, Statement } from './sqlRunner';

/**
 * The DDL that prepares a workspace for the pipeline, from the config: schemas, the registry,
 * offsets, fan-in and batch tables, the changed-ids view or table (all `IF NOT EXISTS`), the consumer view (replaced, so a new window applies, so
 * running it twice changes nothing), the demo tables when the local runner will write them, and,
 * on request, CDF switched on for every source.
 */
export function bootstrapStatements(config: Config, options: { enableCdf: boolean }): Statement[] {
  const sql = databricksStatements(config.tables, config.databricks.changedIds, { consumerWindowHours: consumerWindowHours(config), replaceConsumerView: true });
  return [
    ...sql.createPipelineObjects(),
    ...(config.jobs.target === 'local' ? sql.createDemoTables() : []),
    ...(options.enableCdf ? config.sources.map((source) => sql.enableChangeDataFeed(source.table)) : []),
  ];
}

export async function runBootstrap(runner: SqlRunner, statements: Statement[], progress: (message: string) => void): Promise<void> {
  for (const [index, statement] of statements.entries()) {
    progress(`[${index + 1}/${statements.length}] ${statement.sql.split('\n')[0]}`);
    await runner.query(statement);
  }
}
