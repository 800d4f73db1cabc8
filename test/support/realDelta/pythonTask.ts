import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RealDeltaInstallation } from './install';

export interface PythonTaskRun {
  /** Exit code of spark-submit: 0 when the job's main returned, else it raised. */
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Delta's SQL extension and catalog, as on the Thrift server; an in-memory catalog (see run_on_local_spark.py). */
const SPARK_CONF: Record<string, string> = {
  'spark.sql.extensions': 'io.delta.sql.DeltaSparkSessionExtension',
  'spark.sql.catalog.spark_catalog': 'org.apache.spark.sql.delta.catalog.DeltaCatalog',
  'spark.sql.catalogImplementation': 'in-memory',
  'spark.sql.shuffle.partitions': '2',
  'spark.databricks.delta.snapshotPartitions': '2',
  'spark.ui.enabled': 'false',
  'spark.sql.session.timeZone': 'UTC',
};

/**
 * Runs a Databricks spark_python_task's file as its own spark-submit process on local Spark with
 * Delta: the tables it names are registered at their Delta locations first (`tables`: name →
 * location, from DESCRIBE DETAIL on the Thrift server), then the file runs as `__main__` with
 * `args`, as a job run on Databricks would run it.
 */
export function runPythonTask(installation: RealDeltaInstallation, options: { tables: Record<string, string>; pythonFile: string; args: string[]; timeoutMs?: number }): Promise<PythonTaskRun> {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-python-task-'));
  const tablesFile = join(dir, 'tables.json');
  writeFileSync(tablesFile, JSON.stringify(options.tables));
  const args = [
    '--master', 'local[1]',
    '--driver-memory', '1g',
    '--jars', installation.deltaJars.join(','),
    ...Object.entries({ ...SPARK_CONF, 'spark.driver.extraJavaOptions': `-Dderby.system.home=${dir}` }).flatMap(([k, v]) => ['--conf', `${k}=${v}`]),
    join(__dirname, 'run_on_local_spark.py'),
    tablesFile,
    options.pythonFile,
    ...options.args,
  ];
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(join(installation.sparkHome, 'bin', 'spark-submit'), args, {
      cwd: dir,
      env: { ...process.env, PYSPARK_PYTHON: installation.python, PYSPARK_DRIVER_PYTHON: installation.python, SPARK_HOME: installation.sparkHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}
