/**
 * SPIFFE bundles (SPIFFE_Trust_Domain_and_Bundle.md §4, X509-SVID.md §6, JWT-SVID.md §6, WIT-SVID.md §6): the
 * published keys of a trust domain as a JWK Set with `use` x509-svid / jwt-svid / wit-svid, and back. Also the OIDC JWKS
 * (JWT keys only, `use` sig) served at /keys.
 * @module
 */
import type { JWK } from 'jose';
import { WispError } from '../errors.js';
import { fromBase64 } from '../encoding/base64.js';
import { hasPrivateJwkMembers } from './jwk.js';
import { publicJwkOf, readCertificateKey, type CertificateKeyReader } from './key-algorithm.js';

/** A JWT authority as published: a public JWK with kid, alg and use. */
export interface PublishedJwk {
  kty: string;
  kid: string;
  alg: string;
  use: 'sig';
  [member: string]: unknown;
}

/** The keys the trust domain publishes right now (prepared, active and not-yet-expired old). */
export interface PublishedKeys {
  /** X.509 authorities (roots of trust for X509-SVIDs), base64 DER, one per key */
  x509Authorities: string[];
  jwtAuthorities: PublishedJwk[];
  /** WIT-SVID signing keys (WIT-SVID.md §6.1); absent: the trust domain does not issue WIT-SVIDs */
  witAuthorities?: PublishedJwk[];
  /** increases on every change of the published set */
  sequence: number;
  /** seconds; how often relying parties should re-fetch */
  refreshHintSeconds: number;
  /**
   * The published authorities an operator tainted (shared/ca/local-authority.ts): X.509 by authority ID
   * (subject key ID, hex), JWT by kid. Told to agents, not to relying parties. Absent: none.
   */
  tainted?: { x509: string[]; jwt: string[] };
}

