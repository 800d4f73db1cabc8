import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Open-source Delta Lake with Change Data Feed on Spark, for the real-Delta test tier. The
 * versions fit together (see ../shared/reference/real-delta.md): delta-spark 4.0.1 alone pulls a
 * newer pyspark it does not run on, so pyspark is pinned.
 */
export const SPARK_VERSION = '4.0.1';
export const DELTA_VERSION = '4.0.1';
const DELTA_JARS = [`io.delta:delta-spark_2.13:${DELTA_VERSION}`, `io.delta:delta-storage:${DELTA_VERSION}`];

/** Outside the repository, so every fresh clone on this machine reuses one installation. */
export const REAL_DELTA_CACHE_DIR = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cdf-orchestrator', `spark-${SPARK_VERSION}-delta-${DELTA_VERSION}`);

export interface RealDeltaInstallation {
  /** The virtual environment's Python, with pyspark and delta-spark: what runs a PySpark job here. */
  python: string;
  /** The pyspark package folder: Spark's bin/ and jars/ (with the Thrift server's jar) live there. */
  sparkHome: string;
  deltaJars: string[];
  /** PKCS12 keystore for the Thrift server's TLS (the driver speaks only https). */
  keystore: string;
  keystorePassword: string;
  /** The server certificate (PEM) for the client to trust. */
  certificatePem: string;
}

type Progress = (message: string) => void;

/**
 * Installs what the tier needs, each step only once (a marker file records a finished step):
 * a Python virtual environment with pyspark + delta-spark from PyPI, the Delta jars from Maven
 * Central (through Maven's own cache), and a self-signed certificate for 127.0.0.1.
 */
export function ensureRealDelta(progress: Progress = () => undefined, options: { quiet?: boolean } = {}): RealDeltaInstallation {
  mkdirSync(REAL_DELTA_CACHE_DIR, { recursive: true });
  const stdio = options.quiet ? 'pipe' : 'inherit';
  const venv = join(REAL_DELTA_CACHE_DIR, 'venv');
  const python = join(venv, 'bin', 'python');
  step(progress, 'python packages', join(REAL_DELTA_CACHE_DIR, '.venv-done'), () => {
    rmSync(venv, { recursive: true, force: true });
    progress(`creating a virtual environment with pyspark==${SPARK_VERSION} and delta-spark==${DELTA_VERSION} (about 500 MB, under a minute from PyPI) ...`);
    run('python3', ['-m', 'venv', venv], stdio);
    run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--progress-bar', 'off', `pyspark==${SPARK_VERSION}`, `delta-spark==${DELTA_VERSION}`], stdio);
  });
  const jarsDir = join(REAL_DELTA_CACHE_DIR, 'jars');
  step(progress, 'Delta jars', join(REAL_DELTA_CACHE_DIR, '.jars-done'), () => {
    mkdirSync(jarsDir, { recursive: true });
    for (const artifact of DELTA_JARS) {
      progress(`fetching ${artifact} from Maven Central ...`);
      run('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=${artifact}`, `-DoutputDirectory=${jarsDir}`], stdio);
    }
  });
  const tlsDir = join(REAL_DELTA_CACHE_DIR, 'tls');
  const keystore = join(tlsDir, 'server.p12');
  const certificatePem = join(tlsDir, 'server.pem');
  const keystorePassword = 'cdf-real-delta';
  step(progress, 'TLS certificate', join(REAL_DELTA_CACHE_DIR, '.tls-done'), () => {
    rmSync(tlsDir, { recursive: true, force: true });
    mkdirSync(tlsDir, { recursive: true });
    run('keytool', ['-genkeypair', '-alias', 'thrift', '-keyalg', 'RSA', '-keysize', '2048', '-validity', '3650', '-dname', 'CN=localhost',
      '-ext', 'SAN=IP:127.0.0.1,DNS:localhost', '-storetype', 'PKCS12', '-keystore', keystore, '-storepass', keystorePassword, '-keypass', keystorePassword], 'pipe');
    run('keytool', ['-exportcert', '-rfc', '-alias', 'thrift', '-keystore', keystore, '-storepass', keystorePassword, '-file', certificatePem], 'pipe');
  });
  const sitePackages = join(venv, 'lib', readdirSync(join(venv, 'lib')).find((d) => d.startsWith('python'))!, 'site-packages');
  const sparkHome = join(sitePackages, 'pyspark');
  const deltaJars = readdirSync(jarsDir).filter((f) => f.endsWith('.jar')).map((f) => join(jarsDir, f));
  if (!existsSync(join(sparkHome, 'bin', 'spark-submit'))) throw new Error(`pyspark is installed but ${join(sparkHome, 'bin', 'spark-submit')} is missing; delete ${REAL_DELTA_CACHE_DIR} and run npm run setup:delta again`);
  if (deltaJars.length !== DELTA_JARS.length) throw new Error(`expected ${DELTA_JARS.length} Delta jars in ${jarsDir}, found ${deltaJars.length}; delete ${REAL_DELTA_CACHE_DIR} and run npm run setup:delta again`);
  return { python, sparkHome, deltaJars, keystore, keystorePassword, certificatePem };
}

function step(progress: Progress, name: string, marker: string, install: () => void): void {
  if (existsSync(marker)) {
    progress(`${name}: cached`);
    return;
  }
  const started = Date.now();
  install();
  writeFileSync(marker, new Date().toISOString());
  progress(`${name}: installed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function run(command: string, args: string[], stdio: 'pipe' | 'inherit'): void {
  const result = spawnSync(command, args, { stdio: ['ignore', stdio, stdio], encoding: 'utf8' });
  if (result.error) throw new Error(`${command} could not start: ${result.error.message}`);
  if (result.status !== 0) {
    const output = stdio === 'pipe' ? `\n${(result.stderr || result.stdout || '').slice(-2000)}` : '';
    throw new Error(`${command} ${args.slice(0, 3).join(' ')} … exited with ${result.status}${output}`);
  }
}
