import { z } from 'zod';
import { PermanentError, TransientError } from '../errors';
import type { DatabricksAuthConfig } from './connection';

/** Hands out a bearer token for the workspace REST API. */
export interface TokenProvider {
  token(): Promise<string>;
}

export interface TokenProviderOptions {
  /** The clock used for token expiry; tests move it forward. */
  now?: () => number;
}

/** Databricks access tokens last an hour; refreshing a minute early keeps a slow request from carrying an expired one. */
const REFRESH_MARGIN_MS = 60_000;

// RFC 6749 §5.1 token response; Databricks answers {access_token, token_type: "Bearer", expires_in: 3600, scope}.
const tokenResponseSchema = z.object({
  access_token: z.string().min(1),
  expires_in: z.number().positive(),
});

// RFC 6749 §5.2 error response.
const tokenErrorSchema = z.object({ error: z.string(), error_description: z.string().optional() });

/**
 * A token provider for the configured credentials. A personal access token is returned as is. A
 * service principal (OAuth M2M) gets a workspace-level token from `${baseUrl}/oidc/v1/token` with
 * the client-credentials grant and scope `all-apis`; the token is cached until a minute before it
 * expires, and concurrent callers share one refresh. Errors name the failure, never the secret or
 * a token.
 */
export function createTokenProvider(
  auth: DatabricksAuthConfig,
  baseUrl: string,
  fetchImpl: typeof fetch = fetch,
  options: TokenProviderOptions = {},
): TokenProvider {
  if (auth.kind === 'pat') {
    const token = auth.token;
    return { token: async () => token };
  }
  const { clientId, clientSecret } = auth;
  const now = options.now ?? Date.now;
  const endpoint = `${baseUrl}/oidc/v1/token`;
  let cached: { token: string; refreshAt: number } | undefined;
  let refreshing: Promise<string> | undefined;

  async function requestToken(): Promise<string> {
    const requestedAt = now();
    let response: Response;
    try {
      response = await fetchImpl(endpoint, {
        method: 'POST',
        headers: {
          Authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'all-apis' }).toString(),
      });
    } catch (error) {
      throw new TransientError('DATABRICKS_OAUTH_NETWORK', `could not reach the Databricks token endpoint ${endpoint}: ${networkReason(error)}`);
    }
    const text = await response.text();
    if (!response.ok) throw tokenRequestFailed(response.status, text, endpoint, clientId);
    const parsed = tokenResponseSchema.safeParse(safeJson(text));
    if (!parsed.success) {
      throw new PermanentError(
        'DATABRICKS_OAUTH_UNEXPECTED_RESPONSE',
        `the Databricks token endpoint ${endpoint} answered without access_token/expires_in`,
        'check that DATABRICKS_HOST points at the workspace URL (not the account console or a proxy page)',
      );
    }
    cached = { token: parsed.data.access_token, refreshAt: requestedAt + parsed.data.expires_in * 1000 - REFRESH_MARGIN_MS };
    return cached.token;
  }

  return {
    async token(): Promise<string> {
      if (cached && now() < cached.refreshAt) return cached.token;
      refreshing ??= requestToken().finally(() => (refreshing = undefined));
      return refreshing;
    },
  };
}

function tokenRequestFailed(status: number, body: string, endpoint: string, clientId: string): Error {
  const parsed = tokenErrorSchema.safeParse(safeJson(body));
  const reason = parsed.success ? `${parsed.data.error}${parsed.data.error_description ? `: ${parsed.data.error_description}` : ''}` : `HTTP ${status}`;
  const message = `the Databricks token endpoint ${endpoint} refused client id ${clientId} (HTTP ${status}, ${reason.slice(0, 300)})`;
  if (status === 429 || status >= 500) return new TransientError(`DATABRICKS_OAUTH_${status}`, message);
  return new PermanentError(
    parsed.success ? `DATABRICKS_OAUTH_${parsed.data.error.toUpperCase()}` : `DATABRICKS_OAUTH_${status}`,
    message,
    'check DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (an OAuth secret of a service principal that is assigned to this workspace), then restart the worker',
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Node's fetch reports "fetch failed" and puts the reason (ECONNREFUSED, a TLS error, ...) in `cause`. */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: string } | undefined)?.code;
  const message = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return code && !message.includes(code) ? `${code} ${message}` : message;
}
