// An entry's extra JWT-SVID claims end to end inside the Worker (the real entry point, the real
// TrustDomainCa Durable Object, real D1): stored by the admin API, shown back, merged by the CA into the
// JWT-SVIDs an agent fetches (verified against the public JWKS), changed by an update, kept out of the
// agent's sync; reserved claims and oversized claims refused at create, update and batch create.
import { env } from 'cloudflare:workers';
import { decodeJwt, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import type { JwtSvidsResponse, SyncResponse } from '../../src/shared/agent-api.js';
import { validateJwtSvid } from '../../src/shared/spiffe/jwt-svid.js';
import { ADMIN, admin, attestNew, call, fetchWorker, type Agent } from '../helpers/workerd/entry-client.js';
import { createTestCa } from '../helpers/workerd/test-ca.js';

const claims = { tenant: 'acme', groups: ['billing', 'ops'], ctx: { region: 'eu-west', tier: 2 } };

async function mint(agent: Agent, entryId: string): Promise<string> {
  const j = await call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId, audience: ['svc'] }] });
  expect(j.status, await j.clone().text()).toBe(200);
  return ((await j.json()) as JwtSvidsResponse).svids[0]!.token;
}

async function expectRefused(res: Response, message: string | RegExp): Promise<void> {
  expect(res.status).toBe(400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('ERR_ENTRY_INVALID');
  expect(body.error.message).toMatch(message);
}

const newEntry = (agent: Agent, extra: Record<string, unknown>) => ({
  spiffeId: `spiffe://${env.TRUST_DOMAIN}/ns/test/sa/claims-${crypto.randomUUID()}`,
  parentId: agent.agentId,
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  ...extra,
});

describe('jwtSvidClaims', () => {
  it('are stored, shown, minted into the agent\'s JWT-SVIDs, follow an update, and stay out of sync', async () => {
    const agent = await attestNew();
    const { entry } = (await admin('/entries', newEntry(agent, { jwtSvidClaims: claims }))) as { entry: { id: string; spiffeId: string; jwtSvidClaims: unknown } };
    expect(entry.jwtSvidClaims).toEqual(claims);
    const shown = (await (await fetchWorker(`/admin/v1/entries/${entry.id}`, { headers: ADMIN })).json()) as { entry: { jwtSvidClaims: unknown } };
    expect(shown.entry.jwtSvidClaims).toEqual(claims);

    const token = await mint(agent, entry.id);
    const jwks = (await (await fetchWorker('/keys')).json()) as { keys: JWK[] };
    const valid = await validateJwtSvid(token, jwks, { audience: 'svc', now: Date.now(), trustDomain: env.TRUST_DOMAIN });
    expect(valid.ok, JSON.stringify(valid)).toBe(true);
    expect(decodeJwt(token)).toMatchObject({ ...claims, sub: entry.spiffeId, aud: ['svc'] });

    const sync = (await (await call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse;
    const synced = sync.entries?.find((e) => e.id === entry.id);
    expect(synced).toBeDefined();
    expect(synced).not.toHaveProperty('jwtSvidClaims');

    const body = { ...newEntry(agent, {}), spiffeId: entry.spiffeId, jwtSvidClaims: { tenant: 'globex' } };
    const put = await fetchWorker(`/admin/v1/entries/${entry.id}`, { method: 'PUT', headers: ADMIN, body: JSON.stringify(body) });
    expect(put.status, await put.clone().text()).toBe(200);
    const updated = decodeJwt(await mint(agent, entry.id));
    expect(updated.tenant).toBe('globex');
    expect(updated).not.toHaveProperty('groups');
  });

  it('leave an entry without them minting exactly the standard claims', async () => {
    const agent = await attestNew();
    const { entry } = (await admin('/entries', newEntry(agent, {}))) as { entry: { id: string } & Record<string, unknown> };
    expect(entry).not.toHaveProperty('jwtSvidClaims');
    expect(Object.keys(decodeJwt(await mint(agent, entry.id))).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'sub']);
  });

  it('refuse a reserved claim and an oversized object with a 400 at create, and per item in a batch', async () => {
    const agent = await attestNew();
    for (const name of ['sub', 'aud', 'exp', 'iss', 'cnf']) {
      const res = await fetchWorker('/admin/v1/entries', { method: 'POST', headers: ADMIN, body: JSON.stringify(newEntry(agent, { jwtSvidClaims: { [name]: 'x' } })) });
      await expectRefused(res, `jwtSvidClaims must not set the reserved claim "${name}"`);
    }
    const big = await fetchWorker('/admin/v1/entries', { method: 'POST', headers: ADMIN, body: JSON.stringify(newEntry(agent, { jwtSvidClaims: { blob: 'x'.repeat(4096) } })) });
    await expectRefused(big, /longer than 4096 bytes/);

    const batch = (await admin('/entries/batch-create', { entries: [newEntry(agent, { jwtSvidClaims: { ok: 1 } }), newEntry(agent, { jwtSvidClaims: { jti: 'x' } })] })) as {
      results: Array<{ status: { code: string; message: string } }>;
    };
    expect(batch.results.map((r) => r.status.code)).toEqual(['OK', 'ERR_ENTRY_INVALID']);
    expect(batch.results[1]!.status.message).toMatch(/reserved claim "jti"/);
  });
});

describe('the CA', () => {
  it('refuses extra claims that break the rules even when the caller skipped the entry check', async () => {
    const ca = createTestCa(env.TRUST_DOMAIN, () => Date.now());
    const spiffeId = `spiffe://${env.TRUST_DOMAIN}/web`;
    const [reserved, deep, good] = await ca.signJwtSvids([
      { spiffeId, audience: ['svc'], ttlSeconds: 60, extraClaims: { nbf: 0 } },
      { spiffeId, audience: ['svc'], ttlSeconds: 60, extraClaims: { a: [[[[[[[[[1]]]]]]]]] } },
      { spiffeId, audience: ['svc'], ttlSeconds: 60, extraClaims: { a: 1 } },
    ]);
    expect(reserved).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'jwtSvidClaims must not set the reserved claim "nbf"' } });
    expect(deep).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST' } });
    expect(good?.ok && decodeJwt(good.value.token)).toMatchObject({ a: 1, sub: spiffeId });
  });
});
