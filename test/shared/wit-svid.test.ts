// WIT-SVID rules (src/shared/spiffe/wit-svid.ts; WIT-SVID.md) on both runtimes: tokens made here with the
// minter and, for the refusals, with jose directly (headers and claims the minter never makes).
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { createWitSvidMinter, parseWitPublicJwk, validateWitSvid, verifyWorkloadProofToken, witHash } from '../../src/shared/spiffe/wit-svid.js';
import type { SpiffeId } from '../../src/shared/spiffe/id.js';

const ID = 'spiffe://example.org/web' as SpiffeId;
const NOW = Date.UTC(2026, 0, 1);
let issuerKey: CryptoKey;
let authorities: JWK[];
let workload: { privateKey: CryptoKey; jwk: JWK };

beforeAll(async () => {
  const issuer = await generateKeyPair('ES256', { extractable: true });
  issuerKey = issuer.privateKey;
  authorities = [{ ...(await exportJWK(issuer.publicKey)), kid: 'wit-1' }];
  const w = await generateKeyPair('ES256', { extractable: true });
  workload = { privateKey: w.privateKey, jwk: { ...(await exportJWK(w.publicKey)), alg: 'ES256' } };
});

const mint = (expiresIn = 600) => createWitSvidMinter({ kid: 'wit-1', alg: 'ES256', key: issuerKey }).mint({ spiffeId: ID, cnfJwk: workload.jwk, now: NOW, expiresAt: NOW + expiresIn * 1000 });

async function raw(header: Record<string, unknown>, claims: JWTPayload): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'wit-1', typ: 'wit+jwt', ...header } as { alg: string }).sign(issuerKey);
}

const base = (): JWTPayload => ({ sub: ID, exp: NOW / 1000 + 600, cnf: { jwk: workload.jwk } });

describe('validateWitSvid', () => {
  it('accepts a minted WIT-SVID and returns its SPIFFE ID and cnf key', async () => {
    const v = await validateWitSvid(await mint(), authorities, { now: NOW, trustDomain: 'example.org' });
    if (!v.ok) throw new Error(v.error.message);
    expect(v.value.spiffeId).toBe(ID);
    expect(v.value.cnfJwk).toEqual({ kty: 'EC', crv: 'P-256', x: workload.jwk.x, y: workload.jwk.y, alg: 'ES256' });
  });

  it('refuses: wrong typ, no kid, unknown kid, aud, expired, no cnf, a cnf with a private key, another trust domain', async () => {
    const { d: _d, ...pub } = workload.jwk;
    const priv = { ...(await exportJWK(workload.privateKey)), alg: 'ES256' };
    const cases: Array<[string, Promise<string>, string?]> = [
      ['typ JWT', raw({ typ: 'JWT' }, base())],
      ['no kid', raw({ kid: undefined }, base())],
      ['unknown kid', raw({ kid: 'other' }, base())],
      ['aud', raw({}, { ...base(), aud: 'x' })],
      ['no cnf', raw({}, { sub: ID, exp: NOW / 1000 + 600 })],
      ['private cnf', raw({}, { ...base(), cnf: { jwk: priv } })],
      ['cnf without alg', raw({}, { ...base(), cnf: { jwk: { ...pub, alg: undefined } } })],
      ['sub not a SPIFFE ID', raw({}, { ...base(), sub: 'web' })],
    ];
    for (const [name, token] of cases) {
      const v = await validateWitSvid(await token, authorities, { now: NOW });
      expect(v.ok, name).toBe(false);
    }
    expect((await validateWitSvid(await mint(), authorities, { now: NOW, trustDomain: 'other.org' })).ok).toBe(false);
    // expired: a minute past exp, and within a leeway of two minutes accepted
    expect((await validateWitSvid(await mint(60), authorities, { now: NOW + 120_000 })).ok).toBe(false);
    expect((await validateWitSvid(await mint(60), authorities, { now: NOW + 120_000, clockToleranceSeconds: 120 })).ok).toBe(true);
    await expect(mint(-1)).rejects.toThrow(TypeError); // the minter never makes one that is born expired
  });
});

describe('parseWitPublicJwk', () => {
  it('keeps public members and alg; refuses EdDSA, a curve that does not match alg, and non-objects', async () => {
    expect(await parseWitPublicJwk({ ...workload.jwk, kid: 'x', use: 'sig' })).toEqual({ ok: true, value: { kty: 'EC', crv: 'P-256', x: workload.jwk.x, y: workload.jwk.y, alg: 'ES256' } });
    const ed = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    for (const bad of [{ ...(await exportJWK(ed.publicKey)), alg: 'EdDSA' }, { ...workload.jwk, alg: 'ES512' }, { ...workload.jwk, alg: 'none' }, null, []]) {
      expect((await parseWitPublicJwk(bad)).ok, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe('verifyWorkloadProofToken', () => {
  it('accepts a WPT by the cnf key for this WIT and audience; refuses another audience or WIT', async () => {
    const wit = await mint();
    const validated = await validateWitSvid(wit, authorities, { now: NOW });
    if (!validated.ok) throw new Error(validated.error.message);
    const wpt = (wth: string, aud = 'https://api.example') =>
      new SignJWT({ wth, jti: 'j1' }).setProtectedHeader({ alg: 'ES256', typ: 'wpt+jwt' }).setAudience(aud).setIssuedAt(NOW / 1000).setExpirationTime(NOW / 1000 + 30).sign(workload.privateKey);
    const good = await wpt(await witHash(wit));
    expect((await verifyWorkloadProofToken(good, wit, validated.value, { audience: 'https://api.example', now: NOW })).ok).toBe(true);
    expect((await verifyWorkloadProofToken(good, wit, validated.value, { audience: 'https://other.example', now: NOW })).ok).toBe(false);
    expect((await verifyWorkloadProofToken(await wpt(await witHash(await mint(300))), wit, validated.value, { audience: 'https://api.example', now: NOW })).ok).toBe(false);
  });
});
