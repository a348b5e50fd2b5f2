// Agent API through the app (createApp) with real D1 stores and the real CA core on memory storage
// (test/helpers/workerd/test-ca.ts): attestation, the signed-request rules of agent-auth, sync, batch
// issuance authorization, and the bundle after a CA rotation.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { decodeJwt } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AttestResponse, JwtSvidsResponse, SyncResponse, X509SvidsResponse } from '../../src/shared/agent-api.js';
import { prepareAt } from '../../src/shared/ca/key-slot.js';
import { AGENT_AUTH_FAILED_MESSAGE } from '../../src/worker/middleware/agent-auth.js';
import { makeCsr, makeRootCa, makeSvid, toBase64, fromBase64 } from '../helpers/shared/agent-svid.js';
import { agents, createHarness, expectError, renew, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

let ca: TestCa;
let h: Harness;

beforeAll(async () => {
  const clock = { nowMs: Date.now() };
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
});

const uniq = () => crypto.randomUUID();


async function expectAuthFailed(res: Response): Promise<void> {
  const e = await expectError(res, 401, 'ERR_AGENT_AUTH_FAILED');
  expect(e.message).toBe(AGENT_AUTH_FAILED_MESSAGE);
}

describe('attest', () => {
  it('issues an agent SVID for a join token (SPIRE agent ID form) and returns the bundle', async () => {
    const token = uniq();
    await h.createToken(token);
    const csr = await makeCsr();
    const res = await h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as AttestResponse;
    expect(body.svid.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${token}`);
    expect(body.svid.expiresAt).toBe(h.nowSeconds() + 3600);
    const cert = new x509.X509Certificate(fromBase64(body.svid.certChain[0]!));
    expect(new Uint8Array(cert.publicKey.rawData)).toEqual(new Uint8Array(new x509.Pkcs10CertificateRequest(csr.der).publicKey.rawData));
    expect(body.bundle.keys[0]).toMatchObject({ use: 'x509-svid', x5c: (await ca.published()).x509Authorities });
    const record = await agents().get(body.svid.spiffeId as never);
    expect(record).toMatchObject({ attestationType: 'join_token', nodeSelectors: [], banned: false, serialNumber: cert.serialNumber.replace(/^0+/, '') });
  });

  it('uses the preset agent ID of a token', async () => {
    const token = uniq();
    const id = `spiffe://example.org/spire/agent/node-${uniq()}`;
    await h.createToken(token, { spiffeId: id });
    expect((await h.attest(token)).agentId).toBe(id);
  });

  it('refuses unknown, used, expired and forged tokens with one code and one message', async () => {
    const used = uniq();
    await h.createToken(used);
    await h.attest(used);
    const expired = uniq();
    await h.createToken(expired, { ttl: 1 });
    h.clock.nowMs += 2000;
    const csr = toBase64((await makeCsr()).der);
    const messages = new Set<string>();
    for (const token of [uniq(), used, expired, 'x', '../../etc', 'a'.repeat(300), 42, undefined]) {
      const e = await expectError(await h.attestRaw({ attestationType: 'join_token', payload: { token }, csr }), 401, 'ERR_JOIN_TOKEN_INVALID');
      messages.add(e.message);
    }
    expect([...messages]).toEqual(['join token is invalid, expired or already used']);
  });

  it('lets exactly one of two concurrent attestations with one token win', async () => {
    const token = uniq();
    await h.createToken(token);
    const [a, b] = await Promise.all([makeCsr(), makeCsr()]);
    const results = await Promise.all([a, b].map((c) => h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: toBase64(c.der) })));
    expect(results.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('does not spend the token on a bad CSR', async () => {
    const token = uniq();
    await h.createToken(token);
    await expectError(await h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: 'AAAA' }), 400, 'ERR_CSR_INVALID');
    expect((await h.attest(token)).agentId).toContain(token);
  });

  it('refuses a banned agent ID and a second attestation of an attested one', async () => {
    const id = `spiffe://example.org/spire/agent/node-${uniq()}`;
    const first = uniq();
    await h.createToken(first, { spiffeId: id });
    await h.attest(first);
    const again = uniq();
    await h.createToken(again, { spiffeId: id });
    await expectError(await h.attestRaw({ attestationType: 'join_token', payload: { token: again }, csr: toBase64((await makeCsr()).der) }), 409, 'ERR_AGENT_ALREADY_ATTESTED');
    await agents().ban(id as never, h.nowSeconds());
    const third = uniq();
    await h.createToken(third, { spiffeId: id });
    await expectError(await h.attestRaw({ attestationType: 'join_token', payload: { token: third }, csr: toBase64((await makeCsr()).der) }), 403, 'ERR_AGENT_BANNED');
  });

  it('lets an evicted agent attest again with a new token', async () => {
    const id = `spiffe://example.org/spire/agent/node-${uniq()}`;
    const first = uniq();
    await h.createToken(first, { spiffeId: id });
    const agent = await h.attest(first);
    await agents().evict(id as never);
    await expectAuthFailed(await h.call(agent, 'POST', '/agent/v1/sync', {}));
    const second = uniq();
    await h.createToken(second, { spiffeId: id });
    const back = await h.attest(second);
    expect((await h.call(back, 'POST', '/agent/v1/sync', {})).status).toBe(200);
  });
});

describe('signed requests', () => {
  let agent: TestAgent;
  beforeAll(async () => {
    agent = await h.attestFresh();
  });

  it('accepts a fresh proof', async () => {
    expect((await h.call(agent, 'POST', '/agent/v1/sync', {})).status).toBe(200);
  });

  it('refuses a missing, garbage, stale, future or wrongly signed proof with one message', async () => {
    await expectAuthFailed(await h.fetch('/agent/v1/sync', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }));
    await expectAuthFailed(await h.fetch('/agent/v1/sync', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'WispAgentProof a.b.c' }, body: '{}' }));
    await expectAuthFailed(await h.call(agent, 'POST', '/agent/v1/sync', {}, { now: h.clock.nowMs / 1000 - 120 }));
    await expectAuthFailed(await h.call(agent, 'POST', '/agent/v1/sync', {}, { now: h.clock.nowMs / 1000 + 120 }));
    const other = await makeCsr();
    await expectAuthFailed(await h.call({ ...agent, keys: other.keys }, 'POST', '/agent/v1/sync', {}));
  });

  it('refuses a request whose body or path differs from the signed one', async () => {
    const req = await h.signedRequest(agent, 'POST', '/agent/v1/sync', { revision: '1' });
    const tampered = new Request(req.url, { method: 'POST', headers: req.headers, body: JSON.stringify({ revision: '2' }) });
    await expectAuthFailed(await h.app.request(tampered));
    const moved = new Request(req.url.replace('/sync', '/renew'), { method: 'POST', headers: req.headers, body: JSON.stringify({ revision: '1' }) });
    await expectAuthFailed(await h.app.request(moved));
  });

  it('refuses a replayed proof', async () => {
    const req = await h.signedRequest(agent, 'POST', '/agent/v1/sync', {});
    const copy = req.clone();
    expect((await h.app.request(req)).status).toBe(200);
    await expectAuthFailed(await h.app.request(copy));
  });

  it('refuses an agent SVID from another CA (forged chain)', async () => {
    const impostor = await makeRootCa(TD, h.nowSeconds());
    const forged = await makeSvid(impostor, agent.agentId, h.nowSeconds());
    await expectAuthFailed(await h.call({ agentId: agent.agentId, chain: [forged.der], keys: forged.keys }, 'POST', '/agent/v1/sync', {}));
  });

  it('accepts the previous SVID after a renewal until the new one is used, then refuses it (renewed away)', async () => {
    const old = await h.attestFresh();
    const renewed = await renew(h, old);
    expect((await h.call(old, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    expect((await h.call(renewed, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    await expectAuthFailed(await h.call(old, 'POST', '/agent/v1/sync', {}));
    expect((await agents().get(old.agentId))?.previousSerialNumber).toBeUndefined();
  });

  it('refuses a banned agent with 403 and an evicted one with 401', async () => {
    const banned = await h.attestFresh();
    await agents().ban(banned.agentId, h.nowSeconds());
    await expectError(await h.call(banned, 'POST', '/agent/v1/sync', {}), 403, 'ERR_AGENT_BANNED');
    const evicted = await h.attestFresh();
    await agents().evict(evicted.agentId);
    await expectAuthFailed(await h.call(evicted, 'POST', '/agent/v1/sync', {}));
  });
});

describe('sync, issuance and bundle', () => {
  let agent: TestAgent;
  let web: { id: string };
  let db: { id: string };
  let foreign: { id: string };
  beforeAll(async () => {
    agent = await h.attestFresh();
    const other = await h.attestFresh();
    web = await h.createEntry({ spiffeId: `spiffe://example.org/web-${uniq()}` as never, parentId: agent.agentId, dnsNames: ['web.example.org'], x509SvidTtl: 600, jwtSvidTtl: 120 });
    db = await h.createEntry({ spiffeId: `spiffe://example.org/db-${uniq()}` as never, parentId: agent.agentId });
    foreign = await h.createEntry({ spiffeId: `spiffe://example.org/other-${uniq()}` as never, parentId: other.agentId });
  });

  it('sends entries and the bundle only when they changed', async () => {
    const { sequence } = await ca.published();
    const first = (await (await h.call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse;
    expect(first.entries?.map((e) => e.id).sort()).toEqual([web.id, db.id].sort());
    expect(first.bundle?.spiffe_sequence).toBe(sequence);
    const again = (await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: first.revision, bundleSequence: sequence })).json()) as SyncResponse;
    expect(again).toEqual({ revision: first.revision });
    // a changed bundle (a CA rotation): see the last test of this file
  });

  it('signs a batch of workload X509-SVIDs with ID, DNS names and TTL from the entries', async () => {
    const [c1, c2] = await Promise.all([makeCsr({ uri: 'spiffe://example.org/i-am-admin' }), makeCsr({ curve: 'P-384' })]);
    const before = ca.signedX509;
    const res = await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId: web.id, csr: toBase64(c1.der) }, { entryId: db.id, csr: toBase64(c2.der) }] });
    expect(res.status).toBe(200);
    const { svids } = (await res.json()) as X509SvidsResponse;
    expect(ca.signedX509 - before).toBe(2);
    expect(svids.map((s) => s.entryId)).toEqual([web.id, db.id]);
    const leaf = new x509.X509Certificate(fromBase64(svids[0]!.svid.certChain[0]!));
    const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => `${n.type}:${n.value}`);
    expect(names.sort()).toEqual(['dns:web.example.org', `url:${svids[0]!.svid.spiffeId}`].sort());
    expect(svids[0]!.svid.expiresAt).toBe(h.nowSeconds() + 600);
    expect(svids[1]!.svid.expiresAt).toBe(h.nowSeconds() + 3600);
  });

  it('signs nothing when one entry of a batch is not authorized for the agent', async () => {
    const csr = toBase64((await makeCsr()).der);
    const before = ca.signedX509;
    for (const bad of [foreign.id, 'no-such-entry']) {
      const res = await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId: web.id, csr }, { entryId: bad, csr }] });
      await expectError(res, 403, 'ERR_NO_IDENTITY');
    }
    const jwt = await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId: web.id, audience: ['a'] }, { entryId: foreign.id, audience: ['a'] }] });
    await expectError(jwt, 403, 'ERR_NO_IDENTITY');
    expect(ca.signedX509).toBe(before);
  });

  it('mints JWT-SVIDs for authorized entries with the entry TTL', async () => {
    const res = await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId: web.id, audience: ['svc-a', 'svc-b'] }, { entryId: db.id, audience: ['svc-c'] }] });
    expect(res.status).toBe(200);
    const { svids } = (await res.json()) as JwtSvidsResponse;
    const claims = decodeJwt(svids[0]!.token);
    expect(claims.aud).toEqual(['svc-a', 'svc-b']);
    expect(claims.sub).toBe(svids[0]!.spiffeId);
    expect(svids[0]!.expiresAt).toBe(h.nowSeconds() + 120);
    expect(svids[1]!.expiresAt).toBe(h.nowSeconds() + 300);
  });

  it('serves the bundle to an authenticated agent', async () => {
    const res = await h.call(agent, 'GET', '/agent/v1/bundle');
    expect(res.status).toBe(200);
    // the X.509 authority and the JWT authority: one key each
    expect(((await res.json()) as { bundle: { keys: { use: string }[] } }).bundle.keys.map((k) => k.use)).toEqual(['x509-svid', 'jwt-svid']);
    await expectAuthFailed(await h.fetch('/agent/v1/bundle'));
  });
});

