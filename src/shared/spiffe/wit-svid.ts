/**
 * WIT-SVIDs (WIT-SVID.md, incubating): the workload's public key in `cnf.jwk` (§3.2), minting with the trust
 * domain's WIT key (§2, §4) and validation against a bundle's `wit-svid` keys (§6.2), plus the WIMSE Workload
 * Proof Token a relying party checks as the proof of possession (§5, draft-ietf-wimse-wpt). The CA, the agent
 * and the CLI use these; every WIT rule lives here once.
 * @module
 */
import { calculateJwkThumbprint, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { WispErrorData } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { toBase64Url } from '../encoding/base64.js';
import type { SpiffeId } from './id.js';
import { authorityKey, decodeCompactJwt, JWT_SVID_ALGORITHMS, MAX_JWT_BYTES, subjectSpiffeId } from './jwt-svid.js';
import { hasPrivateJwkMembers } from './jwk.js';

/** WIT-SVID.md §2.3 and §3.2: the same RS/ES/PS list as JWT-SVIDs (no EdDSA), for `alg` and `cnf.jwk.alg`. */
export const WIT_SVID_ALGORITHMS = JWT_SVID_ALGORITHMS;
export type WitSvidAlgorithm = (typeof WIT_SVID_ALGORITHMS)[number];

/** §2.2: the `typ` of a WIT-SVID; draft-ietf-wimse-wpt: the `typ` of a proof token. */
export const WIT_TYP = 'wit+jwt';
export const WPT_TYP = 'wpt+jwt';

/** The curve each ES algorithm requires (RFC 7518 §3.4). */
const EC_CURVES: Record<string, string> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };
/** Smallest RSA modulus accepted in `cnf.jwk`, bits. */
const MIN_RSA_BITS = 2048;
/** Longest member value of a `cnf.jwk` (an RSA-8192 modulus is 1366 characters). */
const MAX_MEMBER_CHARS = 2048;

const bad = (message: string): Result<never, WispErrorData> => err({ code: 'ERR_BAD_REQUEST', message });
const invalid = (message: string): Result<never, WispErrorData> => err({ code: 'ERR_JWT_INVALID', message });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * §3.2: a workload's public key for `cnf.jwk`: an EC (P-256/384/521, matching its ES alg) or RSA (≥ 2048
 * bits, RS or PS) JWK with an allowed `alg`, no private member, and a key that imports. Returns only the
 * public members and `alg` (ERR_BAD_REQUEST otherwise).
 */
export async function parseWitPublicJwk(value: unknown, what = 'publicKey'): Promise<Result<JWK>> {
  if (!isObject(value)) return bad(`${what} must be a JWK object`);
  if (hasPrivateJwkMembers(value)) return bad(`${what} must not contain private key members`);
  const alg = value.alg;
  if (typeof alg !== 'string' || !(WIT_SVID_ALGORITHMS as readonly string[]).includes(alg)) return bad(`${what}.alg must be one of ${WIT_SVID_ALGORITHMS.join(', ')}`);
  const str = (m: string) => (typeof value[m] === 'string' && value[m] !== '' && (value[m] as string).length <= MAX_MEMBER_CHARS ? (value[m] as string) : undefined);
  let jwk: JWK;
  if (alg.startsWith('ES')) {
    const [crv, x, y] = [str('crv'), str('x'), str('y')];
    if (value.kty !== 'EC' || crv !== EC_CURVES[alg] || !x || !y) return bad(`${what}: ${alg} needs an EC key on ${EC_CURVES[alg]} (kty, crv, x, y)`);
    jwk = { kty: 'EC', crv, x, y, alg };
  } else {
    const [n, e] = [str('n'), str('e')];
    if (value.kty !== 'RSA' || !n || !e) return bad(`${what}: ${alg} needs an RSA key (kty, n, e)`);
    // base64url: 4 characters carry 3 bytes; leading zero octets are not allowed (RFC 7518 §6.3.1.1)
    if (Math.floor((n.length * 6) / 8) * 8 < MIN_RSA_BITS) return bad(`${what}: the RSA modulus must be at least ${MIN_RSA_BITS} bits`);
    jwk = { kty: 'RSA', n, e, alg };
  }
  try {
    await importJWK(jwk, alg); // rejects points off the curve and malformed members
  } catch {
    return bad(`${what} is not a valid ${alg} public key`);
  }
  return ok(jwk);
}

export interface WitSvidMinterOptions {
  kid: string;
  alg: WitSvidAlgorithm;
  key: CryptoKey;
}

export interface WitSvidClaims {
  spiffeId: SpiffeId;
  /** the workload's key, as `parseWitPublicJwk` returned it */
  cnfJwk: JWK;
  /** ms since the epoch */
  now: number;
  /** ms since the epoch; the caller caps it at the signing key's notAfter */
  expiresAt: number;
}

export interface WitSvidMinter {
  mint(claims: WitSvidClaims): Promise<string>;
}

/**
 * §4: header {alg, kid, typ: wit+jwt} and nothing else (§2.4); claims sub, exp, cnf, iat and a random jti
 * (§3.3, for audit correlation); no aud (§3.8) and no iss (§3.7 leaves it out; it must not look like OIDC).
 */
export function createWitSvidMinter(o: WitSvidMinterOptions): WitSvidMinter {
  return {
    async mint(c) {
      const exp = Math.floor(c.expiresAt / 1000);
      const iat = Math.floor(c.now / 1000);
      if (exp <= iat) throw new TypeError('a WIT-SVID must expire after it is issued');
      const jti = toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
      return new SignJWT({ cnf: { jwk: c.cnfJwk } })
        .setProtectedHeader({ alg: o.alg, kid: o.kid, typ: WIT_TYP })
        .setSubject(c.spiffeId)
        .setIssuedAt(iat)
        .setExpirationTime(exp)
        .setJti(jti)
        .sign(o.key);
    },
  };
}

