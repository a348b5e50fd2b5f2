import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { unwrap } from '../../../src/shared/result.js';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../../src/shared/encoding/base64.js';
import { validateJwtSvid } from '../../../src/shared/spiffe/jwt-svid.js';
import { validateX509Svid } from '../../../src/shared/spiffe/x509-svid.js';
import { validateCaCert } from '../../../src/shared/spiffe/ca-cert.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { caNamed, freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const TD = parseTrustDomain(env.TRUST_DOMAIN);
const ID = `spiffe://${TD}/ns/prod/sa/web`;
const der = (b64: string) => fromBase64(b64);

describe('TrustDomainCa', () => {
  it('creates its CA and JWT keys on first use and publishes them', async () => {
    const { api } = freshCa();
    expect(await api.status()).toEqual({ ready: true });
    const keys = unwrap(await api.getPublishedKeys());
    expect(keys.x509Authorities).toHaveLength(1);
    expect(validateCaCert(der(keys.x509Authorities[0]!), { trustDomain: TD, now: Date.now() }).ok).toBe(true);
    expect(keys.jwtAuthorities).toEqual([{ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: expect.any(String), alg: 'ES256', use: 'sig' }]);
    expect(keys.sequence).toBe(2);
    expect(keys.refreshHintSeconds).toBeGreaterThan(0);
  });

  it('signs a batch of X509-SVIDs, each valid against the published bundle', async () => {
    const { api } = freshCa();
    const requests = [
      { spiffeId: ID, publicKeySpki: await subjectSpki('P-256'), dnsNames: ['web.example.org'], ttlSeconds: 3600 },
      { spiffeId: `${ID}/b`, publicKeySpki: await subjectSpki('RSA-2048'), dnsNames: [], ttlSeconds: 10 * 365 * 86400 },
      { spiffeId: 'spiffe://other.org/x', publicKeySpki: await subjectSpki('P-256'), dnsNames: [], ttlSeconds: 60 },
      { spiffeId: `${ID}/c`, publicKeySpki: new Uint8Array([0, 0, 0]), dnsNames: [], ttlSeconds: 60 },
      { spiffeId: `${ID}/d`, publicKeySpki: await subjectSpki('P-384'), dnsNames: ['not a name'], ttlSeconds: 60 },
      { spiffeId: `${ID}/e`, publicKeySpki: await subjectSpki('P-384'), dnsNames: [], ttlSeconds: 0 },
      // the former wire form (base64 SPKI), still accepted from a Worker of the previous version
      { spiffeId: `${ID}/f`, publicKeySpki: toBase64(await subjectSpki('P-256')) as unknown as Uint8Array, dnsNames: [], ttlSeconds: 60 },
      { spiffeId: `${ID}/g`, publicKeySpki: 'AAAA' as unknown as Uint8Array, dnsNames: [], ttlSeconds: 60 },
    ];
    const results = await api.signX509Svids(requests);
    const keys = unwrap(await api.getPublishedKeys());
    const roots = keys.x509Authorities.map(der);
    expect(results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'ERR_TRUST_DOMAIN_MISMATCH', 'ERR_CSR_INVALID', 'ERR_BAD_REQUEST', 'ERR_BAD_REQUEST', 'ok', 'ERR_CSR_INVALID']);
    for (const [i, r] of results.slice(0, 2).entries()) {
      if (!r.ok) throw new Error('unreachable');
      expect(r.value.certChain).toHaveLength(1);
      const v = await validateX509Svid(r.value.certChain.map(der), { now: Date.now(), expectedId: requests[i]!.spiffeId, roots });
      expect(v.ok, JSON.stringify(v)).toBe(true);
      if (v.ok) expect(r.value.expiresAt).toBe(Math.floor(v.value.notAfter / 1000));
    }
    // The 10-year request is capped at the CA's notAfter (CA_TTL = 24h).
    const capped = results[1]!;
    if (capped.ok) expect(capped.value.expiresAt * 1000).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
  });

  it('signs JWT-SVIDs that verify against the published JWKS', async () => {
    const { api } = freshCa();
    const r = await api.signJwtSvid({ spiffeId: ID, audience: ['reports'], ttlSeconds: 300 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const keys = unwrap(await api.getPublishedKeys());
    const v = await validateJwtSvid(r.value.token, keys.jwtAuthorities, { audience: 'reports', now: Date.now(), trustDomain: TD, issuer: env.JWT_ISSUER });
    expect(v.ok, JSON.stringify(v)).toBe(true);
    expect(await api.signJwtSvid({ spiffeId: ID, audience: [], ttlSeconds: 300 })).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST' } });
    expect(await api.signJwtSvid({ spiffeId: 'spiffe://example.org', audience: ['a'], ttlSeconds: 300 })).toMatchObject({ ok: false });
  });

  it('stores private keys only encrypted, and keeps its CA across a restart', async () => {
    const { name, stub, api: first } = freshCa();
    const before = unwrap(await first.getPublishedKeys());
    const rows = await runInDurableObject(stub, (_i: TrustDomainCa, state) =>
      state.storage.sql.exec<{ kind: string; key_ciphertext: ArrayBuffer }>('SELECT kind, key_ciphertext FROM ca_key_slots').toArray(),
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      // Sealed PKCS#8 does not import as a key.
      await expect(crypto.subtle.importKey('pkcs8', row.key_ciphertext, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])).rejects.toThrow();
    }
    await abortAllDurableObjects();
    const { api } = caNamed(name);
    const after = unwrap(await api.getPublishedKeys());
    expect(after).toEqual(before);
    const [svid] = await api.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 60 }]);
    expect(svid!.ok).toBe(true);
    if (svid!.ok) expect((await validateX509Svid(svid!.value.certChain.map(der), { now: Date.now(), roots: before.x509Authorities.map(der) })).ok).toBe(true);
    const jwt = await api.signJwtSvid({ spiffeId: ID, audience: ['a'], ttlSeconds: 60 });
    expect(jwt.ok && (await validateJwtSvid(jwt.value.token, before.jwtAuthorities, { audience: 'a', now: Date.now() })).ok).toBe(true);
  });

  it('signs with RS256 when JWT_KEY_TYPE=RS256', async () => {
    const { stub, api } = freshCa();
    await runInDurableObject(stub, (instance: TrustDomainCa) => {
      (instance as unknown as { env: Record<string, unknown> }).env = { ...env, JWT_KEY_TYPE: 'RS256' };
    });
    const keys = unwrap(await api.getPublishedKeys());
    expect(keys.jwtAuthorities).toEqual([{ kty: 'RSA', n: expect.any(String), e: 'AQAB', kid: expect.any(String), alg: 'RS256', use: 'sig' }]);
    const r = await api.signJwtSvid({ spiffeId: ID, audience: ['reports'], ttlSeconds: 300 });
    if (!r.ok) throw new Error(JSON.stringify(r));
    expect(JSON.parse(atob(r.value.token.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/')))).toMatchObject({ alg: 'RS256', kid: keys.jwtAuthorities[0]!.kid });
    expect((await validateJwtSvid(r.value.token, keys.jwtAuthorities, { audience: 'reports', now: Date.now() })).ok).toBe(true);
  });
});
