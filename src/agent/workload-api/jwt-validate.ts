/**
 * ValidateJWTSVID's validation: choose the JWT bundle of the token's trust domain (own or federated; no
 * bundle = untrusted, Workload API §6.3), then validate with the shared `validateJwtSvid` (JWT-SVID §2–§3:
 * header, alg, kid, signature, aud, exp, sub). The specific reason goes to the log, a fixed message to
 * the caller.
 * @module
 */
import { decodeJwt, type JWTPayload } from 'jose';
import type { BundleSet } from '../cache/identity-source.js';
import { WispError } from '../../shared/errors.js';
import { parseSpiffeId, trustDomainOf } from '../../shared/spiffe/id.js';
import { MAX_JWT_BYTES, validateJwtSvid } from '../../shared/spiffe/jwt-svid.js';

/** Leeway on exp/nbf/iat for clock skew between nodes, seconds. */
export const JWT_CLOCK_TOLERANCE_S = 30;

export interface ValidatedJwt {
  spiffeId: string;
  claims: JWTPayload;
}

/** Validates a JWT-SVID for `audience`; `now` in ms since the epoch. Throws WispError ERR_JWT_INVALID. */
export type JwtSvidValidator = (token: string, audience: string, bundles: BundleSet, now: number) => Promise<ValidatedJwt>;

/** The message every invalid token gets on the wire; the reason is the error's `cause`. */
export const INVALID_JWT_MESSAGE = 'JWT-SVID is not valid';

function invalid(reason: string): WispError {
  return new WispError('ERR_JWT_INVALID', INVALID_JWT_MESSAGE, { cause: reason });
}

/**
 * @example const { spiffeId, claims } = await validateWorkloadJwt(token, 'spiffe://example.org/db', source.bundles(), Date.now());
 */
export const validateWorkloadJwt: JwtSvidValidator = async (token, audience, bundles, now) => {
  if (token.length > MAX_JWT_BYTES) throw invalid(`token is larger than ${MAX_JWT_BYTES} bytes`);
  let trustDomain: string;
  try {
    // unverified: only picks the bundle; the shared validator checks sub against the verified payload
    trustDomain = trustDomainOf(parseSpiffeId(decodeJwt(token).sub));
  } catch {
    throw invalid('token is not a JWT with a SPIFFE ID subject');
  }
  const bundle = trustDomain === bundles.own.trustDomain ? bundles.own : bundles.federated.get(trustDomain);
  if (!bundle) throw invalid(`no JWT bundle for trust domain ${trustDomain}`);
  const result = await validateJwtSvid(token, bundle.jwtAuthorities, {
    audience,
    now,
    trustDomain,
    clockToleranceSeconds: JWT_CLOCK_TOLERANCE_S,
  });
  if (!result.ok) throw invalid(result.error.message);
  return { spiffeId: result.value.spiffeId, claims: result.value.claims };
};
