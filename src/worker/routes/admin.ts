/**
 * The admin API, mounted at `/admin/v1`: every route behind `adminAuth` (admin token or admin JWT-SVID).
 * Route groups live in routes/admin/: entries, agents, join tokens, SVID minting and the bundle.
 * @module
 */
import { Hono } from 'hono';
import { createAgentStore } from '../db/agents.js';
import { createEntryStore } from '../db/entries.js';
import { createJoinTokenStore } from '../db/join-tokens.js';
import type { AppDeps } from '../deps.js';
import { adminAuth } from '../middleware/admin-auth.js';
import { agentRoutes } from './admin/agents.js';
import { entryRoutes } from './admin/entries.js';
import { joinTokenRoutes } from './admin/join-tokens.js';
import { svidRoutes } from './admin/svids.js';

export function adminRoutes(deps: AppDeps): Hono {
  const entries = createEntryStore(deps.db);
  const app = new Hono();
  app.use('*', adminAuth(deps, entries));
  app.route('/entries', entryRoutes(deps, entries));
  app.route('/agents', agentRoutes(deps, createAgentStore(deps.db)));
  app.route('/join-tokens', joinTokenRoutes(deps, createJoinTokenStore(deps.db)));
  app.route('/', svidRoutes(deps));
  return app;
}
