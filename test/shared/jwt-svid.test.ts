import { exportJWK, SignJWT, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../src/shared/spiffe/id.js';
import { mintJwtSvid, validateJwtSvid } from '../../src/shared/spiffe/jwt-svid.js';
import { generateKeys } from '../helpers/shared/pki.js';

const NOW = Date.UTC(2026, 5, 1);
const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const ISSUER = 'https://issuer.example.org';

async function keyPair(kind: 'P-256' | 'RSA-2048', kid: string) {
  const keys = await generateKeys(kind);
  const alg = kind === 'P-256' ? ('ES256' as const) : ('RS256' as const);
  const jwk = { ...(await exportJWK(keys.publicKey)), kid, use: 'jwt-svid' } as JWK;
  return { keys, alg, jwk, kid };
}

describe('JWT-SVID mint and validate', () => {
  it.each(['P-256', 'RSA-2048'] as const)('round-trips a %s token with the claims of JWT-SVID.md §3', async (kind) => {
    const k = await keyPair(kind, 'kid-1');
    const token = await mintJwtSvid({ spiffeId: ID, audience: ['reports'], issuer: ISSUER, now: NOW, expiresAt: NOW + 300_000, kid: k.kid, alg: k.alg, key: k.keys.privateKey });
    const [header] = token.split('.');
    expect(JSON.parse(atob(header!.replace(/-/g, '+').replace(/_/g, '/')))).toEqual({ alg: k.alg, kid: 'kid-1', typ: 'JWT' });
    const r = await validateJwtSvid(token, [k.jwk], { audience: 'reports', now: NOW + 1000, trustDomain: 'example.org', issuer: ISSUER });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.spiffeId).toBe(ID);
    expect(r.value.claims).toMatchObject({ sub: ID, aud: ['reports'], iss: ISSUER, iat: NOW / 1000, exp: NOW / 1000 + 300 });
    expect(r.value.expiresAt).toBe(NOW + 300_000);
  });

  it('refuses to mint without an audience (caller bug)', async () => {
    const k = await keyPair('P-256', 'k');
    await expect(mintJwtSvid({ spiffeId: ID, audience: [], issuer: ISSUER, now: NOW, expiresAt: NOW + 1000, kid: 'k', alg: 'ES256', key: k.keys.privateKey })).rejects.toThrow(TypeError);
  });

  describe('rejects', async () => {
    const k = await keyPair('P-256', 'k1');
    const other = await keyPair('P-256', 'k1');
    const good = () => mintJwtSvid({ spiffeId: ID, audience: ['reports', 'billing'], issuer: ISSUER, now: NOW, expiresAt: NOW + 300_000, kid: 'k1', alg: 'ES256', key: k.keys.privateKey });
    const custom = (header: Record<string, unknown>, claims: Record<string, unknown>, key = k.keys.privateKey) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header }).sign(key);
    const base = { sub: ID, aud: ['reports'], exp: NOW / 1000 + 300, iat: NOW / 1000 };
    const cases: [string, () => Promise<string>, JWK[], Partial<{ audience: string; now: number; trustDomain: string }>, RegExp][] = [
      ['an expired token', good, [k.jwk], { now: NOW + 300_000 }, /expired/],
      ['a token for another audience', good, [k.jwk], { audience: 'other' }, /aud/],
      ['a token signed by another key with the same kid', good, [other.jwk], {}, /signature/],
      ['a token with an unknown kid', good, [{ ...k.jwk, kid: 'k2' }], {}, /no JWT authority with kid k1/],
      ['a token outside the expected trust domain', good, [k.jwk], { trustDomain: 'other.org' }, /not in trust domain/],
      ['a token without aud', () => custom({}, { sub: ID, exp: base.exp }), [k.jwk], {}, /aud/],
      ['a token without exp', () => custom({}, { sub: ID, aud: ['reports'] }), [k.jwk], {}, /exp/],
      ['a token whose sub is not a SPIFFE ID', () => custom({}, { ...base, sub: 'web' }), [k.jwk], {}, /sub is not a SPIFFE ID/],
      ['a token with a forbidden header', () => custom({ jku: 'https://evil' }, base), [k.jwk], {}, /not allowed in a JWT-SVID: jku/],
      ['a token with typ other than JWT/JOSE', () => custom({ typ: 'at+jwt' }, base), [k.jwk], {}, /typ/],
      ['a token without kid', () => new SignJWT(base).setProtectedHeader({ alg: 'ES256' }).sign(k.keys.privateKey), [k.jwk], {}, /no kid/],
      ['an HS256 token', async () => new SignJWT(base).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new Uint8Array(32)), [k.jwk], {}, /alg HS256 is not allowed/],
      ['an unsigned token', async () => `${btoa(JSON.stringify({ alg: 'none', kid: 'k1' }))}.${btoa(JSON.stringify(base))}.`, [k.jwk], {}, /alg none/],
      ['garbage', async () => 'not.a.jwt', [k.jwk], {}, /header/],
      ['an oversized token', async () => 'a'.repeat(17 * 1024), [k.jwk], {}, /larger/],
    ];
    it.each(cases)('%s', async (_name, make, jwks, opts, message) => {
      const r = await validateJwtSvid(await make(), jwks, { audience: 'reports', now: NOW + 1000, ...opts });
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error.code).toBe('ERR_JWT_INVALID');
      expect(r.error.message).toMatch(message);
    });
  });

  describe('with a key loader (admin authentication)', async () => {
    const k = await keyPair('P-256', 'k1');
    const token = () => mintJwtSvid({ spiffeId: ID, audience: [ISSUER], issuer: ISSUER, now: NOW, expiresAt: NOW + 300_000, kid: 'k1', alg: 'ES256', key: k.keys.privateKey });

    it('loads the keys for a well-formed token and validates against them', async () => {
      const r = await validateJwtSvid(await token(), async () => [k.jwk], { audience: ISSUER, now: NOW + 1000, trustDomain: 'example.org' });
      expect(r.ok && r.value.spiffeId).toBe(ID);
    });

    it.each([['a.b.c'], ['not-a-jwt'], [`${(await token()).split('.')[0]}.e30x.sig`]])('does not load keys for the malformed %s', async (bad) => {
      let loaded = false;
      const r = await validateJwtSvid(bad, async () => ((loaded = true), [k.jwk]), { audience: ISSUER, now: NOW + 1000 });
      expect(r.ok).toBe(false);
      expect(loaded).toBe(false);
    });

    it('throws the loader error as is, so the caller can answer "unavailable"', async () => {
      await expect(validateJwtSvid(await token(), () => Promise.reject(new Error('DO down')), { audience: ISSUER, now: NOW + 1000 })).rejects.toThrow('DO down');
    });
  });
});
