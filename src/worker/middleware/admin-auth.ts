/**
 * Authentication of the admin API. A request carries `Authorization: Bearer <token>` where the token is
 * either the configured admin token (compared in constant time over SHA-256 digests, STYLE G21) or a
 * JWT-SVID signed by one of the trust domain's published JWT authorities, with `aud` including the issuer
 * URL, whose `sub` is a SPIFFE ID of the trust domain held by an unexpired entry with admin=true (SPIRE's
 * admin entries). No credential: 401 ERR_UNAUTHENTICATED. Any other failure: 403 ERR_PERMISSION_DENIED with
 * one generic message; the reason goes to the log, never the token.
 * @module
 */
import { createMiddleware } from 'hono/factory';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { WispError } from '../../shared/errors.js';
import { parseSpiffeIdInTrustDomain, type SpiffeId } from '../../shared/spiffe/id.js';
import type { AppDeps } from '../deps.js';
import { logEvent } from '../log.js';

/** What the admin middleware needs from the entry store. */
export interface AdminEntryLookup {
  isAdmin(spiffeId: SpiffeId, now: number): Promise<boolean>;
}

/** Longest bearer token read; anything longer is refused without further work. */
export const ADMIN_BEARER_MAX_BYTES = 16 * 1024;
const JWT_SVID_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const DENIED_MESSAGE = 'permission denied';

async function sha256(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value)));
}

/** Constant-time equality of two secrets: both are hashed first, so lengths and contents leak nothing. */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

function deny(reason: string): never {
  logEvent('warn', 'admin authentication failed', { reason });
  throw new WispError('ERR_PERMISSION_DENIED', DENIED_MESSAGE);
}

async function adminSpiffeIdOf(token: string, deps: AppDeps, entries: AdminEntryLookup): Promise<SpiffeId> {
  try {
    decodeProtectedHeader(token);
    decodeJwt(token);
  } catch {
    deny('bearer token is neither the admin token nor a well-formed JWT');
  }
  let keys: JWK[];
  try {
    const published = await deps.ca().getPublishedKeys();
    if (!published.ok) throw new Error(published.error.message);
    keys = published.value.jwtAuthorities as JWK[];
  } catch (e) {
    logEvent('error', 'admin authentication: cannot read JWT authorities', { cause: e instanceof Error ? e.message : String(e) });
    throw new WispError('ERR_UNAVAILABLE', 'cannot verify the credential right now');
  }
  let sub: unknown;
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys }), {
      audience: deps.config.jwtIssuer,
      algorithms: JWT_SVID_ALGORITHMS,
      requiredClaims: ['sub', 'exp', 'aud'],
      currentDate: new Date(deps.clock()),
    });
    sub = payload.sub;
  } catch (e) {
    deny(`JWT-SVID rejected: ${e instanceof Error ? e.name : 'error'}`);
  }
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeIdInTrustDomain(sub, deps.config.trustDomain, 'sub');
  } catch {
    deny('JWT-SVID sub is not a SPIFFE ID of the trust domain');
  }
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
      logEvent('info', 'admin request', { principal: 'admin_token', method: c.req.method, path: c.req.path });
      return next();
    }
    if (token.split('.').length !== 3) deny('bearer token is neither the admin token nor a JWT');
    const spiffeId = await adminSpiffeIdOf(token, deps, entries);
    logEvent('info', 'admin request', { principal: 'jwt_svid', spiffe_id: spiffeId, method: c.req.method, path: c.req.path });
    return next();
  });
}
