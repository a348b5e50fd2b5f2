/**
 * Worker entry: wires bindings into the app. No logic here.
 * @module
 */
import 'reflect-metadata';
import { systemClock } from '../shared/clock.js';
import { httpStatusOf } from '../shared/error-status.js';
import { WispError } from '../shared/errors.js';
import { createApp } from './app.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import { parseWorkerConfig } from './config.js';
import type { AppDeps } from './deps.js';
import { createFederationStore } from './db/federation.js';
import { refreshDueRelationships } from './federation/refresh.js';
import { logEvent } from './log.js';

export { TrustDomainCa } from './ca/trust-domain-ca.js';

export function depsFromEnv(env: Env): AppDeps {
  const config = parseWorkerConfig(env);
  return {
    config,
    ca: () => env.CA.get(env.CA.idFromName(config.trustDomain)) as unknown as TrustDomainCaApi,
    db: env.DB,
    clock: systemClock,
  };
}

/**
 * One app per isolate and bindings object (workerd passes the same `env` to every request of an isolate):
 * routes are built once, and the per-app caches (published authorities, verified agent chains) live across
 * requests. The app holds no request-scoped I/O objects; DO stubs are made per call by `deps.ca()`.
 */
const apps = new WeakMap<Env, ReturnType<typeof createApp>>();

function appFor(env: Env): ReturnType<typeof createApp> {
  let app = apps.get(env);
  if (!app) apps.set(env, (app = createApp(depsFromEnv(env))));
  return app;
}

/** A bad configuration fails every request with one JSON error naming the key (never a bare runtime 500). */
function configErrorResponse(error: unknown): Response {
  const known = error instanceof WispError && error.code === 'ERR_CONFIG_INVALID';
  logEvent('error', 'issuer configuration is invalid', { cause: error instanceof Error ? error.message : String(error) });
  const body = known ? error.toData() : { code: 'ERR_CONFIG_INVALID', message: 'issuer configuration is invalid' };
  return Response.json({ error: body }, { status: httpStatusOf('ERR_CONFIG_INVALID') });
}

export default {
  fetch: (req, env, ctx) => {
    let app: ReturnType<typeof createApp>;
    try {
      app = appFor(env);
    } catch (e) {
      return configErrorResponse(e);
    }
    return app.fetch(req, env, ctx);
  },
  scheduled: async (_event, env) => {
    const deps = depsFromEnv(env);
    // the CA nudge and the https_web bundle refresh are independent: one failing must not skip the other
    const results = await Promise.allSettled([
      deps.ca().status(),
      refreshDueRelationships({ store: createFederationStore(env.DB), fetch, now: () => Math.floor(deps.clock() / 1000) }),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  },
} satisfies ExportedHandler<Env>;
