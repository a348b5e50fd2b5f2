// /sync's bundle comes from the isolate's published-keys cache (middleware/agent-auth.ts), not from a CA call
// per sync: repeat syncs ask the CA nothing, concurrent syncs on an expired cache share one read, an agent
// holding a newer bundle is not sent an older one, a rotation step made elsewhere (the CA itself, another
// isolate's admin call: here the CA directly) reaches the first sync that starts PUBLISHED_AUTHORITIES_CACHE_MS
// after it and none later, and one made through this app's admin API reaches the very next sync. CA calls
// are counted on the CA the app is given.
import { describe, expect, it } from 'vitest';
import type { SyncResponse } from '../../src/shared/agent-api.js';
import type { AuthorityRequest } from '../../src/worker/ca/ca-api.js';
import { PUBLISHED_AUTHORITIES_CACHE_MS } from '../../src/worker/middleware/agent-auth.js';
import { unwrap } from '../../src/shared/result.js';
import { ADMIN_TOKEN } from '../helpers/workerd/admin.js';
import { createHarness, renew, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa } from '../helpers/workerd/test-ca.js';

function setup() {
  const clock = { nowMs: Date.now() };
  const real = createTestCa(TD, () => clock.nowMs);
  const counter = { reads: 0 };
  const ca = { ...real, getPublishedKeys: () => (counter.reads++, real.getPublishedKeys()) };
  const h = createHarness(() => ca, clock);
  return { clock, real, counter, h };
}

type Authority = { authorityId: string };
/** A step on the CA itself, as another isolate's admin call or the CA's own rotation would make it. */
async function elsewhere(real: ReturnType<typeof createTestCa>, request: AuthorityRequest): Promise<Authority> {
  const result = unwrap(await real.manageAuthority(request));
  if (result.op === 'show') throw new Error('not a change');
  return result.authority;
}

async function sync(h: Harness, agent: TestAgent, known: { revision?: string; bundleSequence?: number }): Promise<SyncResponse> {
  const res = await h.call(agent, 'POST', '/agent/v1/sync', known);
  expect(res.status).toBe(200);
  return (await res.json()) as SyncResponse;
}

const x509Keys = (r: SyncResponse) => r.bundle!.keys.filter((k) => k.use === 'x509-svid');
const jwtKids = (r: SyncResponse) => r.bundle!.keys.filter((k) => k.use === 'jwt-svid').map((k) => String(k.kid));

