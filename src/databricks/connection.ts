import type { Config } from '../config/schema';

/**
 * Where and as whom to reach a Databricks workspace. Secrets come from the worker's environment
 * only (DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID + DATABRICKS_CLIENT_SECRET for a service
 * principal) and never enter config objects, workflow inputs, results or logs.
 */
export interface DatabricksConnection {
  /** Host name without scheme or port, as the SQL driver wants it. */
  host: string;
  port: number;
  /** https://host[:port], for REST calls. */
  baseUrl: string;
  warehouseHttpPath?: string;
  jobId?: number;
  auth: DatabricksAuthConfig;
}

export type DatabricksAuthConfig =
  | { kind: 'pat'; token: string }
  | { kind: 'oauth-m2m'; clientId: string; clientSecret: string };

export class DatabricksConfigError extends Error {
  override readonly name = 'DatabricksConfigError';
}

/** Resolves the connection from config plus environment; throws naming the missing variable. */
export function resolveDatabricksConnection(config: Config, env: NodeJS.ProcessEnv = process.env): DatabricksConnection {
  const hostText = config.databricks.host ?? env.DATABRICKS_HOST;
  if (!hostText) throw new DatabricksConfigError('set databricks.host in the config or DATABRICKS_HOST in the environment (e.g. adb-123.4.azuredatabricks.net)');
  const url = new URL(/^https?:\/\//.test(hostText) ? hostText : `https://${hostText}`);
  if (url.protocol !== 'https:') throw new DatabricksConfigError(`databricks host "${hostText}" must use https`);
  const port = url.port ? Number(url.port) : 443;
  const jobIdText = env.DATABRICKS_JOB_ID;
  const jobId = config.databricks.jobId ?? (jobIdText && /^\d+$/.test(jobIdText) ? Number(jobIdText) : undefined);
  return {
    host: url.hostname,
    port,
    baseUrl: `https://${url.hostname}${url.port ? `:${url.port}` : ''}`,
    warehouseHttpPath: config.databricks.warehouseHttpPath ?? env.DATABRICKS_WAREHOUSE_HTTP_PATH,
    jobId,
    auth: resolveAuth(env),
  };
}

function resolveAuth(env: NodeJS.ProcessEnv): DatabricksAuthConfig {
  if (env.DATABRICKS_TOKEN) return { kind: 'pat', token: env.DATABRICKS_TOKEN };
  if (env.DATABRICKS_CLIENT_ID && env.DATABRICKS_CLIENT_SECRET) {
    return { kind: 'oauth-m2m', clientId: env.DATABRICKS_CLIENT_ID, clientSecret: env.DATABRICKS_CLIENT_SECRET };
  }
  throw new DatabricksConfigError(
    'no Databricks credentials: set DATABRICKS_TOKEN (personal access token) or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (service principal, OAuth M2M) in the worker environment',
  );
}
