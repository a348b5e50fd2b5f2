/**
 * The audit log's event as the admin API returns it (GET /admin/v1/audit) and the issuer stores it
 * (worker/db/audit-log.ts), read by `wisp audit list`; and the one rule for the RFC 3339 times its filters
 * take. What goes into an event is decided by the audit middleware (worker/middleware/audit.ts), never a secret.
 * @module
 */

/** One recorded admin request. Times are seconds since the epoch. */
export interface AuditEvent {
  id: number;
  at: number;
  requestId: string;
  /** `admin-token`, or the SPIFFE ID of the admin JWT-SVID */
  principal: string;
  /** e.g. `entry.create`; a route without a name: `METHOD /pattern` */
  action: string;
  /** `METHOD /pattern` under /admin/v1 as the router matched it */
  route: string;
  objectIds: string[];
  /** counts and non-secret facts (item counts, expiry of a join token) */
  detail: Record<string, unknown>;
  status: number;
  errorCode?: string;
  sourceIp?: string;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 date-time (`2026-01-02T15:04:05Z`, offsets, fractions) as ms since the epoch; undefined if not one. */
export function parseRfc3339Ms(value: string): number | undefined {
  const ms = RFC3339.test(value) ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}