/** A SPIFFE bundle document (a JWK Set with SPIFFE parameters). */
export interface SpiffeBundleJson {
  keys: Record<string, unknown>[];
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

/** A parsed, validated bundle of one trust domain. */
export interface ParsedBundle {
  trustDomain: string;
  /** DER CA certificates (x509-svid keys) */
  x509Authorities: Uint8Array[];
  /** public JWKs with kid (jwt-svid keys), `use` removed */
  jwtAuthorities: JWK[];
  /** public JWKs with kid (wit-svid keys), `use` removed; absent when the bundle has none */
  witAuthorities?: JWK[];
  sequence?: number;
  refreshHintSeconds?: number;
}

/**
 * `read` when given, else the issuer's reader (x509.ts `certificateKeyOf`, @peculiar/x509), loaded only now:
 * the agent passes its own and never loads @peculiar/x509 for bundles.
 */
export async function certificateKeyReader(read?: CertificateKeyReader): Promise<CertificateKeyReader> {
  return read ?? (await import('./x509.js')).certificateKeyOf;
}

/** Largest bundle document parsed from text. */
export const MAX_BUNDLE_BYTES = 1024 * 1024;

/** Public key members copied from a JWT authority into the bundle and the JWKS. */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e'] as const;

function publicMembers(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}

/**
 * Builds the SPIFFE bundle document for `keys`: one x509-svid JWK per CA certificate (public key members
 * plus exactly one certificate in x5c, no kid), one jwt-svid JWK per JWT key (with kid).
 * `readKey` reads a certificate's key (default: @peculiar/x509's, see `certificateKeyReader`).
 * @example const doc = await buildBundleJson(await ca.getPublishedKeys());
 */
export async function buildBundleJson(keys: PublishedKeys, readKey?: CertificateKeyReader): Promise<SpiffeBundleJson> {
  const read = await certificateKeyReader(readKey);
  const x509 = await Promise.all(
    keys.x509Authorities.map(async (b64) => {
      const key = readCertificateKey(read, fromBase64(b64, 'ERR_INTERNAL', 'X.509 authority'), 'ERR_INTERNAL', 'X.509 authority');
      return { use: 'x509-svid', ...(await publicJwkOf(key)), x5c: [b64] };
    }),
  );
  const jwt = keys.jwtAuthorities.map((k) => ({ use: 'jwt-svid', kid: k.kid, ...publicMembers(k) }));
  const wit = (keys.witAuthorities ?? []).map((k) => ({ use: 'wit-svid', kid: k.kid, ...publicMembers(k) }));
  return { keys: [...x509, ...jwt, ...wit], spiffe_sequence: keys.sequence, spiffe_refresh_hint: keys.refreshHintSeconds };
}

/**
 * Most keys in the OIDC JWKS: AWS IAM accepts at most 100 keys per OIDC provider. Rotation publishes at most
 * three JWT keys at a time (prepared, active, old), so this is a guard, not a working limit.
 */
export const JWKS_MAX_KEYS = 100;

/**
 * The OIDC JWKS: the JWT authorities only, each with kid, alg and use "sig", public members only. Keys
 * without a kid or alg are left out (a relying party cannot select or verify with them); past
 * JWKS_MAX_KEYS, the newest keys (the end of the list, as the CA publishes them oldest first) are kept.
 */
export function buildJwks(keys: Pick<PublishedKeys, 'jwtAuthorities'>): { keys: PublishedJwk[] } {
  const usable = keys.jwtAuthorities.filter((k) => typeof k.kid === 'string' && k.kid !== '' && typeof k.alg === 'string' && k.alg !== '');
  return { keys: usable.slice(-JWKS_MAX_KEYS).map((k) => ({ ...publicMembers(k), kid: k.kid, alg: k.alg, use: 'sig' }) as PublishedJwk) };
}

function malformed(trustDomain: string, message: string, cause?: unknown): WispError {
  return new WispError('ERR_BAD_REQUEST', `bundle of "${trustDomain}": ${message}`, cause === undefined ? undefined : { cause });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNonNegativeInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parses a SPIFFE bundle document (text or already-parsed JSON) with go-spiffe's strictness: `keys` must be
 * an array; an x509-svid key must carry exactly one x5c certificate, which must parse and match the key's
 * public members when present; a jwt-svid key must have a unique kid and public members only. Keys with a
 * missing or unknown `use` are ignored (bundle spec §4.2.2). Throws WispError ERR_BAD_REQUEST. `readKey` reads
 * a certificate's key (default: @peculiar/x509's; the agent passes node:crypto's, see `certificateKeyReader`).
 * @example const { x509Authorities, jwtAuthorities } = await parseBundleJson(text, 'example.org');
 */
export async function parseBundleJson(json: string | unknown, trustDomain: string, readKey?: CertificateKeyReader): Promise<ParsedBundle> {
  let doc: unknown = json;
  if (typeof json === 'string') {
    if (json.length > MAX_BUNDLE_BYTES) throw malformed(trustDomain, `larger than ${MAX_BUNDLE_BYTES} bytes`);
    try {
      doc = JSON.parse(json);
    } catch (e) {
      throw malformed(trustDomain, 'not JSON', e);
    }
  }
  if (!isObject(doc)) throw malformed(trustDomain, 'not a JSON object');
  if (!Array.isArray(doc.keys)) throw malformed(trustDomain, '"keys" must be an array');
  const seq = doc.spiffe_sequence;
  if (seq !== undefined && !isNonNegativeInt(seq)) throw malformed(trustDomain, 'spiffe_sequence must be a non-negative integer');
  const hint = doc.spiffe_refresh_hint;
  if (hint !== undefined && !isNonNegativeInt(hint)) throw malformed(trustDomain, 'spiffe_refresh_hint must be a non-negative integer');
  const x509Authorities: Uint8Array[] = [];
  const jwtAuthorities: JWK[] = [];
  const witAuthorities: JWK[] = [];
  const kids = new Set<string>();
  let read: CertificateKeyReader | undefined;
  for (const [i, key] of doc.keys.entries()) {
    if (!isObject(key)) throw malformed(trustDomain, `keys[${i}] is not an object`);
    if (typeof key.kty !== 'string' || key.kty === '') throw malformed(trustDomain, `keys[${i}] has no kty`);
    if (hasPrivateJwkMembers(key)) throw malformed(trustDomain, `keys[${i}] contains private key material`);
    if (key.use === 'x509-svid') {
      read ??= await certificateKeyReader(readKey);
      x509Authorities.push(await x509Authority(key, i, trustDomain, read));
    } else if (key.use === 'jwt-svid' || key.use === 'wit-svid') {
      // WIT-SVID.md §6.1: a kid is unique across the jwt-svid and wit-svid keys alike
      const jwk = signingKey(key, i, trustDomain, kids);
      if (jwk) (key.use === 'jwt-svid' ? jwtAuthorities : witAuthorities).push(jwk);
    }
  }
  return { trustDomain, x509Authorities, jwtAuthorities, ...(witAuthorities.length > 0 ? { witAuthorities } : {}), sequence: seq, refreshHintSeconds: hint };
}

/** A jwt-svid or wit-svid key: a unique kid and public members; undefined for an unknown key type (ignored, §4.2.1). */
function signingKey(key: Record<string, unknown>, i: number, trustDomain: string, kids: Set<string>): JWK | undefined {
  if (typeof key.kid !== 'string' || key.kid === '') throw malformed(trustDomain, `keys[${i}]: a ${String(key.use)} key must have a kid`);
  if (kids.has(key.kid)) throw malformed(trustDomain, `keys[${i}]: duplicate kid ${key.kid}`);
  const required = key.kty === 'EC' ? ['crv', 'x', 'y'] : key.kty === 'RSA' ? ['n', 'e'] : undefined;
  if (!required) return undefined;
  if (required.some((m) => typeof key[m] !== 'string' || key[m] === '')) throw malformed(trustDomain, `keys[${i}]: ${key.kty} key lacks ${required.join(', ')}`);
  kids.add(key.kid);
  const { use: _use, ...jwk } = key;
  return jwk as JWK;
}

async function x509Authority(key: Record<string, unknown>, i: number, trustDomain: string, read: CertificateKeyReader): Promise<Uint8Array> {
  if ('kid' in key) throw malformed(trustDomain, `keys[${i}]: an x509-svid key must not have a kid`);
  const x5c = key.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string') {
    throw malformed(trustDomain, `keys[${i}]: an x509-svid key must have exactly one certificate in x5c`);
  }
  const der = fromBase64(x5c[0], 'ERR_BAD_REQUEST', `keys[${i}].x5c[0]`);
  const certKey = readCertificateKey(read, der, 'ERR_BAD_REQUEST', `keys[${i}].x5c[0]`);
  let expected: Record<string, string>;
  try {
    expected = await publicJwkOf(certKey);
  } catch (e) {
    throw malformed(trustDomain, `keys[${i}]: unsupported certificate public key`, e);
  }
  for (const [m, v] of Object.entries(expected)) {
    if (m in key && key[m] !== v) throw malformed(trustDomain, `keys[${i}]: ${m} does not match the x5c certificate's public key`);
  }
  return der;
}