export interface ValidateWitSvidOptions {
  /** ms since the epoch */
  now: number;
  /** when set, `sub` must be in this trust domain (the bundle's) */
  trustDomain?: string;
  /** allowed clock skew for exp/nbf, seconds (§3.4: seconds to a couple of minutes; default 0) */
  clockToleranceSeconds?: number;
}

export interface ValidatedWitSvid {
  spiffeId: SpiffeId;
  claims: JWTPayload;
  /** the workload's public key (`cnf.jwk`), checked as at issuance */
  cnfJwk: JWK;
  /** ms since the epoch */
  expiresAt: number;
}

/**
 * Validates a WIT-SVID against WIT authorities (a bundle's `wit-svid` keys, §6.2): compact JWS, `typ`
 * wit+jwt, an allowed `alg`, `kid` present and naming exactly one key, the signature, `exp` present and not
 * passed, `nbf` not in the future, no `aud`, `sub` a SPIFFE ID (of `trustDomain` when given), `cnf.jwk` a
 * valid public key with an allowed alg. ERR_JWT_INVALID with a specific message otherwise. This is not
 * acceptance: §4 requires a proof of possession as well (`verifyWorkloadProofToken`).
 */
export async function validateWitSvid(token: string, authorities: readonly JWK[], options: ValidateWitSvidOptions): Promise<Result<ValidatedWitSvid>> {
  const decoded = decodeCompactJwt(token);
  if (!decoded.ok) return decoded;
  const header = decoded.value;
  if (header.typ !== WIT_TYP) return invalid(`token typ must be ${WIT_TYP}`);
  const alg = header.alg;
  if (typeof alg !== 'string' || !(WIT_SVID_ALGORITHMS as readonly string[]).includes(alg)) return invalid(`token alg ${String(alg)} is not allowed`);
  const kid = header.kid;
  if (typeof kid !== 'string' || kid === '') return invalid('token header has no kid');
  const material = authorityKey(authorities, kid, alg, 'WIT');
  if (!material.ok) return material;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, await importJWK(material.value, alg), {
      algorithms: [alg],
      typ: WIT_TYP,
      currentDate: new Date(options.now),
      clockTolerance: options.clockToleranceSeconds ?? 0,
      requiredClaims: ['sub', 'exp', 'cnf'],
    }));
  } catch (e) {
    return invalid(`token rejected: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (payload.aud !== undefined) return invalid('a WIT-SVID must not carry aud');
  const spiffeId = subjectSpiffeId(payload.sub, options.trustDomain);
  if (!spiffeId.ok) return spiffeId;
  const cnf = payload.cnf;
  const cnfJwk = await parseWitPublicJwk(isObject(cnf) ? cnf.jwk : undefined, 'cnf.jwk');
  if (!cnfJwk.ok) return invalid(`token ${cnfJwk.error.message}`);
  return ok({ spiffeId: spiffeId.value, claims: payload, cnfJwk: cnfJwk.value, expiresAt: (payload.exp as number) * 1000 });
}

/** draft-ietf-wimse-wpt: `wth`, the base64url SHA-256 of the WIT the proof is bound to. */
export async function witHash(wit: string): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(wit))));
}

/** The workload-held key's RFC 7638 thumbprint (what a log may name instead of the key). */
export const cnfThumbprint = (jwk: JWK): Promise<string> => calculateJwkThumbprint(jwk, 'sha256');

export interface VerifyProofOptions {
  /** the recipient this proof must be for (`aud`) */
  audience: string;
  /** ms since the epoch */
  now: number;
  clockToleranceSeconds?: number;
  /** longest lifetime (exp − iat) accepted, seconds; WIT-SVID.md §7.2 asks for short-lived proofs (default 300) */
  maxLifetimeSeconds?: number;
}

/**
 * WIT-SVID.md §5: the proof of possession, as a WIMSE Workload Proof Token: `typ` wpt+jwt, signed with the
 * private key of `wit`'s `cnf.jwk` (with its alg), `aud` the recipient, `exp` present, short-lived, `jti`
 * present, `wth` the hash of this WIT. `wit` must already be validated (`validateWitSvid`).
 */
export async function verifyWorkloadProofToken(proof: string, wit: string, validated: ValidatedWitSvid, options: VerifyProofOptions): Promise<Result<JWTPayload>> {
  if (typeof proof !== 'string' || proof.length === 0 || proof.length > MAX_JWT_BYTES) return invalid('proof token is empty or too large');
  const alg = validated.cnfJwk.alg!;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(proof, await importJWK(validated.cnfJwk, alg), {
      algorithms: [alg],
      typ: WPT_TYP,
      audience: options.audience,
      currentDate: new Date(options.now),
      clockTolerance: options.clockToleranceSeconds ?? 0,
      requiredClaims: ['aud', 'exp', 'jti', 'wth'],
    }));
  } catch (e) {
    return invalid(`proof token rejected: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (payload.wth !== (await witHash(wit))) return invalid('proof token wth does not match the WIT-SVID');
  const maxLifetime = options.maxLifetimeSeconds ?? 300;
  const start = typeof payload.iat === 'number' ? payload.iat : Math.floor(options.now / 1000);
  if ((payload.exp as number) - start > maxLifetime) return invalid(`proof token lives longer than ${maxLifetime}s`);
  return ok(payload);
}
