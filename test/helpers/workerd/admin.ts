// Builds the admin API the way app.ts mounts it, over the real D1 binding, with a replaceable CA (tests give
// a fake whose JWT authority they control) and a fixed clock.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { WispError } from '../../../src/shared/errors.js';
import type { PublishedKeys, TrustDomainCaApi } from '../../../src/worker/ca/ca-api.js';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import type { AppDeps } from '../../../src/worker/deps.js';
import { createAppDeps } from '../../../src/worker/wiring.js';
import { errorHandler } from '../../../src/worker/middleware/error-handler.js';
import { requestId } from '../../../src/worker/middleware/request-id.js';
import { ADMIN_API_PREFIX, adminRoutes } from '../../../src/worker/routes/admin.js';

export const NOW_MS = 1_800_000_000_000;
export const ADMIN_TOKEN = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
export const config = parseWorkerConfig(env as unknown as Record<string, string>);
export const TD = config.trustDomain;

const noCa: TrustDomainCaApi = {
  signX509Svids: async () => [],
  signJwtSvid: async () => ({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'no CA in this test' } }),
  signJwtSvids: async (requests) => requests.map(() => ({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'no CA in this test' } })),
  getPublishedKeys: async () => ({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'no CA in this test' } }),
  manageAuthority: async () => ({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'no CA in this test' } }),
  status: async () => ({ ready: false }),
  getCrls: async () => ({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'no CA in this test' } }),
  admitAttestation: async () => ({ ok: true, value: true }),
  recordTelemetry: async () => ({ ok: true, value: true }),
  getMetrics: async () => ({ ok: true, value: [] }),
};

export function fakeCa(keys: Partial<PublishedKeys>): TrustDomainCaApi {
  return { ...noCa, getPublishedKeys: async () => ({ ok: true, value: { x509Authorities: [], jwtAuthorities: [], sequence: 1, refreshHintSeconds: 60, ...keys } }) };
}

/** `adjust` may replace parts of the deps before the routes are built (e.g. a failing store). */
export function makeAdmin(ca: TrustDomainCaApi = noCa, nowMs = NOW_MS, adjust: (deps: AppDeps) => void = () => undefined) {
  const deps: AppDeps = createAppDeps({ config, ca: () => ca, db: env.DB, clock: () => nowMs });
  adjust(deps);
  const app = new Hono();
  app.onError(errorHandler);
  app.use('*', requestId);
  app.notFound(() => {
    throw new WispError('ERR_NOT_FOUND', 'no such endpoint');
  });
  app.route(ADMIN_API_PREFIX, adminRoutes(deps));
  return {
    deps,
    fetch: (path: string, init: RequestInit = {}) => app.request(`http://issuer.test/admin/v1${path}`, init),
    /** A request with the admin token and, when `body` is given, a JSON body. */
    call: (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      app.request(`http://issuer.test/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
  };
}

let seq = 0;
/** A path segment unique to this test run and call. */
export const unique = () => `u${Date.now().toString(36)}${(seq++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
export const sid = (path: string) => `spiffe://${TD}${path}`;

/** Asserts the error wire shape and returns the code. */
export async function errorCode(res: Response): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  if (typeof body.error?.code !== 'string' || typeof body.error.message !== 'string' || Object.keys(body).length !== 1) {
    throw new Error(`not an error body: ${JSON.stringify(body)}`);
  }
  return body.error.code;
}
