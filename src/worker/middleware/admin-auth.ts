/**
 * Authentication of the admin API. A request carries `Authorization: Bearer <token>` where the token is
 * either the configured admin token (compared in constant time over SHA-256 digests, STYLE G21) or a
 * JWT-SVID signed by one of the trust domain's published JWT authorities, with `aud` including the issuer
 * URL, whose `sub` is a SPIFFE ID of the trust domain held by an unexpired entry with admin=true (SPIRE's
 * admin entries). No credential: 401 ERR_UNAUTHENTICATED. Any other failure: 403 ERR_PERMISSION_DENIED with
 * one generic message; the reason goes to the log, never the token.
 * @module
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { bytesEqual } from '../../shared/encoding/bytes.js';
import { WispError } from '../../shared/errors.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';
import { validateJwtSvid } from '../../shared/spiffe/jwt-svid.js';
import type { AppDeps } from '../deps.js';
import { logEvent } from '../log.js';

/** What the admin middleware needs from the entry store. */
export interface AdminEntryLookup {
  isAdmin(spiffeId: SpiffeId, now: number): Promise<boolean>;
}

/** The audit log's principal for the admin token (never the token itself). */
export const ADMIN_TOKEN_PRINCIPAL = 'admin-token';

declare module 'hono' {
  interface ContextVariableMap {
    /**
     * Who is calling, set once the credential is known: ADMIN_TOKEN_PRINCIPAL, or the SPIFFE ID of a valid
     * JWT-SVID (set before its admin entry is checked, so a denied workload is audited under its ID).
     */
    adminPrincipal: string;
  }
}

/** Longest bearer token read; anything longer is refused without further work. */
export const ADMIN_BEARER_MAX_BYTES = 16 * 1024;
const DENIED_MESSAGE = 'permission denied';

async function sha256(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value)));
}

/** Constant-time equality of two secrets: both are hashed first, so lengths and contents leak nothing. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  return bytesEqual(x, y);
}

function deny(reason: string): never {
  logEvent('warn', 'admin authentication failed', { reason });
  throw new WispError('ERR_PERMISSION_DENIED', DENIED_MESSAGE);
}

async function adminSpiffeIdOf(c: Context, token: string, deps: AppDeps, entries: AdminEntryLookup): Promise<SpiffeId> {
  const loadKeys = async () => {
    const published = await deps.ca().getPublishedKeys();
    if (!published.ok) throw new Error(published.error.message);
    return published.value.jwtAuthorities;
  };
  let verdict: Awaited<ReturnType<typeof validateJwtSvid>>;
  try {
    // the one JWT-SVID validator (shared/spiffe/jwt-svid.ts); it loads the keys only for a well-formed token
    verdict = await validateJwtSvid(token, loadKeys, { audience: deps.config.jwtIssuer, now: deps.clock(), trustDomain: deps.config.trustDomain });
  } catch (e) {
    logEvent('error', 'admin authentication: cannot read JWT authorities', { cause: e instanceof Error ? e.message : String(e) });
    throw new WispError('ERR_UNAVAILABLE', 'cannot verify the credential right now');
  }
  if (!verdict.ok) deny(`JWT-SVID rejected: ${verdict.error.message}`);
  const spiffeId = verdict.value.spiffeId;
  c.set('adminPrincipal', spiffeId);
  if (!(await entries.isAdmin(spiffeId, Math.floor(deps.clock() / 1000)))) deny(`no admin entry for ${spiffeId}`);
  return spiffeId;
}

/**
 * The admin API's authentication middleware.
 * @example app.use('*', adminAuth(deps, createEntryStore(deps.db)))
 */
export function adminAuth(deps: AppDeps, entries: AdminEntryLookup) {
  return createMiddleware(async (c, next) => {
    const header = c.req.header('authorization');
    const match = header === undefined ? null : /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header);
    if (!match) throw new WispError('ERR_UNAUTHENTICATED', 'admin credential required (Authorization: Bearer <token>)');
    const token = match[1]!;
    if (token.length > ADMIN_BEARER_MAX_BYTES) deny('bearer token too long');
    if (await secretsEqual(token, deps.config.adminToken)) {
      c.set('adminPrincipal', ADMIN_TOKEN_PRINCIPAL);
      logEvent('info', 'admin request', { principal: 'admin_token', method: c.req.method, path: c.req.path, request_id: c.get('requestId') });
      return next();
    }
    if (token.split('.').length !== 3) deny('bearer token is neither the admin token nor a JWT');
    const spiffeId = await adminSpiffeIdOf(c, token, deps, entries);
    logEvent('info', 'admin request', { principal: 'jwt_svid', spiffe_id: spiffeId, method: c.req.method, path: c.req.path, request_id: c.get('requestId') });
    return next();
  });
}
