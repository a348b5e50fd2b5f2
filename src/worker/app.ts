/**
 * The issuer's HTTP surface: public endpoints (OIDC discovery, JWKS, SPIFFE bundle, health), the agent API
 * and the admin API. `createApp(deps)` mounts the route groups on what the wiring built (wiring.ts); it
 * holds no module state, so a test or Node process can build as many apps as it likes.
 * @module
 */
import { Hono } from 'hono';
import { AGENT_API_PREFIX } from '../shared/agent-api.js';
import { WispError } from '../shared/errors.js';
import type { AppDeps } from './deps.js';
import { errorHandler } from './middleware/error-handler.js';
import { requestId } from './middleware/request-id.js';
import { ADMIN_API_PREFIX, adminRoutes } from './routes/admin.js';
import { agentFederationRoutes } from './routes/agent-federation.js';
import { agentRoutes } from './routes/agent.js';
import { agentNotificationRoutes } from './routes/agent-notifications.js';
import { publicRoutes } from './routes/public.js';
import { EXCHANGE_API_PREFIX, exchangeRoutes } from './routes/exchange.js';
import { agentApiTelemetry } from './telemetry.js';

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  app.onError(errorHandler);
  app.use('*', requestId);
  app.notFound(() => {
    throw new WispError('ERR_NOT_FOUND', 'no such endpoint');
  });
  app.use(`${AGENT_API_PREFIX}/*`, agentApiTelemetry(deps.telemetry, () => Date.now()));
  app.route('/', publicRoutes(deps));
  app.route(ADMIN_API_PREFIX, adminRoutes(deps));
  const agentDeps = { ...deps, ...deps.stores, authorities: deps.caches.agentAuthorities };
  app.route(`${AGENT_API_PREFIX}/federation`, agentFederationRoutes(agentDeps));
  app.route(AGENT_API_PREFIX, agentNotificationRoutes(agentDeps));
  app.route(AGENT_API_PREFIX, agentRoutes(agentDeps));
  app.route(EXCHANGE_API_PREFIX, exchangeRoutes({ ...deps, ...deps.stores, issuerKeys: deps.caches.exchangeIssuerKeys }));
  return app;
}
