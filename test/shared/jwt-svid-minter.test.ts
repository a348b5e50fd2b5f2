// The CA's lean JWT-SVID minter against jose's SignJWT (mintJwtSvid): same header and claims byte for byte,
// identical RS256 tokens, and tokens validateJwtSvid accepts. Runs on Node and in workerd.
import { exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../src/shared/spiffe/id.js';
import { mintJwtSvid, validateJwtSvid } from '../../src/shared/spiffe/jwt-svid.js';
import { createJwtSvidMinter } from '../../src/shared/spiffe/jwt-svid-minter.js';
import { generateKeys } from '../helpers/shared/pki.js';

const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const NOW = Date.UTC(2026, 5, 1, 10, 0, 0, 500);
const ISSUER = 'https://issuer.example.org';

describe('JWT-SVID minter', () => {
  it.each([['ES256', 'P-256'], ['RS256', 'RSA-2048']] as const)('mints the token mintJwtSvid mints (%s)', async (alg, kind) => {
    const keys = await generateKeys(kind);
    const kid = `kid-${alg}`;
    const minter = createJwtSvidMinter({ issuer: ISSUER, kid, alg, key: keys.privateKey });
    const claims = { spiffeId: ID, audience: ['svc-a', 'svc "b"/ü'], now: NOW, expiresAt: NOW + 300_000 };
    const lean = await minter.mint(claims);
    const reference = await mintJwtSvid({ ...claims, issuer: ISSUER, kid, alg, key: keys.privateKey });
    const [h1, p1] = lean.split('.');
    const [h2, p2] = reference.split('.');
    expect([h1, p1]).toEqual([h2, p2]);
    if (alg === 'RS256') expect(lean).toBe(reference);
    const jwk = { ...(await exportJWK(keys.publicKey)), kid, alg };
    const valid = await validateJwtSvid(lean, [jwk], { audience: 'svc-a', now: NOW, issuer: ISSUER, trustDomain: 'example.org' });
    expect(valid.ok).toBe(true);
  });

  it('refuses an empty audience and a token that would not outlive its issuance', async () => {
    const keys = await generateKeys('P-256');
    const minter = createJwtSvidMinter({ issuer: ISSUER, kid: 'k', alg: 'ES256', key: keys.privateKey });
    await expect(minter.mint({ spiffeId: ID, audience: [], now: NOW, expiresAt: NOW + 1000 })).rejects.toThrow(TypeError);
    await expect(minter.mint({ spiffeId: ID, audience: ['a'], now: NOW, expiresAt: NOW })).rejects.toThrow(TypeError);
  });
});
