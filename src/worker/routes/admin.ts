/**
 * The admin API, mounted at `/admin/v1`: every route behind `adminAuth` (admin token or admin JWT-SVID).
 * Route groups live in routes/admin/: entries, agents, join tokens, SVID minting, the bundle,
 * federation relationships and foreign bundles, SVID revocations.
 * @module
 */
import { Hono } from 'hono';
import type { AppDeps } from '../deps.js';
import { adminAuth } from '../middleware/admin-auth.js';
import { noStore } from '../middleware/no-store.js';
import { agentRoutes } from './admin/agents.js';
import { entryRoutes } from './admin/entries.js';
import { federationRoutes, foreignBundleRoutes } from './admin/federation.js';
import { joinTokenRoutes } from './admin/join-tokens.js';
import { revocationRoutes } from './admin/revocations.js';
import { svidRoutes } from './admin/svids.js';

export function adminRoutes(deps: AppDeps): Hono {
  const { entries, agents, joinTokens, federation } = deps.stores;
  const app = new Hono();
  app.use('*', noStore);
  app.use('*', adminAuth(deps, entries));
  app.route('/entries', entryRoutes(deps, entries));
  app.route('/agents', agentRoutes(deps, agents));
  app.route('/join-tokens', joinTokenRoutes(deps, joinTokens));
  app.route('/federation', federationRoutes(deps, federation));
  app.route('/bundles', foreignBundleRoutes(deps, federation));
  app.route('/revocations', revocationRoutes(deps, deps.stores.revocations, entries));
  app.route('/', svidRoutes(deps));
  return app;
}
