import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { LocalLakehouse } from '../../src/lakehouse/local/localLakehouse';
import { ROOT, runCdf, writeConfigFile } from '../support/cli';
import { testConfig } from '../support/pipeline';
import { makeCertificates, startApiKeyProxy, startTlsProxy, type ApiKeyProxy, type Certificates, type TlsProxy } from '../support/tlsProxy';
import { writeRandomTraffic } from '../support/traffic';
import { eventually } from '../support/eventually';

/**
 * The worker and the CLI on a Temporal reached over TLS, as on a self-hosted cluster or Temporal
 * Cloud: a real TLS terminator (self-signed CA made for the run) in front of the dev server, with
 * and without a required client certificate, and the settings of `temporal.tls`.
 */
describe('Temporal over TLS', () => {
  let certs: Certificates;
  let tls: TlsProxy;
  let mtls: TlsProxy;
  let keyed: ApiKeyProxy;
  const API_KEY = 'cdf-test-key-4f1c9a7e';
  let base: Config;
  const worker: { process?: ChildProcess; log: string } = { log: '' };
  // runCdf points the CLI at the shared dev server through TEMPORAL_ADDRESS; here the config's address counts.
  const cdf = (args: string[], env: NodeJS.ProcessEnv = {}) => runCdf(args, { TEMPORAL_ADDRESS: '', ...env });
  const withTls = (address: string, settings: Record<string, unknown>): Config => parseConfig({ ...base, temporal: { ...base.temporal, address, tls: settings } });

  beforeAll(async () => {
    certs = makeCertificates();
    tls = await startTlsProxy(process.env.CDF_TEST_TEMPORAL_ADDRESS!, certs);
    mtls = await startTlsProxy(process.env.CDF_TEST_TEMPORAL_ADDRESS!, certs, { requireClientCertificate: true });
    keyed = await startApiKeyProxy(process.env.CDF_TEST_TEMPORAL_ADDRESS!, certs, API_KEY);
    base = testConfig({ sources: [{ name: 'orders', table: 'upstream.orders' }] });
    const lakehouse = await LocalLakehouse.open(base.lakehouse.local.path, base.tables);
    await lakehouse.ensurePipelineTables();
    await writeRandomTraffic(lakehouse, base.sources[0]!, { commits: 3, maxOpsPerCommit: 5, idSpace: 50, seed: 71 });
    await lakehouse.close();
  });

  afterAll(async () => {
    if (worker.process && worker.process.exitCode === null) {
      worker.process.kill('SIGTERM');
      await new Promise((resolve) => worker.process!.once('exit', resolve));
    }
    await tls?.close();
    await mtls?.close();
    await keyed?.close();
  });

  it('runs a worker process and `cdf sources apply` / `cdf status` through TLS with the CA of temporal.tls.serverCaCertPath', async () => {
    const configFile = writeConfigFile(withTls(tls.address, { serverCaCertPath: certs.caCert }));
    worker.process = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env: { ...process.env, CDF_CONFIG: configFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.process.stdout!.on('data', (chunk) => (worker.log += chunk));
    worker.process.stderr!.on('data', (chunk) => (worker.log += chunk));
    await eventually(async () => (/"msg":"worker started"/.test(worker.log) ? true : undefined), 60_000, () => worker.log);

    const applied = await cdf(['sources', 'apply', '--config', configFile]);
    expect(applied.code).toBe(0);
    const caughtUp = await eventually(async () => {
      const result = await cdf(['status', 'orders', '--json', '--config', configFile]);
      const status = result.code === 0 ? JSON.parse(result.stdout) : null;
      return status && status.latestVersion !== null && status.offsetVersion === status.latestVersion ? status : undefined;
    }, 60_000);
    expect(caughtUp.totals.registryRowsInserted).toBeGreaterThan(0);
    expect(worker.log).not.toMatch(/"level":50/); // no error logged by the worker
  });

  it('refuses a server whose certificate another CA signed, naming temporal.tls.serverCaCertPath', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(tls.address, { serverCaCertPath: certs.otherCaCert }))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to Temporal at 127\.0\.0\.1:\d+ over TLS \(.*\): the server's certificate is not signed by the CA in temporal\.tls\.serverCaCertPath \(.*other-ca\.crt\)/);
  });

  it('names clientCertPath and clientKeyPath when the server asks for a client certificate and none is set', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(mtls.address, { serverCaCertPath: certs.caCert }))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/over TLS \(.*\): the server asks for a client certificate \(mTLS\): set temporal\.tls\.clientCertPath and clientKeyPath/);
  });

  it('connects with the client certificate of clientCertPath and clientKeyPath (mTLS)', async () => {
    const config = withTls(mtls.address, { serverCaCertPath: certs.caCert, clientCertPath: certs.clientCert, clientKeyPath: certs.clientKey });
    const result = await cdf(['status', 'orders', '--json', '--config', writeConfigFile(config)]);
    expect(result.stderr).not.toMatch(/cdf: |"error"/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(expect.objectContaining({ source: 'orders' }));
  });

  it('takes the TLS settings from the Temporal CLI\'s environment variables', async () => {
    const result = await cdf(['status', 'orders', '--json', '--config', writeConfigFile(base)], {
      TEMPORAL_ADDRESS: mtls.address,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
    });
    expect(result.stderr).not.toMatch(/cdf: |"error"/);
    expect(result.code).toBe(0);
  });

  it('says the server does not speak TLS when TLS is on against a plain port', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(process.env.CDF_TEST_TEMPORAL_ADDRESS!, { enabled: true }))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/over TLS \(.*\): the server does not speak TLS there: set temporal\.tls\.enabled to false/);
  });

  it('says the server speaks TLS when TLS is off against a TLS port', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(tls.address, {}))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to Temporal at 127\.0\.0\.1:\d+ \(.*\): the server speaks TLS there: set temporal\.tls/);
  });

  it('names the setting and the path of a certificate file that does not exist', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(tls.address, { serverCaCertPath: join(certs.dir, 'missing.crt') }))]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/temporal\.tls\.serverCaCertPath: cannot read .*missing\.crt \(ENOENT\): fix the path/);
  });
  it('sends TEMPORAL_API_KEY as a bearer token on every call of the CLI, and prints it nowhere', async () => {
    const before = keyed.calls.length;
    const result = await cdf(['status', 'orders', '--json', '--config', writeConfigFile(withTls(keyed.address, { serverCaCertPath: certs.caCert }))], { TEMPORAL_API_KEY: API_KEY });
    expect(result.stderr).not.toMatch(/cdf: |"error"/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(expect.objectContaining({ source: 'orders' }));
    const calls = keyed.calls.slice(before);
    expect(calls.length).toBeGreaterThan(0);
    expect(new Set(calls.map((call) => call.authorization))).toEqual(new Set([`Bearer ${API_KEY}`]));
    expect(result.stdout + result.stderr).not.toContain(API_KEY);
  });

  it('runs a worker process with TEMPORAL_API_KEY through the key check, without the key in its log', async () => {
    // The TLS worker of the first test holds the lakehouse file: stop it first.
    if (worker.process && worker.process.exitCode === null) {
      worker.process.kill('SIGTERM');
      await new Promise((resolve) => worker.process!.once('exit', resolve));
    }
    const before = keyed.calls.length;
    const configFile = writeConfigFile(withTls(keyed.address, { serverCaCertPath: certs.caCert }));
    worker.log = '';
    worker.process = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'worker.ts')], { cwd: ROOT, env: { ...process.env, CDF_CONFIG: configFile, TEMPORAL_API_KEY: API_KEY }, stdio: ['ignore', 'pipe', 'pipe'] });
    worker.process.stdout!.on('data', (chunk) => (worker.log += chunk));
    worker.process.stderr!.on('data', (chunk) => (worker.log += chunk));
    await eventually(async () => (/"msg":"worker started"/.test(worker.log) ? true : undefined), 60_000, () => worker.log);
    // The only worker left is this one: a status query is answered only if it polls through the key check.
    const status = await eventually(async () => {
      const result = await cdf(['status', 'orders', '--json', '--config', configFile], { TEMPORAL_API_KEY: API_KEY });
      return result.code === 0 ? (JSON.parse(result.stdout) as { source: string }) : undefined;
    }, 60_000);
    expect(status.source).toBe('orders');
    const calls = keyed.calls.slice(before);
    // The worker's own connection (the SDK core's gRPC client, not the CLI's grpc-js) polled through the key check.
    const workerPolls = calls.filter((call) => /PollWorkflowTaskQueue/.test(call.path) && !/grpc-node-js/.test(call.userAgent));
    expect(workerPolls.length).toBeGreaterThan(0);
    expect(new Set(calls.map((call) => call.authorization))).toEqual(new Set([`Bearer ${API_KEY}`]));
    expect(worker.log).not.toContain(API_KEY);
    expect(worker.log).not.toMatch(/"level":50/);
  });

  it('names TEMPORAL_API_KEY when the server refuses the key, without printing the key', async () => {
    const wrong = 'cdf-wrong-key-0b7d';
    const result = await cdf(['status', '--config', writeConfigFile(withTls(keyed.address, { serverCaCertPath: certs.caCert }))], { TEMPORAL_API_KEY: wrong });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot connect to Temporal at 127\.0\.0\.1:\d+ over TLS \(.*UNAUTHENTICATED.*\): the server refused the API key in TEMPORAL_API_KEY/);
    expect(result.stdout + result.stderr).not.toContain(wrong);
  });

  it('says the server wants credentials when it asks for a key and none is set', async () => {
    const result = await cdf(['status', '--config', writeConfigFile(withTls(keyed.address, { serverCaCertPath: certs.caCert }))], { TEMPORAL_API_KEY: '' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/the server wants credentials: set TEMPORAL_API_KEY/);
  });
});
