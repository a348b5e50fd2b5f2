/**
 * A JSON Web Key Set fetched from a URL and cached by the response's cache headers (Cache-Control
 * max-age, else Expires, else a default), with a fetch timeout and a refetch cooldown: a token with an
 * unknown `kid` triggers at most one refetch per cooldown, so forged kids cannot hammer the key server.
 * Like jose's createRemoteJWKSet, but honouring the publisher's cache lifetime (Google sets max-age to the
 * keys' rotation schedule). Time is an argument (G7); fetch is injected so tests need no network.
 * @module
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { errors as joseErrors } from 'jose';
import { WispError } from '../errors.js';

/** Defaults (oauth-provider fetches JWKS with a 10 s timeout; jose's cooldown is 30 s). */
export const KEY_SET_FETCH_TIMEOUT_MS = 10_000;
export const KEY_SET_DEFAULT_MAX_AGE_MS = 60 * 60 * 1000;
export const KEY_SET_MAX_MAX_AGE_MS = 24 * 60 * 60 * 1000;
export const KEY_SET_REFETCH_COOLDOWN_MS = 30_000;
export const KEY_SET_MAX_BYTES = 256 * 1024;

export interface RemoteKeySetOptions {
  url: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
  cooldownMs?: number;
}

/** How long a response may be cached, ms, from its headers (max-age wins over Expires). */
export function cacheLifetimeMs(headers: Headers, now: number): number {
  const cc = headers.get('cache-control') ?? '';
  if (/\b(no-store|no-cache)\b/i.test(cc)) return 0;
  const maxAge = /\bmax-age\s*=\s*(\d+)/i.exec(cc);
  if (maxAge) return Math.min(Number(maxAge[1]) * 1000, KEY_SET_MAX_MAX_AGE_MS);
  const expires = headers.get('expires');
  if (expires) {
    const at = Date.parse(expires);
    if (!Number.isNaN(at)) return Math.max(0, Math.min(at - now, KEY_SET_MAX_MAX_AGE_MS));
  }
  return KEY_SET_DEFAULT_MAX_AGE_MS;
}

export class RemoteKeySet {
  readonly url: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #cooldownMs: number;
  #keys: JSONWebKeySet | undefined;
  #expiresAt = 0;
  #fetchedAt = -Infinity;
  #pending: Promise<JSONWebKeySet> | undefined;

  constructor(options: RemoteKeySetOptions) {
    this.url = options.url;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? KEY_SET_FETCH_TIMEOUT_MS;
    this.#cooldownMs = options.cooldownMs ?? KEY_SET_REFETCH_COOLDOWN_MS;
  }

  async #load(now: number): Promise<JSONWebKeySet> {
    let res: Response;
    try {
      // redirect 'manual' (workerd has no 'error'): a redirect is refused below, never followed.
      // RFC 7517's media type first: Kubernetes' /openid/v1/jwks answers 406 to application/json alone
      res = await this.#fetch(this.url, { headers: { accept: 'application/jwk-set+json, application/json' }, signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'manual' });
    } catch (e) {
      throw new WispError('ERR_UNAVAILABLE', `signing keys at ${this.url} could not be fetched (${e instanceof Error && e.name === 'TimeoutError' ? 'timeout' : 'network error'})`);
    }
    if (!res.ok) throw new WispError('ERR_UNAVAILABLE', `signing keys at ${this.url} answered HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`);
    const text = await res.text();
    if (text.length > KEY_SET_MAX_BYTES) throw new WispError('ERR_UNAVAILABLE', `signing keys at ${this.url} are larger than ${KEY_SET_MAX_BYTES} bytes`);
    let jwks: unknown;
    try {
      jwks = JSON.parse(text);
    } catch {
      throw new WispError('ERR_UNAVAILABLE', `signing keys at ${this.url} are not JSON`);
    }
    if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as JSONWebKeySet).keys)) {
      throw new WispError('ERR_UNAVAILABLE', `signing keys at ${this.url} are not a JWK Set`);
    }
    this.#keys = jwks as JSONWebKeySet;
    this.#fetchedAt = now;
    this.#expiresAt = now + cacheLifetimeMs(res.headers, now);
    return this.#keys;
  }

  /** The key set: cached while fresh; `refresh` refetches unless the last fetch is within the cooldown. */
  async get(now: number, refresh = false): Promise<JSONWebKeySet> {
    const fresh = this.#keys && now < this.#expiresAt;
    const cooling = now - this.#fetchedAt < this.#cooldownMs;
    if (this.#keys && (fresh || cooling) && !(refresh && !cooling)) return this.#keys;
    this.#pending ??= this.#load(now).finally(() => (this.#pending = undefined));
    return this.#pending;
  }
}

export interface VerifiedJwt {
  payload: JWTPayload;
  kid: string;
}

/**
 * Verifies a JWT with a remote key set: the key must be found by `kid` (refetching once if unknown),
 * then signature, `aud`, `exp`/`nbf` (at `now`) and any `options` are checked by jose.
 * Failures throw ERR_ATTESTATION_FAILED naming what failed (`prefix: token expired`, …).
 */
export async function verifyJwtWithKeySet(token: string, keys: Pick<RemoteKeySet, 'get'>, options: JWTVerifyOptions & { now: number; prefix: string; algorithms: string[] }): Promise<VerifiedJwt> {
  const { now, prefix, ...verify } = options;
  const refused = (m: string) => new WispError('ERR_ATTESTATION_FAILED', `${prefix}: ${m}`);
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw refused('token is not a JWT');
  }
  if (!kid) throw refused('token has no key ID (kid)');
  let jwks = await keys.get(now);
  if (!jwks.keys.some((k) => k.kid === kid)) jwks = await keys.get(now, true);
  if (!jwks.keys.some((k) => k.kid === kid)) throw refused(`token is signed by an unknown key (kid ${kid.slice(0, 64)})`);
  try {
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { ...verify, currentDate: new Date(now) });
    return { payload, kid };
  } catch (e) {
    // jose reports a token older than maxTokenAge as JWTExpired on `iat`
    if (e instanceof joseErrors.JWTExpired) throw refused(e.claim === 'iat' ? 'token is older than the maximum token age (iat)' : 'token has expired');
    if (e instanceof joseErrors.JWTClaimValidationFailed) throw refused(`token claim ${e.claim} is invalid (${e.reason})`);
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw refused('token signature is invalid');
    if (e instanceof joseErrors.JOSEAlgNotAllowed) throw refused('token algorithm is not allowed');
    if (e instanceof joseErrors.JOSEError) throw refused(`token is invalid (${e.code})`);
    throw e;
  }
}
