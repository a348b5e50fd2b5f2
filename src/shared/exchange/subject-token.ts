/**
 * The subject token of a token exchange: which trusted issuer it claims, its verification against that
 * issuer's keys (jose, through remote-key-set.ts), and the `oidc:<alias>:<claim>:<value>` selectors its
 * verified claims give. Pure: keys, clock and the replay check are the caller's.
 * @module
 */
import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { verifyJwtWithKeySet, type RemoteKeySet } from '../attestation/remote-key-set.js';
import { WispError } from '../errors.js';
import { parseSelector, type Selector } from '../registry/selectors.js';
import { spiffeIdFromSegments, type SpiffeId, type TrustDomain } from '../spiffe/id.js';
import { JWT_SVID_ALGORITHMS } from '../spiffe/jwt-svid.js';
import type { TokenExchangeConfig, TrustedTokenIssuer } from './config.js';
import { ExchangeError } from './request.js';

/** The selector type of exchanged tokens. */
export const OIDC_SELECTOR_TYPE = 'oidc';

/** The parent ID of the entries that authorize tokens of issuer `alias`: `spiffe://<td>/spire/exchange/<alias>`. */
export function exchangeParentId(td: TrustDomain, alias: string): SpiffeId {
  return spiffeIdFromSegments(td, 'spire', 'exchange', alias);
}

export interface VerifiedSubjectToken {
  issuer: TrustedTokenIssuer;
  payload: JWTPayload;
}

const refused = (description: string) => new ExchangeError('invalid_grant', description);

/**
 * The trusted issuer named by the token's (not yet verified) `iss`, after refusing what is never accepted:
 * not a JWS, `alg: none`, HMAC algorithms (a shared secret is no proof of the issuer).
 */
export function trustedIssuerOf(token: string, config: TokenExchangeConfig): TrustedTokenIssuer {
  let alg: unknown;
  let iss: unknown;
  try {
    alg = decodeProtectedHeader(token).alg;
    iss = decodeJwt(token).iss;
  } catch {
    throw refused('subject_token is not a JWT');
  }
  if (typeof alg !== 'string' || alg.toLowerCase() === 'none') throw refused('subject_token is unsigned (alg none)');
  if (/^HS/i.test(alg)) throw refused(`subject_token algorithm ${alg} (HMAC) is not accepted`);
  if (!(JWT_SVID_ALGORITHMS as readonly string[]).includes(alg)) throw refused(`subject_token algorithm ${alg.slice(0, 16)} is not accepted`);
  if (typeof iss !== 'string') throw refused('subject_token has no issuer (iss)');
  const issuer = config.issuers.find((i) => iss === i.issuer);
  if (!issuer) throw refused('subject_token issuer is not trusted');
  return issuer;
}

/**
 * Verifies the token with its issuer's keys at `nowMs`: signature (the key found by `kid`, one refetch when
 * unknown), `iss`, `aud` (one of the configured audiences), `exp` and `nbf` (± the clock skew), and `iat`
 * no older than maxTokenAgeSeconds. `exp` and `iat` are required.
 */
export async function verifySubjectToken(token: string, issuer: TrustedTokenIssuer, keys: Pick<RemoteKeySet, 'get'>, nowMs: number): Promise<VerifiedSubjectToken> {
  try {
    const { payload } = await verifyJwtWithKeySet(token, keys, {
      now: nowMs,
      prefix: 'subject_token',
      algorithms: [...JWT_SVID_ALGORITHMS],
      issuer: issuer.issuer,
      audience: issuer.audiences,
      clockTolerance: issuer.clockSkewSeconds,
      maxTokenAge: issuer.maxTokenAgeSeconds,
      requiredClaims: ['exp', 'iat'],
    });
    return { issuer, payload };
  } catch (e) {
    if (e instanceof WispError && e.code === 'ERR_ATTESTATION_FAILED') throw refused(e.message);
    throw e;
  }
}

/**
 * The selectors a verified token gives: for each configured claim present with a string, number or boolean
 * value (or an array of them: one selector each), `oidc:<alias>:<claim>:<value>`. A value no selector may
 * hold (too long, control characters) gives none: fewer selectors only ever match fewer entries.
 */
export function selectorsOfToken(issuer: TrustedTokenIssuer, payload: JWTPayload): Selector[] {
  const out = new Map<string, Selector>();
  for (const claim of issuer.claims) {
    const raw = payload[claim];
    const values = Array.isArray(raw) ? raw : [raw];
    for (const value of values.slice(0, 64)) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
      try {
        const s = parseSelector({ type: OIDC_SELECTOR_TYPE, value: `${issuer.alias}:${claim}:${String(value)}` });
        out.set(s.value, s);
      } catch {
        // not representable as a selector: no selector
      }
    }
  }
  return [...out.values()];
}
