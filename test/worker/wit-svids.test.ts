// WIT-SVIDs (issue 19; WIT-SVID.md, incubating) at the issuer: the CA's WIT key beside the JWT key, published in
// the SPIFFE bundle with use "wit-svid", and POST /agent/v1/wit-svids authorized as /jwt-svids is. Each token is
// checked against the bundle's wit-svid keys by the shared validator and, independently, by jose alone.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { WitSvidsResponse } from '../../src/shared/agent-api.js';
import { unwrap } from '../../src/shared/result.js';
import { buildBundleJson, parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateWitSvid } from '../../src/shared/spiffe/wit-svid.js';
import type { TrustDomainCa } from '../../src/worker/ca/trust-domain-ca.js';
import { createHarness, expectError, TD, type Harness } from '../helpers/workerd/agent-client.js';
import { caNamed, freshCa } from '../helpers/workerd/ca.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

const clock = { nowMs: Date.now() };
let ca: TestCa;
let h: Harness;
let workloadJwk: JWK;
/** WIT-SVIDs the CA signed (ok results) */
let witSigned = 0;

async function publicJwk(alg: 'ES256' | 'ES384' | 'PS256' | 'EdDSA', extra: Record<string, unknown> = {}): Promise<JWK> {
  const pair = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { ...(await exportJWK(pair.publicKey)), alg, ...extra };
}

async function witKeys(): Promise<JWK[]> {
  const bundle = await parseBundleJson(await (await h.fetch('/bundle')).text(), TD);
  return bundle.witAuthorities ?? [];
}

beforeAll(async () => {
  ca = createTestCa(TD, () => clock.nowMs, { witSvidTtlSeconds: 3600 });
  const counting = { ...ca, signWitSvids: async (...args: Parameters<NonNullable<TestCa['signWitSvids']>>) => {
    const out = await ca.signWitSvids!(...args);
    witSigned += out.filter((r) => r.ok).length;
    return out;
  } };
  h = createHarness(() => counting, clock, { vars: { WIT_SVID_TTL: '1h' } });
  workloadJwk = await publicJwk('ES256');
});

describe('the CA with WIT_SVID_TTL', () => {
  it('publishes a WIT key with use wit-svid, a kid of its own, and not in the OIDC JWKS', async () => {
    const doc = (await (await h.fetch('/bundle')).json()) as { keys: Array<Record<string, unknown>> };
    const wit = doc.keys.filter((k) => k.use === 'wit-svid');
    const jwt = doc.keys.filter((k) => k.use === 'jwt-svid');
    expect(wit).toHaveLength(1);
    expect(wit[0]).toEqual({ use: 'wit-svid', kid: expect.any(String), kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String) });
    expect(jwt.map((k) => k.kid)).not.toContain(wit[0]!.kid);
    const oidc = (await (await h.fetch('/keys')).json()) as { keys: JWK[] };
    expect(oidc.keys.map((k) => k.kid)).not.toContain(wit[0]!.kid);
  });

  it('a WIT-SVID per the standard: typ wit+jwt, kid, sub from the entry, cnf.jwk the workload key, exp, no aud', async () => {
    const agent = await h.attestFresh();
    const entry = await h.createEntry({ spiffeId: `spiffe://${TD}/wit/web-${crypto.randomUUID()}` as never, parentId: agent.agentId });
    const res = await h.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [{ entryId: entry.id, publicKey: workloadJwk }] });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const [svid] = ((await res.json()) as WitSvidsResponse).svids;
    expect(svid).toMatchObject({ entryId: entry.id, spiffeId: entry.spiffeId });
    const header = decodeProtectedHeader(svid!.token);
    expect(Object.keys(header).sort()).toEqual(['alg', 'kid', 'typ']);
    expect(header).toMatchObject({ typ: 'wit+jwt', alg: 'ES256' });
    const claims = decodeJwt(svid!.token);
    expect(claims.sub).toBe(entry.spiffeId);
    expect(claims.aud).toBeUndefined();
    expect(claims.cnf).toEqual({ jwk: { kty: 'EC', crv: 'P-256', x: workloadJwk.x, y: workloadJwk.y, alg: 'ES256' } });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(claims.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(svid!.expiresAt).toBe(claims.exp);

    const keys = await witKeys();
    const v = await validateWitSvid(svid!.token, keys, { now: clock.nowMs, trustDomain: TD });
    expect(v.ok, JSON.stringify(v)).toBe(true);
    // jose alone, with the bundle key the kid names
    const key = keys.find((k) => k.kid === header.kid)!;
    const { kid: _kid, ...material } = key;
    await expect(jwtVerify(svid!.token, await importJWK(material, 'ES256'), { typ: 'wit+jwt', currentDate: new Date(clock.nowMs) })).resolves.toBeTruthy();
    // a JWT-SVID validator's keys do not verify it: the WIT key is its own
    const jwtKeys = (await parseBundleJson(await (await h.fetch('/bundle')).text(), TD)).jwtAuthorities;
    expect((await validateWitSvid(svid!.token, jwtKeys, { now: clock.nowMs })).ok).toBe(false);
  });

  it('accepts ES384 and PS256 workload keys; refuses private members, EdDSA, a wrong curve and a small RSA key, signing nothing', async () => {
    const agent = await h.attestFresh();
    const entry = await h.createEntry({ spiffeId: `spiffe://${TD}/wit/k-${crypto.randomUUID()}` as never, parentId: agent.agentId });
    for (const alg of ['ES384', 'PS256'] as const) {
      const res = await h.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [{ entryId: entry.id, publicKey: await publicJwk(alg) }] });
      expect(res.status, await res.clone().text()).toBe(200);
      const token = ((await res.json()) as WitSvidsResponse).svids[0]!.token;
      expect((decodeJwt(token).cnf as { jwk: JWK }).jwk.alg).toBe(alg);
    }
    const pair = await generateKeyPair('ES256', { extractable: true });
    const withPrivate = { ...(await exportJWK(pair.privateKey)), alg: 'ES256' };
    const p256 = await publicJwk('ES256');
    const smallRsa = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const bad: unknown[] = [
      withPrivate,
      await publicJwk('EdDSA'),
      { ...p256, alg: 'ES384' }, // a P-256 key under ES384
      { ...p256, alg: undefined },
      { ...p256, x: p256.y }, // not a point on the curve
      { ...(await exportJWK(smallRsa.publicKey)), alg: 'RS256' },
      'not a key',
    ];
    for (const publicKey of bad) {
      const before = witSigned;
      const res = await h.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [{ entryId: entry.id, publicKey: workloadJwk }, { entryId: entry.id, publicKey }] });
      await expectError(res, 400, 'ERR_BAD_REQUEST');
      expect(witSigned, JSON.stringify(publicKey)).toBe(before);
    }
  });

  it('refuses an entry the agent may not issue for, as /jwt-svids does', async () => {
    const agent = await h.attestFresh();
    const other = await h.attestFresh();
    const entry = await h.createEntry({ spiffeId: `spiffe://${TD}/wit/o-${crypto.randomUUID()}` as never, parentId: other.agentId });
    await expectError(await h.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [{ entryId: entry.id, publicKey: workloadJwk }] }), 403, 'ERR_NO_IDENTITY');
    await expectError(await h.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [] }), 400, 'ERR_BAD_REQUEST');
    const unsigned = await h.fetch('/agent/v1/wit-svids', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requests: [{ entryId: entry.id, publicKey: workloadJwk }] }) });
    expect(unsigned.status).toBe(401);
  });
});

