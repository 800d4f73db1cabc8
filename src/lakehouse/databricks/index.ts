import { DBSQLClient, DBSQLParameter, DBSQLParameterType } from '@databricks/sql';
import type { Config } from '../../config/schema';
import { DatabricksConfigError, resolveDatabricksConnection } from '../../databricks/connection';
import { DatabricksLakehouse } from './databricksLakehouse';
import { driverLogger } from './driverLogger';
import { SqlRunner, type DriverClient, type SqlParam } from './sqlRunner';

/**
 * Builds the Databricks lakehouse: one driver client per worker (the driver's maintainers
 * recommend a singleton per connection options), telemetry off unless configured, BIGINT kept
 * exact, STATEMENT_TIMEOUT set on the session (the per-statement timeout only works on clusters,
 * not on SQL warehouses) and its TIMEZONE pinned to UTC. `client` is the driver boundary tests
 * replace.
 */
export function openDatabricksLakehouse(config: Config, env: NodeJS.ProcessEnv = process.env, client?: DriverClient): DatabricksLakehouse {
  return new DatabricksLakehouse(createSqlRunner(config, env, client), config.tables, {
    createDemoTables: config.jobs.target === 'local',
    changedIds: config.databricks.changedIds,
    optimizeAfterPurge: config.retention.optimizeAfterPurge,
    consumerWindowHours: consumerWindowHours(config),
  });
}

/** The consumer view's window, or undefined when the view is off. */
export function consumerWindowHours(config: Config): number | undefined {
  return config.consumerView.enabled ? config.consumerView.windowHours : undefined;
}

/** The warehouse connection on its own, for the bootstrap script. */
export function createSqlRunner(config: Config, env: NodeJS.ProcessEnv = process.env, client?: DriverClient): SqlRunner {
  const connection = resolveDatabricksConnection(config, env);
  if (!connection.warehouseHttpPath) {
    throw new DatabricksConfigError('set databricks.warehouseHttpPath in the config or DATABRICKS_WAREHOUSE_HTTP_PATH (e.g. /sql/1.0/warehouses/abc123)');
  }
  const auth =
    connection.auth.kind === 'pat'
      ? { authType: 'access-token', token: connection.auth.token }
      : { authType: 'databricks-oauth', oauthClientId: connection.auth.clientId, oauthClientSecret: connection.auth.clientSecret };
  return new SqlRunner(client ?? (new DBSQLClient({ logger: driverLogger }) as unknown as DriverClient), {
    connectOptions: {
      host: connection.host,
      port: connection.port,
      path: connection.warehouseHttpPath,
      ...auth,
      telemetryEnabled: config.databricks.telemetry,
      preserveBigNumericPrecision: true,
      userAgentEntry: 'cdf-orchestrator',
    },
    // UTC whatever the workspace's TIMEZONE: a session renders timestamps in its own zone, which
    // the driver's text results (and any zone-less value) carry without saying so.
    sessionConfiguration: { STATEMENT_TIMEOUT: String(config.databricks.statementTimeoutSeconds), TIMEZONE: 'UTC' },
    toDriverParameter,
  });
}

function toDriverParameter(param: SqlParam): DBSQLParameter {
  return new DBSQLParameter({ type: DBSQLParameterType[param.type], value: param.value ?? null });
}
