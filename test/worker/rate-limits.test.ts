// Issuer rate limits (issue 20): a flood of attestation attempts from one address and of signing from one
// agent gets 429 with Retry-After while another address and another agent keep being served, and the counts
// hold when the CA restarts over the same storage (the DO's restart: test/worker/ca/rate-limits-do.test.ts).
import { describe, expect, it } from 'vitest';
import type { JwtSvidsResponse, X509SvidsResponse } from '../../src/shared/agent-api.js';
import type { SpiffeId } from '../../src/shared/spiffe/id.js';
import { createMemoryCaStorage } from '../../src/worker/ca/ca-storage.js';
import { RATE_LIMIT_DEFAULTS, type RateLimitsConfig } from '../../src/worker/ca/rate-limits.js';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { createHarness, expectError, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { config as adminConfig, makeAdmin } from '../helpers/workerd/admin.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

// Bursts below the CA's batch size are refused by the config schema; set on the core directly here, so a
// flood takes a handful of requests.
const LIMITS: RateLimitsConfig = {
  attestation: { ratePerSecond: 0.1, burst: 3 },
  x509Signing: { ratePerSecond: 1, burst: 5 },
  jwtSigning: { ratePerSecond: 2, burst: 6 },
};

/** A CA over `storage` and an app in front of it, both on `clock`: made again, it is the same CA restarted. */
function issuer(storage = createMemoryCaStorage(), clock = { nowMs: Date.now() }): { ca: TestCa; h: Harness; storage: typeof storage; clock: typeof clock } {
  const ca = createTestCa(TD, () => clock.nowMs, {}, { storage, rateLimits: LIMITS });
  return { ca, h: createHarness(() => ca, clock), storage, clock };
}

async function attestFrom(h: Harness, ip: string | undefined): Promise<Response> {
  const token = crypto.randomUUID();
  await h.createToken(token);
  return h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: toBase64((await makeCsr()).der) }, ip ? { 'cf-connecting-ip': ip } : {});
}

async function expectLimited(res: Response, retryAfter: string): Promise<void> {
  const error = await expectError(res, 429, 'ERR_RATE_LIMITED');
  expect(res.headers.get('retry-after')).toBe(retryAfter);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(error.message).toMatch(/rate limit exceeded; retry after \d+s/);
}

describe('attestation attempts per source address', () => {
  it('refuses a flood from one address with 429 + Retry-After, serves other addresses, and keeps the count across a restart', async () => {
    const first = issuer();
    const a = '203.0.113.7';
    for (let i = 0; i < 3; i++) expect((await attestFrom(first.h, a)).status).toBe(200);
    // a failed attempt counts too, and a refused one spends nothing: its join token stays usable
    const signedBefore = first.ca.signedX509;
    await expectLimited(await attestFrom(first.h, a), '10');
    await expectLimited(await first.h.attestRaw({ attestationType: 'join_token', payload: { token: 'nope' }, csr: 'x' }, { 'cf-connecting-ip': a }), '10');
    expect(first.ca.signedX509).toBe(signedBefore);
    expect((await attestFrom(first.h, '2001:DB8::1')).status).toBe(200);
    expect((await attestFrom(first.h, undefined)).status).toBe(200);

    const restarted = issuer(first.storage, first.clock);
    await expectLimited(await attestFrom(restarted.h, a), '10');
    expect((await attestFrom(restarted.h, '198.51.100.1')).status).toBe(200);
    // one token every 10 s
    restarted.clock.nowMs += 10_000;
    expect((await attestFrom(restarted.h, a)).status).toBe(200);
    await expectLimited(await attestFrom(restarted.h, a), '10');
  });

  it('counts requests without CF-Connecting-IP (or with a value that is no address) in one shared bucket', async () => {
    const { h } = issuer();
    for (let i = 0; i < 2; i++) expect((await attestFrom(h, undefined)).status).toBe(200);
    expect((await attestFrom(h, 'not an address')).status).toBe(200);
    await expectLimited(await attestFrom(h, undefined), '10');
    expect((await attestFrom(h, '192.0.2.1')).status).toBe(200);
  });
});

