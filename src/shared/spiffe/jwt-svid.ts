/**
 * JWT-SVIDs (JWT-SVID.md): minting with the trust domain's active key, and validation against a set of
 * JWT authorities (a bundle's `jwt-svid` keys or the OIDC JWKS). Used by the CA, the agent's
 * ValidateJWTSVID and admin authentication, so every check lives here once.
 * @module
 */
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { WispErrorData } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { parseSpiffeId, trustDomainOf, type SpiffeId } from './id.js';
import { hasPrivateJwkMembers } from './jwk.js';

/** JWT-SVID.md §2.1: `alg` must be one of RFC 7518 §3.3 (RS*), §3.4 (ES*), §3.5 (PS*). */
export const JWT_SVID_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;
export type JwtSvidAlgorithm = (typeof JWT_SVID_ALGORITHMS)[number];

/** The algorithms Wisp signs with. */
export type JwtSigningAlgorithm = 'ES256' | 'RS256';

/** Largest token accepted for validation (compare workers-oauth-provider's 16 KiB). */
export const MAX_JWT_BYTES = 16 * 1024;

/** JWT-SVID.md §2: the only JOSE header parameters allowed. */
const ALLOWED_HEADERS = new Set(['alg', 'kid', 'typ']);

export interface MintJwtSvidParams {
  spiffeId: SpiffeId;
  /** non-empty; JWT-SVID.md §3.2 */
  audience: readonly string[];
  /** the OIDC issuer URL (`iss`) */
  issuer: string;
  /** ms since the epoch */
  now: number;
  /** ms since the epoch; the caller caps it at the signing key's notAfter */
  expiresAt: number;
  kid: string;
  alg: JwtSigningAlgorithm;
  key: CryptoKey;
}

/**
 * Signs a JWT-SVID: header {alg, kid, typ: JWT}, claims {sub, aud[], exp, iat, iss}.
 * @example await mintJwtSvid({ spiffeId, audience: ['reports'], issuer, now, expiresAt: now + 300_000, kid, alg: 'ES256', key })
 */
export async function mintJwtSvid(p: MintJwtSvidParams): Promise<string> {
  if (p.audience.length === 0 || p.audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('a JWT-SVID needs at least one non-empty audience');
  }
  const exp = Math.floor(p.expiresAt / 1000);
  const iat = Math.floor(p.now / 1000);
  if (exp <= iat) throw new TypeError('a JWT-SVID must expire after it is issued');
  return new SignJWT({})
    .setProtectedHeader({ alg: p.alg, kid: p.kid, typ: 'JWT' })
    .setSubject(p.spiffeId)
    .setAudience([...p.audience])
    .setIssuer(p.issuer)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(p.key);
}

export interface ValidateJwtSvidOptions {
  /** the audience the validator identifies with; must be one of `aud` */
  audience: string;
  /** ms since the epoch */
  now: number;
  /** when set, `sub` must be in this trust domain */
  trustDomain?: string;
  /** when set, `iss` must equal it */
  issuer?: string;
  /** allowed clock skew for exp/nbf/iat, seconds (default 0) */
  clockToleranceSeconds?: number;
}

export interface ValidatedJwtSvid {
  spiffeId: SpiffeId;
  claims: JWTPayload;
  /** ms since the epoch */
  expiresAt: number;
}

function invalid(message: string): Result<never, WispErrorData> {
  return err({ code: 'ERR_JWT_INVALID', message });
}

/**
 * What JWT-SVIDs and WIT-SVIDs (wit-svid.ts) check alike before any key is used: a non-empty compact JWS of
 * at most MAX_JWT_BYTES whose header and claims decode. Returns the protected header.
 */
export function decodeCompactJwt(token: string): Result<Record<string, unknown>, WispErrorData> {
  if (typeof token !== 'string' || token.length === 0) return invalid('token is empty');
  if (token.length > MAX_JWT_BYTES) return invalid(`token is larger than ${MAX_JWT_BYTES} bytes`);
  if (token.split('.').length !== 3) return invalid('token is not a JWS in compact serialization');
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
  } catch {
    return invalid('token header cannot be decoded');
  }
  try {
    decodeJwt(token);
  } catch {
    return invalid('token claims cannot be decoded');
  }
  return ok(header);
}

/**
 * The one authority named by `kid` among `keys`, as key material for `alg` (without use, key_ops, alg): it
 * must be public, and its `alg`, when it has one, the token's. `kind` names the authorities in messages.
 */
