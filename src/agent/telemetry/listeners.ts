/**
 * The agent's two plain-HTTP listeners (node:http), both off unless configured: the Prometheus metrics
 * endpoint (`telemetry.prometheus`, any path answers with the exposition, as SPIRE's) and the health checks
 * (`healthChecks`, SPIRE's `health_checks`: livePath and readyPath answer 200 or 503 with a small JSON body).
 * Neither carries a secret; only GET and HEAD are served.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listener {
  /** the bound port (useful when configured as 0) */
  readonly port: number;
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void, host: string, port: number): Promise<Listener> {
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function methodAllowed(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.setHeader('allow', 'GET, HEAD');
  json(res, 405, { error: { code: 'ERR_METHOD_NOT_ALLOWED', message: 'only GET and HEAD' } });
  return false;
}

/** Serves `metrics()` in the Prometheus text format. */
export function startMetricsListener(o: { host: string; port: number; metrics: () => Promise<string>; contentType: string; onError?: (err: unknown) => void }): Promise<Listener> {
  return listen((req, res) => {
    if (!methodAllowed(req, res)) return;
    o.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': o.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        o.onError?.(err);
        json(res, 500, { error: { code: 'ERR_INTERNAL', message: 'metrics collection failed' } });
      },
    );
  }, o.host, o.port);
}

/** One health verdict and what it rests on (the body's `checks`). */
export interface HealthState {
  live: boolean;
  ready: boolean;
  checks: Record<string, boolean>;
}

export interface HealthListenerOptions {
  host: string;
  port: number;
  livePath: string;
  readyPath: string;
  state: () => HealthState;
}

/** 200 `{"status":"ok",...}` or 503 `{"status":"unavailable",...}` on each path; 404 elsewhere. */
export function startHealthListener(o: HealthListenerOptions): Promise<Listener> {
  return listen((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const which = path === o.livePath ? 'live' : path === o.readyPath ? 'ready' : undefined;
    if (!which) return json(res, 404, { error: { code: 'ERR_NOT_FOUND', message: `health paths are ${o.livePath} and ${o.readyPath}` } });
    if (!methodAllowed(req, res)) return;
    const state = o.state();
    const ok = state[which];
    json(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', [which]: ok, checks: state.checks });
  }, o.host, o.port);
}
