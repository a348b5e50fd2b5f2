/**
 * The CLI's only way to the issuer: `fetch` with a timeout and a bearer credential, turning every failure
 * (issuer error JSON, unreachable server, timeout, non-JSON answer) into a one-line `WispError` carrying the
 * issuer's code and message.
 * @module
 */
import { WispError, type WispErrorCode } from '../shared/errors.js';

export interface AdminClientOptions {
  /** issuer base URL without a trailing slash */
  serverUrl: string;
  /** the bearer credential: the admin token, or an admin JWT-SVID fetched on first use */
  credential: () => Promise<string>;
  timeoutMs: number;
  fetch?: typeof fetch;
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

/** Fallback codes for error answers that carry no Wisp error JSON (a proxy, a crash). */
function codeForStatus(status: number): WispErrorCode {
  if (status === 401) return 'ERR_UNAUTHENTICATED';
  if (status === 403) return 'ERR_PERMISSION_DENIED';
  if (status === 404) return 'ERR_NOT_FOUND';
  if (status === 413) return 'ERR_REQUEST_TOO_LARGE';
  if (status >= 500) return 'ERR_UNAVAILABLE';
  return 'ERR_BAD_REQUEST';
}

function buildUrl(base: string, path: string, query: AdminRequest['query']): string {
  const url = new URL(base + path);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) url.searchParams.append(key, v);
    else url.searchParams.set(key, String(value));
  }
  return url.toString();
}

function describeNetworkError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message ?? String(e);
}

/**
 * Creates a client for the admin API.
 * @example const client = createAdminClient({ serverUrl, credential: async () => token, timeoutMs: 30_000 });
 *          const { entries } = await client.request('GET', '/admin/v1/entries');
 */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  const doFetch = options.fetch ?? fetch;
  return {
    serverUrl: options.serverUrl,
    async request<T>(method: string, path: string, req: AdminRequest = {}): Promise<T> {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (!req.anonymous) headers['authorization'] = `Bearer ${await options.credential()}`;
      if (req.body !== undefined) headers['content-type'] = 'application/json';
      let res: Response;
      let text: string;
      try {
        res = await doFetch(buildUrl(options.serverUrl, path, req.query), {
          method,
          headers,
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        text = await res.text();
      } catch (e) {
        if ((e as Error).name === 'TimeoutError') {
          throw new WispError('ERR_UNAVAILABLE', `the issuer at ${options.serverUrl} did not answer within ${options.timeoutMs / 1000}s`);
        }
        throw new WispError('ERR_UNAVAILABLE', `cannot reach the issuer at ${options.serverUrl} (${describeNetworkError(e)})`);
      }
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
        if (error && typeof error.code === 'string' && typeof error.message === 'string') {
          throw new WispError(error.code as WispErrorCode, error.message);
        }
        throw new WispError(codeForStatus(res.status), `${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim());
      }
      if (json === undefined && text !== '') {
        throw new WispError('ERR_UNAVAILABLE', `${method} ${path}: the issuer answered with something that is not JSON`);
      }
      return json as T;
    },
  };
}
