import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../../src/temporal/devServer';
import type { RealDeltaInstallation } from './install';

export interface ThriftServer {
  host: '127.0.0.1';
  port: number;
  /** The HTTP path the driver connects to (`databricks.warehouseHttpPath`). */
  httpPath: '/cliservice';
  certificatePem: string;
  /** Spark's warehouse directory: managed tables live here (tests VACUUM and delete log files in it). */
  warehouseDir: string;
  logFile: string;
  pid: number;
  stop(): Promise<void>;
}

export interface ThriftServerOptions {
  installation: RealDeltaInstallation;
  /** Working directory: Derby metastore, warehouse, log. */
  workDir: string;
  port?: number;
  progress?: (message: string) => void;
  startTimeoutMs?: number;
}

/**
 * Starts Spark's Thrift server (HiveServer2 protocol, what @databricks/sql speaks) with Delta Lake,
 * over HTTPS on loopback. `local[2]` and two shuffle/snapshot partitions suit a 2-core machine; the
 * retention check is off so tests can VACUUM … RETAIN 0 HOURS. Resolves once the server listens;
 * rejects with the end of its log if it exits or does not listen in time.
 */
export async function startThriftServer(options: ThriftServerOptions): Promise<ThriftServer> {
  const { installation } = options;
  const port = options.port ?? (await freePort());
  const warehouseDir = join(options.workDir, 'warehouse');
  mkdirSync(warehouseDir, { recursive: true });
  const logFile = join(options.workDir, 'thrift-server.log');
  const conf: Record<string, string> = {
    'spark.sql.extensions': 'io.delta.sql.DeltaSparkSessionExtension',
    'spark.sql.catalog.spark_catalog': 'org.apache.spark.sql.delta.catalog.DeltaCatalog',
    'spark.sql.warehouse.dir': warehouseDir,
    'spark.sql.shuffle.partitions': '2',
    'spark.databricks.delta.snapshotPartitions': '2',
    'spark.databricks.delta.retentionDurationCheck.enabled': 'false',
    'spark.ui.enabled': 'false',
    // Timestamps reach the driver as zone-less text in this zone (difference 5 in sparkThriftDriver.ts).
    'spark.sql.session.timeZone': 'UTC',
    'spark.driver.extraJavaOptions': `-Dderby.system.home=${options.workDir}`,
  };
  const hiveconf: Record<string, string> = {
    'hive.server2.transport.mode': 'http',
    'hive.server2.thrift.http.port': String(port),
    'hive.server2.thrift.http.path': 'cliservice',
    'hive.server2.thrift.bind.host': '127.0.0.1',
    'hive.server2.use.SSL': 'true',
    'hive.server2.keystore.path': installation.keystore,
    'hive.server2.keystore.password': installation.keystorePassword,
  };
  const args = [
    '--class', 'org.apache.spark.sql.hive.thriftserver.HiveThriftServer2',
    '--master', 'local[2]',
    '--driver-memory', '2g',
    '--jars', installation.deltaJars.join(','),
    ...Object.entries(conf).flatMap(([k, v]) => ['--conf', `${k}=${v}`]),
    ...Object.entries(hiveconf).flatMap(([k, v]) => ['--hiveconf', `${k}=${v}`]),
    'spark-internal',
  ];
  options.progress?.(`starting the Spark Thrift Server with Delta on https://127.0.0.1:${port}/cliservice (12–30 s) ...`);
  const started = Date.now();
  writeFileSync(logFile, '');
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(join(installation.sparkHome, 'bin', 'spark-submit'), args, {
    cwd: options.workDir,
    env: { ...process.env, SPARK_HOME: installation.sparkHome, SPARK_LOG_DIR: options.workDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stop() ends the JVM that spark-submit starts, and nothing outlives the tests.
    detached: true,
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const stop = () => stopServer(child);
  try {
    await waitForListening(child, logFile, options.startTimeoutMs ?? 180_000);
  } catch (error) {
    await stop();
    throw error;
  }
  options.progress?.(`Spark Thrift Server ready in ${((Date.now() - started) / 1000).toFixed(0)} s (pid ${child.pid}, log ${logFile})`);
  return {
    host: '127.0.0.1',
    port,
    httpPath: '/cliservice',
    certificatePem: readFileSync(installation.certificatePem, 'utf8'),
    warehouseDir,
    logFile,
    pid: child.pid!,
    stop,
  };
}

async function waitForListening(child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const tail = () => readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the Spark Thrift Server exited (${child.exitCode ?? child.signalCode}) before listening; the end of ${logFile}:\n${tail()}`);
    if (/Started ThriftHttpCLIService/.test(readFileSync(logFile, 'utf8'))) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the Spark Thrift Server did not listen within ${timeoutMs / 1000} s; the end of ${logFile}:\n${tail()}`);
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const killed = setTimeout(() => signal('SIGKILL'), 15_000);
  await exited;
  clearTimeout(killed);
}
