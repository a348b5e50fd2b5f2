// Admin API for the trust domain's authorities (SPIRE's LocalAuthority API) against the real CA core on
// memory storage: show, prepare, activate, taint, revoke for x509 and jwt; validated input; 400/404/409;
// no-store; and the public bundle / JWKS without the revoked key.
import { beforeEach, describe, expect, it } from 'vitest';
import { createTestCa, type TestCa } from '../../helpers/workerd/test-ca.js';
import { config, errorCode, makeAdmin, NOW_MS } from '../../helpers/workerd/admin.js';

interface State {
  authorityId: string;
  expiresAt: number;
  tainted: boolean;
}

let ca: TestCa;
let admin: ReturnType<typeof makeAdmin>;

beforeEach(() => {
  ca = createTestCa(config.trustDomain, () => NOW_MS);
  admin = makeAdmin(ca);
});

const show = async (kind: string) => (await (await admin.call('GET', `/localauthority/${kind}`)).json()) as { active?: State; prepared?: State; old?: State };

describe('/admin/v1/localauthority', () => {
  for (const kind of ['x509', 'jwt'] as const) {
    it(`${kind}: show → prepare → activate → taint → revoke, no-store throughout`, async () => {
      const shown = await admin.call('GET', `/localauthority/${kind}`);
      expect(shown.status).toBe(200);
      expect(shown.headers.get('cache-control')).toBe('no-store');
      const first = ((await shown.json()) as { active: State }).active;
      expect(first).toMatchObject({ tainted: false, expiresAt: NOW_MS / 1000 + config.caTtlSeconds });

      // prepare takes no body (or an empty object)
      const prepared = await admin.call('POST', `/localauthority/${kind}/prepare`);
      expect(prepared.status).toBe(200);
      expect(prepared.headers.get('cache-control')).toBe('no-store');
      const next = ((await prepared.json()) as { preparedAuthority: State }).preparedAuthority;
      expect(next.authorityId).not.toBe(first.authorityId);
      expect((await show(kind)).prepared?.authorityId).toBe(next.authorityId);

      const activated = await admin.call('POST', `/localauthority/${kind}/activate`, { authorityId: next.authorityId });
      expect(activated.status).toBe(200);
      expect(((await activated.json()) as { activatedAuthority: State }).activatedAuthority.authorityId).toBe(next.authorityId);

      const tainted = await admin.call('POST', `/localauthority/${kind}/taint`, { authorityId: first.authorityId });
      expect(tainted.status).toBe(200);
      expect(((await tainted.json()) as { taintedAuthority: State }).taintedAuthority).toMatchObject({ authorityId: first.authorityId, tainted: true });
      expect((await show(kind)).old).toMatchObject({ authorityId: first.authorityId, tainted: true });

      const revoked = await admin.call('POST', `/localauthority/${kind}/revoke`, { authorityId: first.authorityId });
      expect(revoked.status).toBe(200);
      expect(((await revoked.json()) as { revokedAuthority: State }).revokedAuthority.authorityId).toBe(first.authorityId);
      expect(await show(kind)).toEqual({ active: expect.objectContaining({ authorityId: next.authorityId }) });

      const bundle = (await (await admin.call('GET', '/bundle')).json()) as { keys: Array<{ use: string; kid?: string }> };
      expect(bundle.keys.filter((k) => k.use === (kind === 'x509' ? 'x509-svid' : 'jwt-svid'))).toHaveLength(1);
      if (kind === 'jwt') expect(bundle.keys.map((k) => k.kid)).not.toContain(first.authorityId);
    });
  }

  it('answers 409 for the wrong state, 404 for an unknown ID, 400 for bad input', async () => {
    const active = (await show('x509')).active!;
    let res = await admin.call('POST', '/localauthority/x509/taint', { authorityId: active.authorityId });
    expect(res.status).toBe(409);
    expect(await errorCode(res)).toBe('ERR_AUTHORITY_STATE');
    res = await admin.call('POST', '/localauthority/x509/revoke', { authorityId: active.authorityId });
    expect(res.status).toBe(409);
    res = await admin.call('POST', '/localauthority/jwt/activate', { authorityId: 'ffff' });
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('ERR_AUTHORITY_NOT_FOUND');
    for (const body of [{}, { authorityId: '' }, { authorityId: 42 }, { authorityId: 'a/b' }, { authorityId: 'x', extra: 1 }, []]) {
      res = await admin.call('POST', '/localauthority/x509/taint', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await errorCode(res)).toBe('ERR_BAD_REQUEST');
    }
    res = await admin.call('POST', '/localauthority/x509/prepare', { authorityId: 'x' });
    expect(res.status).toBe(400);
    res = await admin.call('POST', '/localauthority/x509/taint', '{"authorityId":', {});
    expect(res.status).toBe(400);
    res = await admin.call('POST', '/localauthority/x509/taint', JSON.stringify({ authorityId: 'a'.repeat(2000) }));
    expect(res.status).toBe(413);
    res = await admin.call('GET', '/localauthority/wit');
    expect(res.status).toBe(404);
  });

  it('requires the admin credential', async () => {
    const res = await admin.fetch('/localauthority/x509/prepare', { method: 'POST' });
    expect(res.status).toBe(401);
    expect((await show('x509')).prepared).toBeUndefined();
  });
});
