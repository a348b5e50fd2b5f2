// Every response that carries a secret or an SVID says Cache-Control: no-store (issue 20): join tokens,
// admin X.509 and JWT mints, and the agent API's attest, renew, x509-svids and jwt-svids; errors too.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { createHarness, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

const ADMIN_TOKEN = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
let ca: TestCa;
let h: Harness;
let agent: TestAgent;
let entryId: string;

beforeAll(async () => {
  const clock = { nowMs: Date.now() };
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
  agent = await h.attestFresh();
  entryId = (await h.createEntry({ spiffeId: `spiffe://example.org/w-${crypto.randomUUID()}` as never, parentId: agent.agentId })).id;
});

const admin = (path: string, body: unknown) =>
  h.fetch(`/admin/v1${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function expectNoStore(res: Response, status: number): Promise<void> {
  expect(res.status, await res.clone().text()).toBe(status);
  expect(res.headers.get('cache-control')).toBe('no-store');
}

describe('Cache-Control: no-store', () => {
  it('on a join token', async () => {
    await expectNoStore(await admin('/join-tokens', {}), 201);
  });

  it('on admin X509-SVID and JWT-SVID mints', async () => {
    await expectNoStore(await admin('/x509-svids/mint', { spiffeId: 'spiffe://example.org/minted', csr: toBase64((await makeCsr()).der) }), 200);
    await expectNoStore(await admin('/jwt-svids/mint', { spiffeId: 'spiffe://example.org/minted', audience: ['a'] }), 200);
  });

  it('on agent attest, renew, x509-svids and jwt-svids', async () => {
    const token = crypto.randomUUID();
    await h.createToken(token);
    await expectNoStore(await h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: toBase64((await makeCsr()).der) }), 200);
    await expectNoStore(await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId, csr: toBase64((await makeCsr()).der) }] }), 200);
    await expectNoStore(await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId, audience: ['a'] }] }), 200);
    await expectNoStore(await h.call(agent, 'POST', '/agent/v1/renew', { csr: toBase64((await makeCsr()).der) }), 200);
  });

  it('on their errors too, and not on the public, cacheable endpoints', async () => {
    await expectNoStore(await admin('/join-tokens', { ttlSeconds: -1 }), 400);
    await expectNoStore(await h.attestRaw({ attestationType: 'join_token', payload: { token: 'nope' }, csr: toBase64((await makeCsr()).der) }), 401);
    const keys = await h.fetch('/keys');
    expect(keys.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
  });
});