// Last in the file: it moves the shared clock half a CA lifetime on, past every SVID the tests above hold.
describe('after a CA rotation', () => {
  it('sends the new bundle, and no entries, to an agent that has the previous one', async () => {
    const [authority] = (await ca.published()).x509Authorities;
    const notAfter = new x509.X509Certificate(fromBase64(authority!)).notAfter.getTime();
    // the CA publishes its next key once half its lifetime is left (src/shared/ca/key-slot.ts)
    const publishNext = prepareAt({ kid: '', status: 'active', issuedAt: notAfter - ca.config.caTtlSeconds * 1000, notAfter });
    h.clock.nowMs = publishNext - 10 * 60_000;
    const agent = await h.attestFresh();
    const entry = await h.createEntry({ spiffeId: `spiffe://example.org/web-${uniq()}` as never, parentId: agent.agentId });
    const { sequence } = await ca.published();
    const first = (await (await h.call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse;
    expect(first.entries?.map((e) => e.id)).toEqual([entry.id]);
    expect(first.bundle?.spiffe_sequence).toBe(sequence);
    expect((await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: first.revision, bundleSequence: sequence })).json()) as SyncResponse).toEqual({ revision: first.revision });

    h.clock.nowMs = publishNext + 60_000;
    const rotated = (await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: first.revision, bundleSequence: sequence })).json()) as SyncResponse;
    expect(rotated.entries).toBeUndefined();
    const published = await ca.published();
    expect(published.sequence).toBeGreaterThan(sequence);
    expect(published.x509Authorities).toHaveLength(2);
    expect(rotated.bundle?.spiffe_sequence).toBe(published.sequence);
    expect(rotated.bundle?.keys.filter((k) => k.use === 'x509-svid')).toHaveLength(2);
  });
});
