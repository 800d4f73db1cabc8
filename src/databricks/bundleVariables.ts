import type { Config } from '../config/schema';

/**
 * The Asset Bundle's variables (databricks/databricks.yml) that must agree with the config: the
 * tables the job reads and writes, the batch table the launcher names, the concurrency the
 * orchestrator keeps, and the warehouse. In the order of databricks.yml.
 */
export function bundleVariables(config: Config): Record<string, string> {
  const batches = config.tables.batches.split('.');
  const vars: Record<string, string> = {};
  if (batches.length === 3) vars.catalog = batches[0]!;
  if (batches.length >= 2) vars.schema = batches[batches.length - 2]!;
  const warehouseId = config.databricks.warehouseHttpPath?.split('/').filter(Boolean).pop();
  if (warehouseId) vars.warehouse_id = warehouseId;
  vars.batch_table = config.tables.batches;
  vars.master_table = config.tables.master;
  vars.target_table = config.tables.target;
  vars.max_concurrent_runs = String(config.fanIn.concurrency);
  vars.job_timeout_seconds = String(Math.ceil(config.fanIn.jobTimeoutMinutes * 60));
  return vars;
}

/** The job's tables without a catalog: on Databricks they resolve in the compute's default catalog, which may not be the worker's. */
export function tablesWithoutCatalog(config: Config): string[] {
  return (['batches', 'master', 'target'] as const).filter((key) => config.tables[key].split('.').length < 3).map((key) => `tables.${key} (${config.tables[key]})`);
}

/** `--var="name=value"` flags for `databricks bundle deploy`, one per line, shell-quoted. */
export function formatBundleVarFlags(vars: Record<string, string>): string {
  return Object.entries(vars)
    .map(([name, value]) => `--var="${name}=${value.replace(/(["\\$`])/g, '\\$1')}"`)
    .join(' \\\n');
}