describe('/sync and the published-keys cache', () => {
  it('serves repeat syncs without a CA call, and concurrent syncs on an expired cache with one', async () => {
    const { clock, counter, h } = setup();
    const agent = await h.attestFresh();
    const first = await sync(h, agent, {});
    const known = { revision: first.revision, bundleSequence: first.bundle!.spiffe_sequence };
    counter.reads = 0;
    for (let i = 0; i < 20; i++) expect(await sync(h, agent, known)).toEqual({ revision: first.revision });
    expect(counter.reads).toBe(0); // agent auth and the bundle both from the cache

    clock.nowMs += PUBLISHED_AUTHORITIES_CACHE_MS;
    const answers = await Promise.all(Array.from({ length: 8 }, () => sync(h, agent, known)));
    expect(answers.map((r) => r.bundle)).toEqual(Array.from({ length: 8 }, () => undefined));
    expect(counter.reads).toBe(1);
  });

  it('an agent holding a newer bundle than the cache (attested after a change) is not sent back the older one', async () => {
    const { real, counter, h } = setup();
    const a = await h.attestFresh();
    const first = await sync(h, a, {});
    const before = first.bundle!.spiffe_sequence!;
    await elsewhere(real, { kind: 'x509', op: 'prepare' });
    const b = await h.attestFresh(); // /attest reads the keys from the CA: b holds the new bundle
    const { sequence } = await real.published();
    expect(sequence).toBeGreaterThan(before);
    counter.reads = 0;
    const forB = await sync(h, b, { bundleSequence: sequence });
    expect(forB.bundle).toBeUndefined();
    expect(forB.taintedAuthorities).toBeUndefined();
    expect(counter.reads).toBe(1); // the re-read the newer sequence asked for, which the cache keeps
    const forA = await sync(h, a, { revision: first.revision, bundleSequence: before });
    expect(forA.bundle!.spiffe_sequence).toBe(sequence);
    expect(x509Keys(forA)).toHaveLength(2);
    expect(counter.reads).toBe(1);
  });

  it('an X.509 taint made elsewhere reaches the first sync after the bound; through the admin API, the next sync', async () => {
    const { clock, real, counter, h } = setup();
    let agent = await h.attestFresh();
    const first = await sync(h, agent, {});
    const nextId = (await elsewhere(real, { kind: 'x509', op: 'prepare' })).authorityId;
    // the authority that signed the agent is the active one before the steps below
    const active = unwrap(await real.manageAuthority({ kind: 'x509', op: 'show' }));
    const oldId = active.op === 'show' ? active.states.active!.authorityId : '';
    await elsewhere(real, { kind: 'x509', op: 'activate', authorityId: nextId });
    await elsewhere(real, { kind: 'x509', op: 'taint', authorityId: oldId });
    const changedAt = clock.nowMs;
    const known = { revision: first.revision, bundleSequence: first.bundle!.spiffe_sequence! };

    // within the bound, the cached view (read before the change) is still served
    clock.nowMs = changedAt + PUBLISHED_AUTHORITIES_CACHE_MS - 1;
    expect((await sync(h, agent, known)).bundle).toBeUndefined();
    clock.nowMs = changedAt + PUBLISHED_AUTHORITIES_CACHE_MS;
    counter.reads = 0;
    const tainted = await sync(h, agent, known);
    expect(counter.reads).toBe(1);
    expect(tainted.bundle!.spiffe_sequence).toBeGreaterThan(known.bundleSequence);
    expect(tainted.taintedAuthorities).toEqual({ x509: [oldId], jwt: [] });
    expect(x509Keys(tainted)).toHaveLength(2);

    // the agent re-signs under the new authority; the revoke goes through this app's admin API
    agent = await renew(h, agent);
    const revoked = await h.fetch('/admin/v1/localauthority/x509/revoke', {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ authorityId: oldId }),
    });
    expect(revoked.status).toBe(200);
    const after = await sync(h, agent, { revision: tainted.revision, bundleSequence: tainted.bundle!.spiffe_sequence });
    expect(after.bundle!.spiffe_sequence).toBeGreaterThan(tainted.bundle!.spiffe_sequence!);
    expect(x509Keys(after)).toHaveLength(1);
    expect(after.taintedAuthorities).toEqual({ x509: [], jwt: [] });
  });

  it('a JWT key revoked elsewhere is not in any bundle a sync sends once the bound has passed', async () => {
    const { clock, real, h } = setup();
    const agent = await h.attestFresh();
    const first = await sync(h, agent, {});
    const [oldKid] = jwtKids(first);
    const next = (await elsewhere(real, { kind: 'jwt', op: 'prepare' })).authorityId;
    await elsewhere(real, { kind: 'jwt', op: 'activate', authorityId: next });
    await elsewhere(real, { kind: 'jwt', op: 'taint', authorityId: oldKid! });
    await elsewhere(real, { kind: 'jwt', op: 'revoke', authorityId: oldKid! });
    const changedAt = clock.nowMs;

    // an agent that has no bundle yet gets the cached one within the bound: the revoked key is still in it
    clock.nowMs = changedAt + PUBLISHED_AUTHORITIES_CACHE_MS - 1;
    expect(jwtKids(await sync(h, agent, {}))).toContain(oldKid);
    clock.nowMs = changedAt + PUBLISHED_AUTHORITIES_CACHE_MS;
    const after = await sync(h, agent, {});
    expect(jwtKids(after)).not.toContain(oldKid);
    expect(jwtKids(after)).toContain(next);
  });
});
