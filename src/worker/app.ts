/**
 * The issuer's HTTP surface: public endpoints (OIDC discovery, JWKS, SPIFFE bundle, health), the agent API
 * and the admin API. `createApp(deps)` wires route groups; handlers live in routes/.
 * @module
 */
import { Hono } from 'hono';
import { WispError } from '../shared/errors.js';
import type { AppDeps } from './deps.js';
import { errorHandler } from './middleware/error-handler.js';
import { publicRoutes } from './routes/public.js';
import { adminRoutes } from './routes/admin.js';
import { AGENT_API_PREFIX } from '../shared/agent-api.js';
import { createAgentStore } from './db/agents.js';
import { createEntryStore } from './db/entries.js';
import { createFederationStore } from './db/federation.js';
import { createJoinTokenStore } from './db/join-tokens.js';
import { createAgentRequestStore } from './db/agent-requests.js';
import { agentRoutes } from './routes/agent.js';
import { agentFederationRoutes } from './routes/agent-federation.js';

export type AppEnv = { Bindings: Env };

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.onError(errorHandler);
  app.notFound(() => {
    throw new WispError('ERR_NOT_FOUND', 'no such endpoint');
  });
  app.route('/', publicRoutes(deps));
  app.route('/admin/v1', adminRoutes(deps));
  const agents = createAgentStore(deps.db);
  const requests = createAgentRequestStore(deps.db);
  const federation = createFederationStore(deps.db);
  app.route(`${AGENT_API_PREFIX}/federation`, agentFederationRoutes({ ...deps, agents, requests, federation }));
  app.route(
    AGENT_API_PREFIX,
    agentRoutes({
      ...deps,
      entries: createEntryStore(deps.db),
      agents,
      joinTokens: createJoinTokenStore(deps.db),
      requests,
      federation,
    }),
  );
  return app;
}
