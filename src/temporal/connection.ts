import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import { Connection, type TLSConfig } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config/schema';

/*
 * The one place that turns `temporal` settings into a connection, for the worker, the CLI and
 * every script: address, TLS (server CA, mTLS client pair, server name) and the API key, which
 * is read from TEMPORAL_API_KEY at connect time and never enters the config object, a log line
 * or a workflow.
 */

/** A connection that could not be made, with the setting most likely at fault. */
export class TemporalConnectionError extends Error {
  override readonly name = 'TemporalConnectionError';
}

export interface ConnectionSettings {
  address: string;
  tls: TLSConfig | false;
  apiKey?: string;
}

/** Reads the certificate files the config names; a missing or unreadable one is named with its setting. */
export function connectionSettings(config: Config, env: NodeJS.ProcessEnv = process.env): ConnectionSettings {
  const { tls } = config.temporal;
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const enabled = tls.enabled ?? Boolean(tls.serverCaCertPath || tls.clientCertPath || tls.serverNameOverride || apiKey);
  if (!enabled) return { address: config.temporal.address, tls: false, apiKey };
  const read = (setting: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new TemporalConnectionError(`temporal.tls.${setting}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): fix the path in the config or its TEMPORAL_TLS_* variable`);
    }
  };
  return {
    address: config.temporal.address,
    apiKey,
    tls: {
      ...(tls.serverNameOverride ? { serverNameOverride: tls.serverNameOverride } : {}),
      ...(tls.serverCaCertPath ? { serverRootCACertificate: read('serverCaCertPath', tls.serverCaCertPath) } : {}),
      ...(tls.clientCertPath && tls.clientKeyPath ? { clientCertPair: { crt: read('clientCertPath', tls.clientCertPath), key: read('clientKeyPath', tls.clientKeyPath) } } : {}),
    },
  };
}

/** A client connection (the CLI, scripts, npm start's client). */
export async function connectClient(config: Config, options: { connectTimeout?: Duration } = {}): Promise<Connection> {
  const settings = connectionSettings(config);
  try {
    return await Connection.connect({ ...settings, connectTimeout: options.connectTimeout });
  } catch (error) {
    throw await explain(error, config, settings);
  }
}

/** A worker connection (the worker, npm start's worker). */
export async function connectWorker(config: Config): Promise<NativeConnection> {
  const settings = connectionSettings(config);
  try {
    return await NativeConnection.connect(settings);
  } catch (error) {
    throw await explain(error, config, settings);
  }
}

/**
 * Names the setting a failed connection points at. The gRPC clients say little ("Failed to
 * connect before the deadline"), so the TLS handshake is tried again here, with the same
 * certificates, and its error code read.
 */