describe('signing per agent', () => {
  async function x509Batch(h: Harness, agent: TestAgent, entryIds: string[]): Promise<Response> {
    const requests = await Promise.all(entryIds.map(async (entryId) => ({ entryId, csr: toBase64((await makeCsr()).der) })));
    return h.call(agent, 'POST', '/agent/v1/x509-svids', { requests });
  }

  async function agentWithEntries(h: Harness, n: number): Promise<{ agent: TestAgent; entryIds: string[] }> {
    const agent = await h.attestFresh();
    const entryIds: string[] = [];
    for (let i = 0; i < n; i++) entryIds.push((await h.createEntry({ spiffeId: `${agent.agentId}/w${i}` as SpiffeId, parentId: agent.agentId })).id);
    return { agent, entryIds };
  }

  it('refuses an agent whose X.509 bucket is short, whole batch, while another agent is served; across a restart', async () => {
    const first = issuer();
    const noisy = await agentWithEntries(first.h, 3);
    const quiet = await agentWithEntries(first.h, 1);
    expect((await x509Batch(first.h, noisy.agent, noisy.entryIds)).status).toBe(200);
    const signedBefore = first.ca.signedX509;
    // 2 tokens left, 3 asked: nothing is signed; 1 token short at 1/s
    await expectLimited(await x509Batch(first.h, noisy.agent, noisy.entryIds), '1');
    expect(first.ca.signedX509).toBe(signedBefore);
    const served = await x509Batch(first.h, quiet.agent, quiet.entryIds);
    expect(served.status).toBe(200);
    expect(((await served.json()) as X509SvidsResponse).svids).toHaveLength(1);
    // renewal signs in the agent's bucket as well
    expect((await x509Batch(first.h, noisy.agent, noisy.entryIds.slice(0, 2))).status).toBe(200);
    await expectLimited(await first.h.call(noisy.agent, 'POST', '/agent/v1/renew', { csr: toBase64((await makeCsr()).der) }), '1');

    const restarted = issuer(first.storage, first.clock);
    await expectLimited(await x509Batch(restarted.h, noisy.agent, noisy.entryIds.slice(0, 1)), '1');
    expect((await x509Batch(restarted.h, quiet.agent, quiet.entryIds)).status).toBe(200);
    restarted.clock.nowMs += 3_000;
    expect((await x509Batch(restarted.h, noisy.agent, noisy.entryIds)).status).toBe(200);
  });

  it('counts JWT-SVIDs per agent, one token per SVID, apart from X.509 signing', async () => {
    const first = issuer();
    const noisy = await agentWithEntries(first.h, 4);
    const quiet = await agentWithEntries(first.h, 1);
    const jwt = (h: Harness, agent: TestAgent, ids: string[]) => h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: ids.map((entryId) => ({ entryId, audience: ['svc'] })) });
    expect((await jwt(first.h, noisy.agent, noisy.entryIds)).status).toBe(200);
    await expectLimited(await jwt(first.h, noisy.agent, [...noisy.entryIds, ...noisy.entryIds.slice(0, 1)]), '2');
    expect((await jwt(first.h, noisy.agent, noisy.entryIds.slice(0, 2))).status).toBe(200);
    await expectLimited(await jwt(first.h, noisy.agent, noisy.entryIds.slice(0, 1)), '1');
    // the X.509 bucket is another one
    expect((await x509Batch(first.h, noisy.agent, noisy.entryIds)).status).toBe(200);
    const served = await jwt(first.h, quiet.agent, quiet.entryIds);
    expect(((await served.json()) as JwtSvidsResponse).svids).toHaveLength(1);

    const restarted = issuer(first.storage, first.clock);
    await expectLimited(await jwt(restarted.h, noisy.agent, noisy.entryIds.slice(0, 1)), '1');
    expect((await jwt(restarted.h, quiet.agent, quiet.entryIds)).status).toBe(200);
  });

  it('signs an agent API batch of the largest size at the default limits', async () => {
    expect(RATE_LIMIT_DEFAULTS.x509Signing.burst).toBeGreaterThanOrEqual(500);
    const clock = { nowMs: Date.now() };
    const ca = createTestCa(TD, () => clock.nowMs);
    const h = createHarness(() => ca, clock);
    const agent = await h.attestFresh();
    const entry = await h.createEntry({ spiffeId: `${agent.agentId}/big` as SpiffeId, parentId: agent.agentId });
    const ids = Array.from({ length: 500 }, () => entry.id);
    const res = await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: ids.map((entryId) => ({ entryId, audience: ['svc'] })) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as JwtSvidsResponse).svids).toHaveLength(500);
  });
});

describe('admin minting per admin principal', () => {
  it('counts /x509-svids/mint and /jwt-svids/mint in the signing buckets of the admin principal', async () => {
    const ca = createTestCa(adminConfig.trustDomain, () => Date.now(), {}, { rateLimits: LIMITS });
    const admin = makeAdmin(ca);
    const csr = toBase64((await makeCsr()).der);
    const spiffeId = `spiffe://${adminConfig.trustDomain}/minted`;
    for (let i = 0; i < 5; i++) expect((await admin.call('POST', '/x509-svids/mint', { spiffeId, csr })).status).toBe(200);
    await expectLimited(await admin.call('POST', '/x509-svids/mint', { spiffeId, csr }), '1');
    for (let i = 0; i < 6; i++) expect((await admin.call('POST', '/jwt-svids/mint', { spiffeId, audience: ['a'] })).status).toBe(200);
    await expectLimited(await admin.call('POST', '/jwt-svids/mint', { spiffeId, audience: ['a'] }), '1');
  });
});
