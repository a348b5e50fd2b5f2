/**
 * Worker entry and the one place bindings are read: bindings → parts → createAppDeps (wiring.ts) →
 * createApp, one app per isolate. No logic here.
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
import { refreshDueRelationships } from './federation/refresh.js';
import { logEvent } from './log.js';
import { createAppDeps } from './wiring.js';
import { createDoNotifier } from './notifier/notifier-api.js';
import { sendNotice } from './notifier/notices.js';

export { TrustDomainCa } from './ca/trust-domain-ca.js';
export { AgentNotifier } from './notifier/agent-notifier.js';

export function depsFromEnv(env: Env): AppDeps {
  const config = parseWorkerConfig(env);
  return createAppDeps({
    config,
    ca: () => env.CA.get(env.CA.idFromName(config.trustDomain)) as unknown as TrustDomainCaApi,
    db: env.DB,
    clock: systemClock,
    notifier: createDoNotifier(() => env.NOTIFIER.get(env.NOTIFIER.idFromName(config.trustDomain))),
  });
}

interface Wired {
  deps: AppDeps;
  app: ReturnType<typeof createApp>;
}

/**
 * One app per isolate and bindings object (workerd passes the same `env` to every request of an isolate):
 * routes are built once, and the per-app caches (published authorities, verified agent chains) live across
 * requests. The app holds no request-scoped I/O objects; DO stubs are made per call by `deps.ca()`.
 */
const wired = new WeakMap<Env, Wired>();

function wiredFor(env: Env): Wired {
  let w = wired.get(env);
  if (!w) {
    const deps = depsFromEnv(env);
    wired.set(env, (w = { deps, app: createApp(deps) }));
  }
  return w;
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
      app = wiredFor(env).app;
    } catch (e) {
      return configErrorResponse(e);
    }
    return app.fetch(req, env, ctx);
  },
  scheduled: async (_event, env) => {
    const { deps } = wiredFor(env);
    const now = () => Math.floor(deps.clock() / 1000);
    // the CA nudge, the https_web bundle refresh, the audit prune, pruning expired revocations and exchanged jtis are
    // independent: one failing must not skip the others
    const results = await Promise.allSettled([
      deps.ca().status(),
      refreshDueRelationships({ store: deps.stores.federation, fetch: deps.fetch, now }).then(async (outcomes) => {
        for (const o of outcomes) deps.telemetry.bundleRefresh(o.trustDomain, o.status);
        if (outcomes.some((o) => o.status === 'updated')) await sendNotice(deps.notifier, { all: true });
        await deps.telemetry.flush();
      }),
      deps.stores.audit.prune(now() - deps.config.auditRetentionSeconds),
      deps.stores.revocations.prune(now()),
      deps.stores.exchangeJtis.prune(now()),
    ]);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  },
} satisfies ExportedHandler<Env>;
