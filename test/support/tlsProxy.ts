import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { connect as http2Connect, constants as http2Constants, createSecureServer, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

/**
 * TLS in front of a Temporal dev server (which has no TLS of its own): a real TLS terminator on
 * loopback, offering HTTP/2 as gRPC requires, optionally demanding a client certificate signed by
 * the CA (mTLS). Certificates are made by openssl for each test run.
 */
export interface Certificates {
  dir: string;
  caCert: string;
  /** A CA that signed nothing here: a client trusting it must refuse the server. */
  otherCaCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'cdf-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ca = (name: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.crt`));
  const signed = (name: string, extensions: string) => {
    writeFileSync(file(`${name}.ext`), extensions);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    openssl('x509', '-req', '-in', file(`${name}.csr`), '-CA', file('test-ca.crt'), '-CAkey', file('test-ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`));
  };
  ca('test-ca');
  ca('other-ca');
  signed('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed('client', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    caCert: file('test-ca.crt'),
    otherCaCert: file('other-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
  };
}

export interface TlsProxy {
  address: string;
  close(): Promise<void>;
}

export async function startTlsProxy(target: string, certificates: Certificates, options: { requireClientCertificate?: boolean } = {}): Promise<TlsProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const mtls = options.requireClientCertificate ?? false;
  const sockets = new Set<{ destroy(): void }>();
  const server = createServer(
    {
      key: readFileSync(certificates.serverKey),
      cert: readFileSync(certificates.serverCert),
      ALPNProtocols: ['h2'],
      ...(mtls ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(certificates.caCert) } : {}),
    },
    (socket) => {
      sockets.add(socket);
      const upstream = connect(port, host);
      sockets.add(upstream);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
      socket.on('close', close);
      upstream.on('close', close);
    },
  );
  server.on('tlsClientError', () => undefined); // a refused client is the point of some tests
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        (server as unknown as NetServer).close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

export interface ApiKeyProxy extends TlsProxy {
  /** Every gRPC call that reached the proxy, in order: its method, `authorization` and `user-agent` headers. */
  calls: { path: string; authorization: string; userAgent: string }[];
}

/**
 * An API-key gate in front of the dev server, as Temporal Cloud checks keys: TLS, then each gRPC
 * call's `authorization: Bearer <key>` header; a call without the right key ends with gRPC status
 * 16 (UNAUTHENTICATED), any other is forwarded over HTTP/2 to the dev server, trailers included.
 */
export async function startApiKeyProxy(target: string, certificates: Certificates, apiKey: string): Promise<ApiKeyProxy> {
  // One upstream session, opened again once the server closes it (Temporal sends GOAWAY to idle or old connections).
  let upstream: ClientHttp2Session | undefined;
  const session = () => {
    if (!upstream || upstream.closed || upstream.destroyed) {
      upstream = http2Connect(`http://${target}`);
      upstream.on('error', () => undefined); // a call in flight fails on its own stream
      upstream.on('goaway', () => upstream?.close());
    }
    return upstream;
  };
  const unavailable = (stream: ServerHttp2Stream) => {
    try {
      if (!stream.headersSent) stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'proxy: upstream unavailable' }, { endStream: true });
      else stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
    } catch {
      // the caller is gone already
    }
  };
  const calls: ApiKeyProxy['calls'] = [];
  const server = createSecureServer({ key: readFileSync(certificates.serverKey), cert: readFileSync(certificates.serverCert) });
  const sessions = new Set<{ destroy(): void }>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const authorization = String(headers['authorization'] ?? '');
    calls.push({ path: String(headers[':path']), authorization, userAgent: String(headers['user-agent'] ?? '') });
    if (authorization !== `Bearer ${apiKey}`) {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'Request unauthorized.' }, { endStream: true });
      return;
    }
    let call: ClientHttp2Stream;
    try {
      call = session().request({ ...headers, ':scheme': 'http', ':authority': target });
    } catch {
      return unavailable(stream);
    }
    let trailers: IncomingHttpHeaders = {};
    call.on('trailers', (received) => (trailers = received));
    call.on('response', (responseHeaders) => {
      if (stream.closed) return;
      try {
        // A trailers-only answer (an error) carries its grpc-status in the headers and ends there.
        if (responseHeaders['grpc-status'] !== undefined) return stream.respond(responseHeaders, { endStream: true });
        stream.respond(responseHeaders, { waitForTrailers: true });
        stream.on('wantTrailers', () => {
          try {
            stream.sendTrailers(withoutPseudoHeaders(trailers));
          } catch {
            // the caller is gone already
          }
        });
        call.pipe(stream);
      } catch {
        unavailable(stream);
      }
    });
    call.on('error', () => unavailable(stream));
    stream.on('close', () => call.close());
    stream.pipe(call);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        upstream?.destroy();
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
      }),
  };
}

function withoutPseudoHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !name.startsWith(':')));
}
