import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load';
import { connectionSettings } from '../../src/temporal/connection';

const sources = [{ name: 'orders', table: 'upstream.orders' }];

function configFile(temporal: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-conn-'));
  const file = join(dir, 'cdf.config.json');
  writeFileSync(file, JSON.stringify({ temporal, sources }));
  writeFileSync(join(dir, 'ca.pem'), 'CA');
  writeFileSync(join(dir, 'client.pem'), 'CERT');
  writeFileSync(join(dir, 'client.key'), 'KEY');
  return file;
}

describe('the connection settings', () => {
  it('are plain (no TLS, no API key) by default', () => {
    expect(connectionSettings(parseConfig({ sources }), {})).toEqual({ address: '127.0.0.1:7233', tls: false, apiKey: undefined });
  });

  it('turn TLS on with the API key of TEMPORAL_API_KEY, which never enters the config', () => {
    const config = loadConfig({ file: configFile({ address: 'ns.acct.tmprl.cloud:7233' }), env: { TEMPORAL_API_KEY: 'secret-key' } });
    expect(JSON.stringify(config)).not.toContain('secret-key');
    expect(connectionSettings(config, { TEMPORAL_API_KEY: 'secret-key' })).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: {}, apiKey: 'secret-key' });
  });

  it('keep TLS off with an API key when temporal.tls.enabled is false', () => {
    const config = parseConfig({ sources, temporal: { tls: { enabled: false } } });
    expect(connectionSettings(config, { TEMPORAL_API_KEY: 'k' }).tls).toBe(false);
  });

  it('read the CA and the client pair from paths relative to the config file', () => {
    const config = loadConfig({ file: configFile({ tls: { serverCaCertPath: 'ca.pem', clientCertPath: 'client.pem', clientKeyPath: 'client.key', serverNameOverride: 'temporal.internal' } }), env: {} });
    const settings = connectionSettings(config, {});
    expect(settings.tls).toEqual({
      serverNameOverride: 'temporal.internal',
      serverRootCACertificate: Buffer.from('CA'),
      clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
    });
  });

  it('take TEMPORAL_TLS and the TEMPORAL_TLS_* paths from the environment', () => {
    const file = configFile({});
    const dir = join(file, '..');
    const config = loadConfig({ file, env: { TEMPORAL_TLS: 'true', TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'ca.pem'), TEMPORAL_TLS_SERVER_NAME: 'frontend' } });
    expect(config.temporal.tls).toEqual({ enabled: true, serverCaCertPath: join(dir, 'ca.pem'), serverNameOverride: 'frontend' });
  });
});

describe('the temporal section refuses', () => {
  const problems = (temporal: Record<string, unknown>) => {
    try {
      parseConfig({ sources, temporal });
    } catch (error) {
      return (error as ConfigError).problems;
    }
    throw new Error('accepted');
  };

  it('an API key in the file, without echoing it, pointing at TEMPORAL_API_KEY', () => {
    expect(problems({ apiKey: 'do-not-print' })).toEqual(['temporal.apiKey: got "(hidden)"; secrets do not belong in the config file: remove it and set the environment variable TEMPORAL_API_KEY for the worker and the CLI']);
  });

  it('a client certificate without its key, naming the missing field', () => {
    expect(problems({ tls: { clientCertPath: 'client.pem' } })).toEqual(['temporal.tls.clientKeyPath: missing; mTLS needs both clientCertPath and clientKeyPath: give the other one too, or neither']);
  });

  it('a TEMPORAL_TLS value that is not true or false', () => {
    expect(() => loadConfig({ file: configFile({}), env: { TEMPORAL_TLS: 'yes' } })).toThrow(/temporal\.tls\.enabled: got "yes"; must be true or false/);
  });
});
