/**
 * The audit log's one recording point: a middleware on the whole admin API (routes/admin.ts) that writes one
 * row per authenticated admin request that can change something (every method but GET/HEAD, plus any read
 * route the action table marks), for routes it has never heard of too: their action is `METHOD /pattern`
 * until the table (routes/admin/audit.ts) names them. Object IDs come from the route's path parameters and
 * whatever the handler adds with `noteAudit` (never a secret: a join token is recorded as a hash prefix).
 *
 * The row is written before the response leaves (awaited, not waitUntil). If the write fails, the answer
 * is 503 ERR_UNAVAILABLE instead of the handler's (fail closed: no admin write is acknowledged without its
 * audit row; the change itself may have been applied, which the message says) and the row goes to the log.
 * Unauthenticated requests write nothing (else anyone could fill the table); they are in the Worker log.
 * @module
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import type { AuditStore, NewAuditEvent } from '../db/audit-log.js';
import { logEvent } from '../log.js';
import { errorResponse } from './error-handler.js';
import { clientAddress } from '../client-address.js';

/** Most object IDs kept per row (a batch of 500 keeps the first ones and says how many there were). */
export const AUDIT_OBJECT_IDS_MAX = 100;
/** Longest object ID kept (a SPIFFE ID is at most 2048 bytes). */
export const AUDIT_OBJECT_ID_MAX_CHARS = 2048;

/** How the action table names a route. */
export interface AuditAction {
  action: string;
  /** record this read route too (for a GET that returns a secret; none does today) */
  recordReads?: boolean;
}

/** What a handler adds to its request's audit row. */
export interface AuditNote {
  objectIds?: string[];
  detail?: Record<string, string | number | boolean>;
}

declare module 'hono' {
  interface ContextVariableMap {
    /** what the handler added for the audit row (noteAudit) */
    auditNote: AuditNote;
  }
}

/** Adds object IDs and details to this request's audit row; call it with identifiers only, never a secret. */
export function noteAudit(c: Context, note: AuditNote): void {
  const prev = c.get('auditNote') ?? {};
  c.set('auditNote', { objectIds: [...(prev.objectIds ?? []), ...(note.objectIds ?? [])], detail: { ...prev.detail, ...note.detail } });
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/** The handler's route (the first matched route of this method; middleware is method ALL) and its path parameters. */
function handlerRoute(c: Context, prefix: string): { pattern: string; params: string[] } | undefined {
  const route = matchedRoutes(c).find((r) => r.method === c.req.method);
  if (!route) return undefined;
  const pattern = route.path.startsWith(prefix) ? route.path.slice(prefix.length) || '/' : route.path;
  const names = route.path.split('/');
  const values = c.req.path.split('/');
  const params = names.flatMap((seg, i) => {
    if (!seg.startsWith(':') || values[i] === undefined) return [];
    try {
      return [decodeURIComponent(values[i])];
    } catch {
      return [values[i]];
    }
  });
  return { pattern, params };
}

function errorCodeOf(c: Context): string | undefined {
  if (c.error instanceof WispError) return c.error.code;
  return c.error !== undefined || c.res.status >= 500 ? 'ERR_INTERNAL' : undefined;
}

function buildEvent(c: Context, principal: string, route: ReturnType<typeof handlerRoute>, action: string, now: number): NewAuditEvent {
  const note = c.get('auditNote') ?? {};
  const all = [...new Set([...(route?.params ?? []), ...(note.objectIds ?? [])])];
  const detail: Record<string, unknown> = { ...note.detail };
  if (all.length > AUDIT_OBJECT_IDS_MAX) detail['objectIdsTotal'] = all.length;
  const ip = clientAddress(c.req.raw.headers);
  const errorCode = errorCodeOf(c);
  return {
    at: now,
    requestId: c.get('requestId') ?? crypto.randomUUID(),
    principal,
    action,
    route: `${c.req.method} ${route?.pattern ?? '(no route)'}`,
    objectIds: all.slice(0, AUDIT_OBJECT_IDS_MAX).map((id) => id.slice(0, AUDIT_OBJECT_ID_MAX_CHARS)),
    detail,
    status: c.res.status,
    ...(errorCode ? { errorCode } : {}),
    ...(ip !== undefined ? { sourceIp: ip } : {}),
  };
}

export interface AuditMiddlewareOptions {
  store: Pick<AuditStore, 'record'>;
  clock: Clock;
  /** where the admin API is mounted (`/admin/v1`): patterns are recorded below it */
  prefix: string;
  /** `METHOD /pattern` → its name */
  actions: Readonly<Record<string, AuditAction>>;
}

/**
 * The admin API's audit middleware: mount it before `adminAuth`, which sets `c.var.adminPrincipal`.
 * @example app.use('*', auditLog({ store: deps.stores.audit, clock: deps.clock, prefix: '/admin/v1', actions: ADMIN_ACTIONS }))
 */
export function auditLog(options: AuditMiddlewareOptions) {
  if (!options.prefix.startsWith('/')) throw new Error('auditLog: prefix must start with /');
  return createMiddleware(async (c, next) => {
    await next();
    const principal = c.get('adminPrincipal');
    if (principal === undefined) return;
    const route = handlerRoute(c, options.prefix);
    const key = `${c.req.method} ${route?.pattern ?? '(no route)'}`;
    const named = options.actions[key];
    if (READ_METHODS.has(c.req.method) && !named?.recordReads) return;
    const event = buildEvent(c, principal, route, named?.action ?? key, Math.floor(options.clock() / 1000));
    try {
      await options.store.record(event);
    } catch (e) {
      logEvent('error', 'audit record not written; answering 503', { audit: event, cause: e instanceof Error ? e.message : String(e) });
      c.res = undefined; // drop the handler's answer and its headers
      c.res = errorResponse(c, new WispError('ERR_UNAVAILABLE', 'the audit log cannot be written: the request may have been applied but is not acknowledged'));
    }
  });
}
