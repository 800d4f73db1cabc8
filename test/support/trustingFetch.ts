import { readFileSync } from 'node:fs';
import { request } from 'node:https';

/**
 * `fetch` over node:https that trusts one extra CA, for a Databricks client in the test process
 * talking to the fake workspace's self-signed certificate (Node reads NODE_EXTRA_CA_CERTS only at
 * start-up). It implements what the Jobs client uses: method, headers, a string body, the signal.
 */
export function fetchTrusting(caFile: string): typeof fetch {
  const ca = readFileSync(caFile);
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers, ca, signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
          resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: responseHeaders }));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (typeof init.body === 'string') req.write(init.body);
      req.end();
    });
  }) as typeof fetch;
}
