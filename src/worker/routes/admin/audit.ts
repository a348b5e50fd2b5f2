/**
 * The audit log over the admin API: the one table naming each admin route's action (the middleware,
 * middleware/audit.ts, records a route missing here as `METHOD /pattern`), and
 * `GET /audit?since=&until=&principal=&action=&objectId=&pageSize=&pageToken=`, events oldest first.
 * Reading the log is a GET and is not itself recorded. See docs/audit.md.
 * @module
 */
import { Hono, type Context } from 'hono';
import { WispError } from '../../../shared/errors.js';
import type { AuditFilter, AuditStore } from '../../db/audit-log.js';
import type { AuditAction } from '../../middleware/audit.js';
import { parsePage, parseTimeParam } from './params.js';

/** `METHOD /pattern` (below /admin/v1, as mounted in routes/admin.ts) → action name. */
export const ADMIN_ACTIONS: Readonly<Record<string, AuditAction>> = {
  'POST /entries': { action: 'entry.create' },
  'POST /entries/batch-create': { action: 'entry.batch_create' },
  'POST /entries/batch-update': { action: 'entry.batch_update' },
  'POST /entries/batch-delete': { action: 'entry.batch_delete' },
  'PUT /entries/:id': { action: 'entry.update' },
  'DELETE /entries/:id': { action: 'entry.delete' },
  'POST /agents/:spiffeId/ban': { action: 'agent.ban' },
  'DELETE /agents/:spiffeId': { action: 'agent.evict' },
  'POST /agents/purge': { action: 'agent.purge' },
  'POST /join-tokens': { action: 'join_token.create' },
  'POST /federation': { action: 'federation.create' },
  'PUT /federation/:trustDomain': { action: 'federation.update' },
  'DELETE /federation/:trustDomain': { action: 'federation.delete' },
  'POST /federation/:trustDomain/refresh': { action: 'federation.refresh' },
  'PUT /bundles/:trustDomain': { action: 'bundle.set' },
  'DELETE /bundles/:trustDomain': { action: 'bundle.delete' },
  'POST /x509-svids/mint': { action: 'svid.mint_x509' },
  'POST /jwt-svids/mint': { action: 'svid.mint_jwt' },
  'POST /revocations': { action: 'svid.revoke' },
  'POST /localauthority/:kind/prepare': { action: 'localauthority.prepare' },
  'POST /localauthority/:kind/activate': { action: 'localauthority.activate' },
  'POST /localauthority/:kind/taint': { action: 'localauthority.taint' },
  'POST /localauthority/:kind/revoke': { action: 'localauthority.revoke' },
};

/** Longest principal, action or object ID accepted as a filter. */
const FILTER_MAX_CHARS = 2048;

function textParam(c: Context, name: string): string | undefined {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  if (raw === '' || raw.length > FILTER_MAX_CHARS) throw new WispError('ERR_BAD_REQUEST', `${name} must be 1 to ${FILTER_MAX_CHARS} characters`);
  return raw;
}

export function parseAuditFilter(c: Context): AuditFilter {
  const filter: AuditFilter = {};
  const since = parseTimeParam(c, 'since');
  const until = parseTimeParam(c, 'until');
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  for (const key of ['principal', 'action', 'objectId'] as const) {
    const value = textParam(c, key);
    if (value !== undefined) filter[key] = value;
  }
  return filter;
}

export function auditRoutes(store: AuditStore): Hono {
  const app = new Hono();
  app.get('/', async (c) => c.json(await store.list(parseAuditFilter(c), parsePage(c))));
  return app;
}
