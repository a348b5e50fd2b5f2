/**
 * One HTTP exchange with node:http / node:https, for the agent's calls (the issuer's agent API, cloud
 * metadata services) and the CLI's (the admin API): a timeout over the whole exchange, a cap on the
 * response body, no redirects (a bearer credential is never sent on to another place), and failures
 * sorted by kind so callers word them.
 *
 * The agent does not use the global `fetch`: its first call loads undici (Node's fetch), which added ~9 MB
 * to the agent's RSS for two or three requests a sync interval (docs/performance.md, agent RSS). Node's
 * global agents keep connections alive as fetch did (idle sockets closed after 5 s, or before the server's
 * `Keep-Alive: timeout` hint), and an idle socket does not keep the process running.
 * @module
 */
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { StringDecoder } from 'node:string_decoder';

export interface HttpRequest {
  url: URL;
  method: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** the whole exchange: connect, send, and read the response */
  timeoutMs: number;
  /** longest response body read, bytes */
  maxResponseBytes: number;
  /** https only: trust anchors (PEM) instead of the system's, a client certificate, or no verification (the kubelet, src/agent/workload-api/kubelet-client.ts) */
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  /** http only: connect to this Unix socket instead of the URL's host (the Docker Engine API, src/agent/workload-api/docker-engine.ts) */
  socketPath?: string;
}

export interface HttpResponse {
  status: number;
  /** the reason phrase (`Bad Gateway`), '' when there is none */
  statusText: string;
  /** the body, UTF-8 decoded (as fetch's `text()`) */
  text: string;
}

/**
 * Why an exchange failed: `timeout` (no complete answer within timeoutMs), `connect` (no answer at all:
 * refused, reset, DNS, TLS), `interrupted` (the response stopped midway), `too-large` (over maxResponseBytes),
 * `redirect` (a 3xx: never followed).
 */
export type HttpFailure = 'timeout' | 'connect' | 'interrupted' | 'too-large' | 'redirect';

export class HttpRequestError extends Error {
  readonly kind: HttpFailure;
  /** the system error code when there is one (ECONNREFUSED, ENOTFOUND, ...) */
  readonly code: string | undefined;
  constructor(kind: HttpFailure, message: string, options?: { cause?: unknown; code?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpRequestError';
    this.kind = kind;
    this.code = options?.code;
  }
}

type RequestFn = (url: URL, options: RequestOptions, callback: (res: IncomingMessage) => void) => ClientRequest;

let https: Promise<RequestFn> | undefined;

/** node:https is loaded on the first https call only (the TLS layer is not needed for a loopback issuer). */
async function requestFor(url: URL): Promise<RequestFn> {
  if (url.protocol === 'http:') return (await import('node:http')).request;
  if (url.protocol === 'https:') return (https ??= import('node:https').then((m) => m.request));
  throw new HttpRequestError('connect', `unsupported URL scheme ${url.protocol}`);
}

/**
 * Sends one request and reads the whole response; any status is a response (the caller decides), except a
 * redirect. Throws HttpRequestError.
 * @example const res = await httpRequest({ url: new URL('http://127.0.0.1:8787/healthz'), method: 'GET', timeoutMs: 5_000, maxResponseBytes: 65_536 });
 */
export async function httpRequest(r: HttpRequest): Promise<HttpResponse> {
  const request = await requestFor(r.url);
  const headers = { ...r.headers, ...(r.body ? { 'content-length': String(r.body.byteLength) } : {}) };
  return new Promise<HttpResponse>((resolve, reject) => {
    let answered = false;
    let settled = false;
    const finish = (error: HttpRequestError | undefined, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        req.destroy();
        reject(error);
      } else {
        resolve(res!);
      }
    };
    const timer = setTimeout(() => finish(new HttpRequestError('timeout', `no complete answer within ${r.timeoutMs} ms`)), r.timeoutMs);
    timer.unref();

    const req = request(r.url, { method: r.method, headers, ...r.tls, ...(r.socketPath !== undefined ? { socketPath: r.socketPath } : {}) }, (res) => {
      answered = true;
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        finish(new HttpRequestError('redirect', `unexpected redirect (HTTP ${status})`));
        return;
      }
      const declared = Number(res.headers['content-length'] ?? '0');
      if (declared > r.maxResponseBytes) {
        finish(new HttpRequestError('too-large', `response too large (${declared} bytes)`));
        return;
      }
      // decoded chunk by chunk (a StringDecoder): one buffer of the whole body (a /sync with 1,000 entries:
      // ~0.5 MB) would be malloc'd and freed per call, which raises glibc's mmap threshold
      // (src/agent/cache/cache-file.ts encodeCacheFileParts)
      const decoder = new StringDecoder('utf8');
      let text = '';
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > r.maxResponseBytes) finish(new HttpRequestError('too-large', 'response too large'));
        else text += decoder.write(chunk);
      });
      res.on('end', () => finish(undefined, { status, statusText: res.statusMessage ?? '', text: text + decoder.end() }));
      res.on('aborted', () => finish(new HttpRequestError('interrupted', 'response interrupted')));
      res.on('error', (e: NodeJS.ErrnoException) => finish(new HttpRequestError('interrupted', `response interrupted (${e.code ?? e.message})`, { cause: e, code: e.code })));
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      const kind = answered ? 'interrupted' : 'connect';
      finish(new HttpRequestError(kind, `${kind === 'connect' ? 'unreachable' : 'response interrupted'} (${e.code ?? e.message})`, { cause: e, code: e.code }));
    });
    req.end(r.body);
  });
}