async function explain(error: unknown, config: Config, settings: ConnectionSettings): Promise<TemporalConnectionError> {
  const cause = (error as { cause?: Error }).cause;
  // The client wraps the gRPC status in a cause ("Failed to connect to Temporal server"): show both.
  const message = [error, cause].filter(Boolean).map((e) => ((e as Error).message ?? String(e)).split('\n')[0]).join(': ');
  const where = `Temporal at ${settings.address}${settings.tls ? ' over TLS' : ''}`;
  const probe = await probeTls(settings);
  const tls = config.temporal.tls;
  let fix: string;
  if (credentialsRefused(error) || credentialsRefused(cause)) {
    // The handshake went through: the server refused the call's credentials.
    if (settings.apiKey) {
      fix = 'the server refused the API key in TEMPORAL_API_KEY: set a valid key for this namespace (a Temporal Cloud key belongs to a user or service account, and expires)';
    } else if (settings.tls && settings.tls.clientCertPair) {
      fix = 'the server refused the client certificate of temporal.tls.clientCertPath for this namespace: use one its CA signed for it, or set TEMPORAL_API_KEY if the server takes API keys';
    } else {
      fix = 'the server wants credentials: set TEMPORAL_API_KEY to an API key (or temporal.tls.clientCertPath and clientKeyPath for mTLS)';
    }
  } else if (probe === 'refused') {
    fix = 'nothing listens there: start it (npm start runs a dev server) or set temporal.address in the config or TEMPORAL_ADDRESS';
  } else if (probe === 'untrusted') {
    fix = `the server's certificate is not signed by the CA in temporal.tls.serverCaCertPath (${tls.serverCaCertPath ?? 'not set: the system CAs'}): point it (or TEMPORAL_TLS_SERVER_CA_CERT_PATH) at the CA that signed the server's certificate`;
  } else if (probe === 'wrongName') {
    fix = "the server's certificate is for another name: set temporal.tls.serverNameOverride (TEMPORAL_TLS_SERVER_NAME) to the name in it";
  } else if (probe === 'clientCertificateRefused') {
    fix = settings.tls && settings.tls.clientCertPair
      ? 'the server refused the client certificate: check temporal.tls.clientCertPath and clientKeyPath (a certificate its CA signed, with its key)'
      : 'the server asks for a client certificate (mTLS): set temporal.tls.clientCertPath and clientKeyPath';
  } else if (probe === 'notTls') {
    fix = 'the server does not speak TLS there: set temporal.tls.enabled to false (TEMPORAL_TLS=false), or use its TLS port';
  } else if (probe === 'tlsServer') {
    fix = 'the server speaks TLS there: set temporal.tls (at least serverCaCertPath for a private CA, or enabled: true) or TEMPORAL_TLS=true';
  } else {
    fix = 'start it (npm start runs a dev server) or set temporal.address in the config or TEMPORAL_ADDRESS';
  }
  return new TemporalConnectionError(`cannot connect to ${where} (${message}): ${fix}`);
}

/**
 * gRPC status 16 (UNAUTHENTICATED) or 7 (PERMISSION_DENIED): from the client's grpc-js error (its
 * `code`), or in the text of the worker's core error ("status: Unauthenticated").
 */
function credentialsRefused(error: unknown): boolean {
  if (!error) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 16 || code === 7) return true;
  return /\bUNAUTHENTICATED\b|\bPERMISSION_?DENIED\b|status: (Unauthenticated|PermissionDenied)\b/i.test((error as Error).message ?? '');
}

type Probe = 'refused' | 'untrusted' | 'wrongName' | 'clientCertificateRefused' | 'notTls' | 'tlsServer' | 'ok' | 'unknown';

/** One TLS handshake to the address (with the configured certificates when TLS is on), classified. */
function probeTls(settings: ConnectionSettings): Promise<Probe> {
  const separator = settings.address.lastIndexOf(':');
  const host = settings.address.slice(0, separator);
  const port = Number(settings.address.slice(separator + 1));
  const tls = settings.tls || {};
  const servername = tls.serverNameOverride ?? (isIP(host) ? undefined : host);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      ...(servername ? { servername } : {}),
      ALPNProtocols: ['h2'],
      ...(tls.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
      ...(tls.clientCertPair ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) } : {}),
      // Trust and name are checked below, so an unknown CA, a wrong name and TLS where none was expected are told apart.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const done = (probe: Probe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(probe);
    };
    const timer = setTimeout(() => done('unknown'), 3000);
    socket.once('secureConnect', () => {
      if (!settings.tls) return done('tlsServer');
      if (!socket.authorized) return done(classify(String(socket.authorizationError ?? '')));
      const certificate = socket.getPeerCertificate();
      if (checkServerIdentity(servername ?? host, certificate)) return done('wrongName');
      // TLS 1.3: a server refuses a client certificate after the handshake, with an alert.
      setTimeout(() => done('ok'), 300);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done(settings.tls ? classify(`${error.code ?? ''} ${error.message}`) : 'notTls'));
  }).then((probe) => (probe === 'notTls' && !settings.tls ? 'unknown' : probe)) as Promise<Probe>;
}

function classify(error: string): Probe {
  if (/ECONNREFUSED/.test(error)) return 'refused';
  if (/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED|unable to verify/i.test(error)) return 'untrusted';
  if (/ALTNAME|hostname/i.test(error)) return 'wrongName';
  if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|certificate required|bad certificate|unknown ca/i.test(error)) return 'clientCertificateRefused';
  if (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|ECONNRESET|wrong version number|packet length/i.test(error)) return 'notTls';
  return 'unknown';
}
