// Admin authentication: no credential 401, wrong credential 403 (one generic message), the admin token,
// and JWT-SVIDs of admin entries signed by the trust domain's published JWT authority (audited under their ID).
import { env, exports } from 'cloudflare:workers';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { PublishedJwk } from '../../../src/worker/ca/ca-api.js';
import { ADMIN_TOKEN, config, errorCode, fakeCa, makeAdmin, NOW_MS, sid, unique } from '../../helpers/workerd/admin.js';

let key: CryptoKey;
let jwk: PublishedJwk;
let otherKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' } as PublishedJwk;
  ({ privateKey: otherKey } = await generateKeyPair('ES256'));
});

const jwtSvid = (sub: string, opts: { aud?: string; exp?: number; signer?: CryptoKey; kid?: string } = {}) =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1', typ: 'JWT' })
    .setSubject(sub)
    .setAudience(opts.aud ?? config.jwtIssuer)
    .setIssuedAt(NOW_MS / 1000 - 10)
    .setExpirationTime(opts.exp ?? NOW_MS / 1000 + 300)
    .sign(opts.signer ?? key);

describe('admin authentication', () => {
  it('is mounted at /admin/v1 in the Worker and asks for a credential (401)', async () => {
    const res = await exports.default.fetch('http://issuer.test/admin/v1/entries');
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('ERR_UNAUTHENTICATED');
  });

  it.each([[undefined], ['Basic dXNlcjpwYXNz'], ['Bearer'], ['Bearer  ']])('answers 401 for authorization %s', async (authorization) => {
    const res = await makeAdmin().fetch('/entries', authorization ? { headers: { authorization } } : {});
    expect(res.status).toBe(401);
    expect(await errorCode(res)).toBe('ERR_UNAUTHENTICATED');
  });

  it('answers 403 with one generic message for a wrong token, without writing', async () => {
    const admin = makeAdmin();
    for (const token of [`${ADMIN_TOKEN}x`, ADMIN_TOKEN.slice(0, -1), 'a.b.c', 'x'.repeat(20_000)]) {
      const u = unique();
      const res = await admin.fetch('/entries', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ spiffeId: sid(`/${u}`), parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'unix', value: 'uid:1' }] }),
      });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: { code: 'ERR_PERMISSION_DENIED', message: 'permission denied' } });
      const count = await admin.call('GET', `/entries/count?spiffeId=${encodeURIComponent(sid(`/${u}`))}`);
      expect(await count.json()).toEqual({ count: 0 });
    }
  });

  it('accepts the admin token', async () => {
    const res = await makeAdmin().call('GET', '/entries/count');
    expect(res.status).toBe(200);
  });

  describe('JWT-SVID', () => {
    async function adminEntry(admin: boolean) {
      const u = unique();
      const spiffeId = sid(`/ops/${u}`);
      const res = await makeAdmin().call('POST', '/entries', { spiffeId, parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'unix', value: 'uid:0' }], admin });
      expect(res.status).toBe(201);
      return spiffeId;
    }

    it('accepts a JWT-SVID of an admin entry signed by a published authority', async () => {
      const admin = makeAdmin(fakeCa({ jwtAuthorities: [jwk] }));
      const res = await admin.fetch('/entries/count', { headers: { authorization: `Bearer ${await jwtSvid(await adminEntry(true))}` } });
      expect(res.status).toBe(200);
    });

    it('refuses (403) a non-admin ID, a wrong audience, an expired token, an unknown key and a foreign trust domain', async () => {
      const admin = makeAdmin(fakeCa({ jwtAuthorities: [jwk] }));
      const adminId = await adminEntry(true);
      const tokens = [
        await jwtSvid(await adminEntry(false)),
        await jwtSvid(adminId, { aud: 'https://elsewhere.example' }),
        await jwtSvid(adminId, { exp: NOW_MS / 1000 - 1 }),
        await jwtSvid(adminId, { signer: otherKey }),
        await jwtSvid(adminId.replace(`//${config.trustDomain}/`, '//other.test/')),
      ];
      for (const token of tokens) {
        const res = await admin.fetch('/entries/count', { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(403);
        expect(await errorCode(res)).toBe('ERR_PERMISSION_DENIED');
      }
    });

    it('audits a write under the JWT-SVID\'s SPIFFE ID, and a denied write of a non-admin ID under its ID', async () => {
      const admin = makeAdmin(fakeCa({ jwtAuthorities: [jwk] }));
      const rowOf = async (res: Response) =>
        (await env.DB.prepare('SELECT principal, action, status, error_code FROM audit_log WHERE request_id = ?').bind(res.headers.get('x-request-id')).all()).results;
      const u = unique();
      const entry = { spiffeId: sid(`/w/${u}`), parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'unix', value: 'uid:7' }] };
      const post = async (sub: string) =>
        admin.fetch('/entries', { method: 'POST', headers: { authorization: `Bearer ${await jwtSvid(sub)}`, 'content-type': 'application/json' }, body: JSON.stringify(entry) });
      const adminId = await adminEntry(true);
      const ok = await post(adminId);
      expect(ok.status).toBe(201);
      expect(await rowOf(ok)).toEqual([{ principal: adminId, action: 'entry.create', status: 201, error_code: null }]);
      const workload = await adminEntry(false);
      const denied = await post(workload);
      expect(denied.status).toBe(403);
      expect(await rowOf(denied)).toEqual([{ principal: workload, action: 'entry.create', status: 403, error_code: 'ERR_PERMISSION_DENIED' }]);
    });

    it('answers 503 when the JWT authorities cannot be read', async () => {
      const res = await makeAdmin().fetch('/entries/count', { headers: { authorization: `Bearer ${await jwtSvid(sid('/x'))}` } });
      expect(res.status).toBe(503);
      expect(await errorCode(res)).toBe('ERR_UNAVAILABLE');
    });
  });
});
