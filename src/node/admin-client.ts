/**
 * The admin API client of the CLI and the controller manager: one HTTP exchange (src/node/http-request.ts,
 * as the agent's) with a timeout and a bearer credential, turning every failure (issuer error JSON, unreachable server, timeout,
 * non-JSON answer) into a one-line `WispError` carrying the issuer's code and message
 * (src/node/issuer-response.ts). Redirects are not followed: the bearer credential goes to the
 * configured issuer only.
 * @module
 */
import { httpRequest, HttpRequestError, type HttpResponse } from './http-request.js';
import { issuerError, parseJsonBody } from './issuer-response.js';
import { WispError } from '../shared/errors.js';

/** Largest admin API answer read, bytes (a page of entries is far smaller). */
export const MAX_ADMIN_RESPONSE_BYTES = 64 * 1024 * 1024;

export interface AdminClientOptions {
  /** issuer base URL without a trailing slash */
  serverUrl: string;
  /** the bearer credential: the admin token, or an admin JWT-SVID fetched on first use */
  credential: () => Promise<string>;
  timeoutMs: number;
}

export type QueryValue = string | number | boolean | undefined | readonly string[];

export interface AdminRequest {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** send no Authorization header (public endpoints such as /healthz) */
  anonymous?: boolean;
}

export interface AdminClient {
  readonly serverUrl: string;
  /** Calls `path` (relative to the server URL) and returns the parsed JSON body; throws `WispError`. */
  request<T>(method: string, path: string, req?: AdminRequest): Promise<T>;
}

function buildUrl(base: string, path: string, query: AdminRequest['query']): URL {
  const url = new URL(base + path);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
    else url.searchParams.set(key, String(value));
  }
  return url;
}

/**
 * Creates a client for the admin API.
 * @example const client = createAdminClient({ serverUrl, credential: async () => token, timeoutMs: 30_000 });
 *          const { entries } = await client.request('GET', '/admin/v1/entries');
 */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  return {
    serverUrl: options.serverUrl,
    async request<T>(method: string, path: string, req: AdminRequest = {}): Promise<T> {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (!req.anonymous) headers['authorization'] = `Bearer ${await options.credential()}`;
      const body = req.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(req.body));
      if (body) headers['content-type'] = 'application/json';
      let res: HttpResponse;
      try {
        res = await httpRequest({
          url: buildUrl(options.serverUrl, path, req.query),
          method,
          headers,
          ...(body ? { body } : {}),
          timeoutMs: options.timeoutMs,
          maxResponseBytes: MAX_ADMIN_RESPONSE_BYTES,
        });
      } catch (e) {
        if (e instanceof HttpRequestError && e.kind === 'timeout') {
          throw new WispError('ERR_UNAVAILABLE', `the issuer at ${options.serverUrl} did not answer within ${options.timeoutMs / 1000}s`);
        }
        const reason = e instanceof HttpRequestError ? (e.code ?? e.message) : String(e);
        throw new WispError('ERR_UNAVAILABLE', `cannot reach the issuer at ${options.serverUrl} (${reason})`);
      }
      const json = parseJsonBody(res.text);
      if (res.status < 200 || res.status > 299) {
        const { code, message } = issuerError(res.status, json);
        throw new WispError(code, message ?? `${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim());
      }
      if (json === undefined && res.text !== '') {
        throw new WispError('ERR_UNAVAILABLE', `${method} ${path}: the issuer answered with something that is not JSON`);
      }
      return json as T;
    },
  };
}
