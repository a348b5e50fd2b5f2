/**
 * JWT-SVID minting for the CA's hot path: the protected header is encoded once per signing key, the claims
 * are one JSON.stringify, the signature one WebCrypto call. The token is the one `mintJwtSvid` (jose
 * SignJWT) makes, byte for byte: same header and claim order (tests compare them; RS256, being
 * deterministic, gives identical tokens).
 * @module
 */
import type { CryptoKey } from 'jose';
import type { SpiffeId } from './id.js';
import type { JwtSigningAlgorithm } from './jwt-svid.js';
import { toBase64Url } from '../encoding/base64.js';

export interface JwtSvidMinterOptions {
  /** the OIDC issuer URL (`iss`) */
  issuer: string;
  kid: string;
  alg: JwtSigningAlgorithm;
  key: CryptoKey;
}

export interface JwtSvidClaims {
  spiffeId: SpiffeId;
  /** non-empty; JWT-SVID.md §3.2 */
  audience: readonly string[];
  /** ms since the epoch */
  now: number;
  /** ms since the epoch; the caller caps it at the signing key's notAfter */
  expiresAt: number;
  /** the entry's extra claims (src/shared/registry/jwt-svid-claims.ts); the claims above win over them */
  extraClaims?: Readonly<Record<string, unknown>>;
}

export interface JwtSvidMinter {
  mint(claims: JwtSvidClaims): Promise<string>;
}

const encoder = new TextEncoder();

const base64url = toBase64Url;

/** The bytes of an ASCII string (the signing input is base64url text): no TextEncoder call per token. */
function asciiBytes(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * A minter for one signing key. Throws TypeError on an empty audience or a token that would not outlive
 * its issuance (as `mintJwtSvid` does).
 * @example const minter = createJwtSvidMinter({ issuer, kid, alg: 'ES256', key }); await minter.mint({ spiffeId, audience: ['db'], now, expiresAt });
 */
export function createJwtSvidMinter(o: JwtSvidMinterOptions): JwtSvidMinter {
  // JWT-SVID.md §2: alg and kid in the header; typ JWT, as jose's SignJWT call in jwt-svid.ts sets it
  const header = base64url(encoder.encode(JSON.stringify({ alg: o.alg, kid: o.kid, typ: 'JWT' })));
  const algorithm = o.alg === 'ES256' ? { name: 'ECDSA', hash: 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  const iss = JSON.stringify(o.issuer);
  return {
    async mint(c) {
      if (c.audience.length === 0 || c.audience.some((a) => typeof a !== 'string' || a === '')) {
        throw new TypeError('a JWT-SVID needs at least one non-empty audience');
      }
      const exp = Math.floor(c.expiresAt / 1000);
      const iat = Math.floor(c.now / 1000);
      if (exp <= iat) throw new TypeError('a JWT-SVID must expire after it is issued');
      // claim order of SignJWT: setSubject, setAudience, setIssuer, setIssuedAt, setExpirationTime; the text
      // JSON.stringify gives that object (no spaces; numbers are integers), without building the object. An
      // entry's extra claims come first, so the CA's own are written last and always win
      const claims = c.extraClaims
        ? JSON.stringify({ ...c.extraClaims, sub: c.spiffeId, aud: [...c.audience], iss: o.issuer, iat, exp })
        : `{"sub":${JSON.stringify(c.spiffeId)},"aud":${JSON.stringify(c.audience)},"iss":${iss},"iat":${iat},"exp":${exp}}`;
      const input = `${header}.${base64url(encoder.encode(claims))}`;
      const signature = new Uint8Array(await crypto.subtle.sign(algorithm, o.key, asciiBytes(input)));
      return `${input}.${base64url(signature)}`;
    },
  };
}