describe('WIT-SVIDs off (WIT_SVID_TTL unset)', () => {
  it('the route answers 501 ERR_UNIMPLEMENTED, the CA signs none and publishes no WIT key', async () => {
    const off = createTestCa(TD, () => clock.nowMs);
    const hOff = createHarness(() => off, clock);
    const agent = await hOff.attestFresh();
    const entry = await hOff.createEntry({ spiffeId: `spiffe://${TD}/wit/off-${crypto.randomUUID()}` as never, parentId: agent.agentId });
    await expectError(await hOff.call(agent, 'POST', '/agent/v1/wit-svids', { requests: [{ entryId: entry.id, publicKey: workloadJwk }] }), 501, 'ERR_UNIMPLEMENTED');
    expect((await off.published()).witAuthorities).toBeUndefined();
    expect((await off.signWitSvids!([{ spiffeId: entry.spiffeId, publicJwk: workloadJwk as never, ttlSeconds: 60 }]))[0]).toMatchObject({ ok: false, error: { code: 'ERR_UNIMPLEMENTED' } });
    const doc = await buildBundleJson(await off.published());
    expect(doc.keys.some((k) => k.use === 'wit-svid')).toBe(false);
  });
});

describe('the CA Durable Object with WIT_SVID_TTL', () => {
  it('stores the WIT key sealed in its own slot kind (schema 5) and keeps it across a restart', async () => {
    const { name, stub } = freshCa();
    await runInDurableObject(stub, (instance: TrustDomainCa) => {
      (instance as unknown as { env: Record<string, unknown> }).env = { ...env, WIT_SVID_TTL: '30m' };
    });
    const { api } = caNamed(name);
    const keys = unwrap(await api.getPublishedKeys());
    expect(keys.witAuthorities).toHaveLength(1);
    const rows = await runInDurableObject(stub, (_i: TrustDomainCa, state) => state.storage.sql.exec<{ kind: string; status: string }>('SELECT kind, status FROM ca_key_slots ORDER BY kind').toArray());
    expect(rows.map((r) => `${r.kind}:${r.status}`)).toEqual(['jwt:active', 'wit:active', 'x509:active']);
    const [signed] = await api.signWitSvids!([{ spiffeId: `spiffe://${env.TRUST_DOMAIN}/w`, publicJwk: workloadJwk as never, ttlSeconds: 600 }]);
    const token = unwrap(signed!).token;
    expect((await validateWitSvid(token, keys.witAuthorities!, { now: Date.now(), trustDomain: env.TRUST_DOMAIN })).ok).toBe(true);
  });
});
