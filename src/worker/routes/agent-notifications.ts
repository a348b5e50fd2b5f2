/**
 * `GET /agent/v1/notifications`: the agent's notification channel, a WebSocket to the AgentNotifier Durable
 * Object (notifier/agent-notifier.ts). The upgrade request is authenticated exactly as every agent-API call
 * (agentAuth: the agent proof over `GET /agent/v1/notifications` and an empty body, a fresh jti, an attested
 * agent that is not banned, its current SVID), and refused with the same errors before any upgrade. The
 * socket then carries only `SYNC_NOTICE` (shared/agent-notifications.ts): nothing an agent acts on but a sync
 * through this API. Documented in docs/agent-api.md "Notifications".
 * @module
 */
import { Hono } from 'hono';
import { NOTIFICATIONS_ROUTE } from '../../shared/agent-notifications.js';
import { WispError } from '../../shared/errors.js';
import { agentAuth, type AgentAuthDeps, type AgentAuthEnv } from '../middleware/agent-auth.js';
import { noStore } from '../middleware/no-store.js';
import type { AgentNotifierApi } from '../notifier/notifier-api.js';

export interface AgentNotificationDeps extends AgentAuthDeps {
  notifier: AgentNotifierApi;
}

export function agentNotificationRoutes(deps: AgentNotificationDeps): Hono<AgentAuthEnv> {
  const app = new Hono<AgentAuthEnv>();
  app.use('*', noStore);
  // an upgrade request has no body: any body at all is refused by agentAuth
  app.get(NOTIFICATIONS_ROUTE, agentAuth(deps, { maxBodyBytes: 0 }), async (c) => {
    if (c.req.header('upgrade')?.toLowerCase() !== 'websocket') throw new WispError('ERR_BAD_REQUEST', 'this endpoint takes a WebSocket upgrade (Upgrade: websocket)');
    return deps.notifier.connect(c.req.raw, c.var.agent.agentId);
  });
  return app;
}
