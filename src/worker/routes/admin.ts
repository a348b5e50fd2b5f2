/**
 * The admin API, mounted at `/admin/v1`: every route behind `adminAuth` (admin token or admin JWT-SVID),
 * and every authenticated write recorded by `auditLog` (middleware/audit.ts, actions in admin/audit.ts).
 * Route groups live in routes/admin/: entries, agents, join tokens, SVID minting, the bundle,
 * federation relationships and foreign bundles, the trust domain's own authorities (localauthority), SVID
 * revocations, the audit log, the Prometheus metrics (admin/metrics.ts).
 * @module
 */
import { Hono } from 'hono';
import type { AppDeps } from '../deps.js';
import { adminAuth } from '../middleware/admin-auth.js';
import { auditLog } from '../middleware/audit.js';
import { noStore } from '../middleware/no-store.js';
import { agentNotices } from '../notifier/notices.js';
import { agentRoutes } from './admin/agents.js';
import { ADMIN_ACTIONS, auditRoutes } from './admin/audit.js';
import { entryRoutes } from './admin/entries.js';
import { federationRoutes, foreignBundleRoutes } from './admin/federation.js';
import { joinTokenRoutes } from './admin/join-tokens.js';
import { localAuthorityRoutes } from './admin/local-authority.js';
import { metricsRoutes } from './admin/metrics.js';
import { revocationRoutes } from './admin/revocations.js';
import { svidRoutes } from './admin/svids.js';

/** Where app.ts mounts the admin API. */
export const ADMIN_API_PREFIX = '/admin/v1';

export function adminRoutes(deps: AppDeps): Hono {
  const { entries, agents, joinTokens, federation, audit } = deps.stores;
  const app = new Hono();
  app.use('*', noStore);
  // outside adminAuth: it records denials of a valid JWT-SVID too (adminAuth sets the principal first)
  app.use('*', auditLog({ store: audit, clock: deps.clock, prefix: ADMIN_API_PREFIX, actions: ADMIN_ACTIONS }));
  app.use('*', adminAuth(deps, entries));
  // after a committed write, tells the agents it concerns to sync now (the handler names them: noteAgents)
  app.use('*', agentNotices(deps.notifier));
  app.route('/entries', entryRoutes(deps, entries));
  app.route('/agents', agentRoutes(deps, agents));
  app.route('/join-tokens', joinTokenRoutes(deps, joinTokens));
  app.route('/federation', federationRoutes(deps, federation));
  app.route('/bundles', foreignBundleRoutes(deps, federation));
  app.route('/audit', auditRoutes(audit));
  app.route('/localauthority', localAuthorityRoutes(deps));
  app.route('/metrics', metricsRoutes(deps));
  app.route('/revocations', revocationRoutes(deps, deps.stores.revocations, entries));
  app.route('/', svidRoutes(deps));
  return app;
}
