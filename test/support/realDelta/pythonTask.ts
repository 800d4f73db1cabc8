import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RealDeltaInstallation } from './install';

export interface PythonTaskRun {
  /** Exit code of spark-submit: 0 when the job's main returned, else it raised. */
  code: number | null;
  /**
   * What the Python driver printed, its traceback included: spark-submit runs it with its stderr
   * merged into stdout. Spark's own log lines come after, from the JVM's stderr.
   */
  output: string;
  seconds: number;
  /** Both streams, kept in the run's temporary folder. */
  log: string;
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
  // Each run's folder (its tables file, Derby home and log) stays in test-artifacts for a look after a failure.
  const parent = join(__dirname, '..', '..', '..', 'test-artifacts', 'python-tasks');
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, 'run-'));
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
      writeFileSync(join(dir, 'spark-submit.log'), `${stdout}\n${stderr}`);
      resolve({ code, output: `${stdout}\n${stderr}`, seconds: (Date.now() - started) / 1000, log: join(dir, 'spark-submit.log') });
    });
  });
}