export function authorityKey(keys: readonly JWK[], kid: string, alg: string, kind: 'JWT' | 'WIT'): Result<JWK, WispErrorData> {
  const matches = keys.filter((k) => k.kid === kid);
  if (matches.length !== 1) return invalid(matches.length === 0 ? `no ${kind} authority with kid ${kid}` : `several ${kind} authorities with kid ${kid}`);
  const { use: _use, key_ops: _ops, alg: keyAlg, ...material } = matches[0]!;
  if (hasPrivateJwkMembers(material)) return invalid(`${kind} authority is not a public key`);
  if (keyAlg !== undefined && keyAlg !== alg) return invalid(`token alg ${alg} does not match the key's alg ${keyAlg}`);
  return ok(material);
}

/** A verified token's `sub` as a SPIFFE ID, in `trustDomain` when given. */
export function subjectSpiffeId(sub: unknown, trustDomain: string | undefined): Result<SpiffeId, WispErrorData> {
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeId(sub);
  } catch (e) {
    return invalid(`token sub is not a SPIFFE ID: ${e instanceof Error ? e.message : ''}`);
  }
  if (trustDomain !== undefined && trustDomainOf(spiffeId) !== trustDomain) return invalid(`token sub ${spiffeId} is not in trust domain ${trustDomain}`);
  return ok(spiffeId);
}

/** JWT authorities: JWKs, a JWK Set, or a loader of them (called only once the token is well formed). */
export type JwtAuthorities = readonly JWK[] | { keys: readonly JWK[] } | (() => Promise<readonly JWK[]>);

/**
 * Validates a JWT-SVID against JWT authorities (JWKs with kid; `use` may be `jwt-svid` or `sig`):
 * compact form, allowed headers, alg allow-list, signature by the key named in `kid`, `exp` present and
 * not passed, `aud` present and containing `audience`, `sub` a valid SPIFFE ID. Returns a Result with code
 * ERR_JWT_INVALID and a specific message (log it; send a generic one on the wire). A loader's error is
 * thrown as is (the caller tells "cannot check now" from "invalid").
 * @example const r = await validateJwtSvid(token, bundle.jwtAuthorities, { audience: 'reports', now: Date.now() });
 */
export async function validateJwtSvid(token: string, jwks: JwtAuthorities, options: ValidateJwtSvidOptions): Promise<Result<ValidatedJwtSvid>> {
  const decoded = decodeCompactJwt(token);
  if (!decoded.ok) return decoded;
  const header = decoded.value;
  const extra = Object.keys(header).filter((k) => !ALLOWED_HEADERS.has(k));
  if (extra.length > 0) return invalid(`token header has parameters not allowed in a JWT-SVID: ${extra.join(', ')}`);
  const alg = header.alg;
  if (typeof alg !== 'string' || !(JWT_SVID_ALGORITHMS as readonly string[]).includes(alg)) return invalid(`token alg ${String(alg)} is not allowed`);
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') return invalid('token typ must be JWT or JOSE');
  const kid = header.kid;
  if (typeof kid !== 'string' || kid === '') return invalid('token header has no kid');
  const keys = typeof jwks === 'function' ? await jwks() : Array.isArray(jwks) ? (jwks as readonly JWK[]) : (jwks as { keys: readonly JWK[] }).keys;
  const material = authorityKey(keys, kid, alg, 'JWT');
  if (!material.ok) return material;
  let payload: JWTPayload;
  try {
    const key = await importJWK(material.value, alg);
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [alg],
      audience: options.audience,
      issuer: options.issuer,
      currentDate: new Date(options.now),
      clockTolerance: options.clockToleranceSeconds ?? 0,
      requiredClaims: ['sub', 'aud', 'exp'],
    }));
  } catch (e) {
    return invalid(describeJoseError(e));
  }
  // JWT-SVID.md §3.2: aud has one or more values.
  if (Array.isArray(payload.aud) && payload.aud.length === 0) return invalid('token aud is empty');
  const spiffeId = subjectSpiffeId(payload.sub, options.trustDomain);
  if (!spiffeId.ok) return spiffeId;
  return ok({ spiffeId: spiffeId.value, claims: payload, expiresAt: (payload.exp as number) * 1000 });
}

function describeJoseError(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return 'token has expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `token claim ${e.claim} is invalid: ${e.reason}`;
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature does not verify';
  if (e instanceof joseErrors.JWTInvalid) return 'token is not a valid JWT';
  if (e instanceof joseErrors.JOSEError) return `token rejected (${e.code})`;
  return 'token cannot be verified with the JWT authority';
}
