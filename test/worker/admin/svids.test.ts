// Admin SVID minting and the bundle, against the real CA core on memory storage (test/helpers/workerd/
// test-ca.ts: what the TrustDomainCa Durable Object runs), counting what it signs.
import { X509Certificate } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../../src/shared/encoding/base64.js';
import { concatBytes } from '../../../src/shared/encoding/bytes.js';
import { makeCsr } from '../../helpers/shared/pki.js';
import { createTestCa, type TestCa } from '../../helpers/workerd/test-ca.js';
import { config, errorCode, makeAdmin, NOW_MS, sid, unique } from '../../helpers/workerd/admin.js';

let ca: TestCa;
let admin: ReturnType<typeof makeAdmin>;
let csr: string;

beforeAll(async () => {
  ca = createTestCa(config.trustDomain, () => NOW_MS);
  admin = makeAdmin(ca);
  csr = toBase64(await makeCsr('P-256'));
});

describe('POST /x509-svids/mint', () => {
  it('mints an X509-SVID for a SPIFFE ID of the trust domain, with DNS names, and returns the bundle', async () => {
    const spiffeId = sid(`/minted/${unique()}`);
    const before = ca.signedX509;
    const res = await admin.call('POST', '/x509-svids/mint', { spiffeId, csr, ttlSeconds: 120, dnsNames: ['svc.example.org'] });
    expect(res.status).toBe(200);
    expect(ca.signedX509).toBe(before + 1);
    const body = (await res.json()) as { svid: { spiffeId: string; certChain: string[]; expiresAt: number }; bundle: { keys: unknown[] } };
    expect(body.svid.spiffeId).toBe(spiffeId);
    expect(body.svid.expiresAt).toBe(NOW_MS / 1000 + 120);
    const leaf = new X509Certificate(body.svid.certChain[0]!);
    expect(leaf.toString('pem')).toContain('BEGIN CERTIFICATE');
    expect(body.bundle.keys.length).toBeGreaterThan(0);
  });

  it.each([
    [{ spiffeId: 'spiffe://other.test/x' }, 'ERR_TRUST_DOMAIN_MISMATCH'],
    [{ spiffeId: 'spiffe://example.org/a//b' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ csr: 'not base64!' }, 'ERR_CSR_INVALID'],
    [{ csr: btoa('garbage') }, 'ERR_CSR_INVALID'],
    [{ ttlSeconds: -5 }, 'ERR_BAD_REQUEST'],
    [{ dnsNames: ['*'] }, 'ERR_BAD_REQUEST'],
    [{ extra: 1 }, 'ERR_BAD_REQUEST'],
  ])('rejects %j without signing', async (override, code) => {
    const before = ca.signedX509;
    const res = await admin.call('POST', '/x509-svids/mint', { spiffeId: sid('/minted/x'), csr, ...override });
    expect(await errorCode(res)).toBe(code);
    expect(ca.signedX509).toBe(before);
  });

  it('rejects a CSR followed by any bytes (00 00 00, a second CSR, 2 KB of junk) without signing', async () => {
    const der = fromBase64(csr);
    for (const tail of [new Uint8Array(3), await makeCsr('P-256'), crypto.getRandomValues(new Uint8Array(2048))]) {
      const before = ca.signedX509;
      const res = await admin.call('POST', '/x509-svids/mint', { spiffeId: sid('/minted/x'), csr: toBase64(concatBytes([der, tail])) });
      expect(await errorCode(res)).toBe('ERR_CSR_INVALID');
      expect(ca.signedX509).toBe(before);
    }
  });
});

describe('POST /jwt-svids/mint', () => {
  it('mints a JWT-SVID with the default TTL', async () => {
    const before = ca.signedJwt;
    const res = await admin.call('POST', '/jwt-svids/mint', { spiffeId: sid('/minted/jwt'), audience: ['spiffe://example.org/db'] });
    expect(res.status).toBe(200);
    expect(ca.signedJwt).toBe(before + 1);
    const body = (await res.json()) as { token: string; expiresAt: number };
    expect(body.token.split('.')).toHaveLength(3);
    expect(body.expiresAt).toBeGreaterThan(NOW_MS / 1000);
  });

  it.each([[{ audience: [] }], [{ audience: 'db' }], [{ audience: [''] }], [{ ttlSeconds: 86401 }]])('rejects %j without signing', async (override) => {
    const before = ca.signedJwt;
    const res = await admin.call('POST', '/jwt-svids/mint', { spiffeId: sid('/minted/jwt'), audience: ['db'], ...override });
    expect(await errorCode(res)).toBe('ERR_BAD_REQUEST');
    expect(ca.signedJwt).toBe(before);
  });

  it('a minted JWT-SVID of an admin entry, for the issuer audience, authenticates admin requests', async () => {
    const u = unique();
    const spiffeId = sid(`/ops/${u}`);
    expect((await admin.call('POST', '/entries', { spiffeId, parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'unix', value: 'uid:0' }], admin: true })).status).toBe(201);
    const minted = (await (await admin.call('POST', '/jwt-svids/mint', { spiffeId, audience: [config.jwtIssuer] })).json()) as { token: string };
    const res = await admin.fetch('/entries/count', { headers: { authorization: `Bearer ${minted.token}` } });
    expect(res.status).toBe(200);
  });
});

describe('GET /bundle', () => {
  it('serves the SPIFFE bundle of the published keys', async () => {
    const res = await admin.call('GET', '/bundle');
    expect(res.status).toBe(200);
    const bundle = (await res.json()) as { keys: { use: string }[]; spiffe_sequence?: number };
    expect(bundle.keys.map((k) => k.use).sort()).toEqual(['jwt-svid', 'x509-svid']);
  });

  it('needs admin credentials', async () => {
    expect((await admin.fetch('/bundle')).status).toBe(401);
  });
});
