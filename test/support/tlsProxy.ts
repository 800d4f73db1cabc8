import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';

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
