// Federation in the issuer: relationships and foreign bundles through the admin API (strict validation,
// spiffe_sequence never backwards), the https_web refresh (timeout, last good bundle kept, errors recorded)
// and federated bundles in the agent API (/sync only for the agent's federatesWith, change detection
// through the folded revision; /bundle).
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BundleResponse, FederationRefreshTasksResponse, SyncResponse } from '../../src/shared/agent-api.js';
import { buildBundleJson, type SpiffeBundleJson } from '../../src/shared/spiffe/bundle.js';
import { createFederationStore } from '../../src/worker/db/federation.js';
import { refreshDueRelationships, refreshRelationship } from '../../src/worker/federation/refresh.js';
import { createHarness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';
import { errorCode, makeAdmin, NOW_MS } from '../helpers/workerd/admin.js';
import { makeRootCa, toBase64 } from '../helpers/shared/agent-svid.js';

const NOW_S = Math.floor(NOW_MS / 1000);
const store = createFederationStore(env.DB);
let n = 0;
const foreignTd = () => `partner-${Date.now().toString(36)}-${n++}.example`;

async function foreignBundle(td: string, sequence = 1, refreshHint = 300): Promise<{ doc: SpiffeBundleJson; pem: string }> {
  const root = await makeRootCa(td, NOW_S);
  const doc = await buildBundleJson({ x509Authorities: [toBase64(root.der)], jwtAuthorities: [], sequence, refreshHintSeconds: refreshHint });
  const pem = `-----BEGIN CERTIFICATE-----\n${toBase64(root.der).match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  return { doc, pem };
}

describe('admin API: federation relationships', () => {
  const admin = makeAdmin();

  it('creates, lists, shows, updates and deletes an https_web relationship', async () => {
    const td = foreignTd();
    const { doc } = await foreignBundle(td);
    const created = await admin.call('POST', '/federation', { trustDomain: td, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web', trustDomainBundle: doc });
    expect(created.status).toBe(201);
    const { relationship } = (await created.json()) as { relationship: Record<string, unknown> };
    expect(relationship).toMatchObject({ trustDomain: td, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web', lastRefreshAt: 0, lastRefreshError: '' });
    expect((await admin.call('POST', '/federation', { trustDomain: td, bundleEndpointUrl: `https://${td}/bundle` })).status).toBe(409);
    const list = (await (await admin.call('GET', '/federation')).json()) as { relationships: { trustDomain: string }[] };
    expect(list.relationships.map((r) => r.trustDomain)).toContain(td);
    const shown = (await (await admin.call('GET', `/federation/${td}`)).json()) as { bundle: { bundle: SpiffeBundleJson; sequence: number } };
    expect(shown.bundle.bundle).toEqual(doc);
    const updated = await admin.call('PUT', `/federation/${td}`, { bundleEndpointUrl: `https://${td}/v2/bundle` });
    expect(updated.status).toBe(200);
    expect(((await updated.json()) as { relationship: { bundleEndpointUrl: string } }).relationship.bundleEndpointUrl).toBe(`https://${td}/v2/bundle`);
    expect((await admin.call('DELETE', `/federation/${td}`)).status).toBe(204);
    expect(await errorCode(await admin.call('GET', `/federation/${td}`))).toBe('ERR_FEDERATION_NOT_FOUND');
    // the relationship's bundle goes with it
    expect(await errorCode(await admin.call('GET', `/bundles/${td}`))).toBe('ERR_BUNDLE_NOT_FOUND');
    expect(await errorCode(await admin.call('DELETE', `/federation/${td}`))).toBe('ERR_FEDERATION_NOT_FOUND');
  });

  it('refuses bad trust domains, URLs, profiles and https_spiffe without endpoint ID or bundle', async () => {
    const td = foreignTd();
    const { doc } = await foreignBundle(td);
    const bad = async (body: unknown) => errorCode(await admin.call('POST', '/federation', body));
    expect(await bad({ trustDomain: 'Not_Valid!', bundleEndpointUrl: 'https://x.example/b' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: 'example.org', bundleEndpointUrl: 'https://x.example/b' })).toBe('ERR_BAD_REQUEST'); // ourselves
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'http://partner.example/b' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'ftp://partner.example/b' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://user:pw@partner.example/b' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'not a url' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_magic' })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', trustDomainBundle: doc })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: `spiffe://${td}/bundle-server` })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://other.example/x', trustDomainBundle: doc })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', endpointSpiffeId: `spiffe://${td}/x` })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', trustDomainBundle: { keys: [{ use: 'x509-svid', kty: 'EC' }] } })).toBe('ERR_BAD_REQUEST');
    expect(await bad({ trustDomain: td, bundleEndpointUrl: 'https://p.example/b', typo: 1 })).toBe('ERR_BAD_REQUEST');
    // http is allowed for loopback hosts only
    for (const url of ['http://127.0.0.1:8787/bundle', 'http://localhost:1/bundle', 'http://[::1]:2/bundle']) {
      const t = foreignTd();
      expect((await admin.call('POST', '/federation', { trustDomain: t, bundleEndpointUrl: url })).status, url).toBe(201);
    }
    const spiffe = await admin.call('POST', '/federation', { trustDomain: td, bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: `spiffe://${td}/bundle-server`, trustDomainBundle: doc });
    expect(spiffe.status).toBe(201);
    const refresh = await admin.call('POST', `/federation/${td}/refresh`);
    expect(await errorCode(refresh)).toBe('ERR_BAD_REQUEST');
    // what Node fetched over SPIFFE-authenticated TLS: a failure, then a newer bundle, then an older one
    const failed = await admin.call('POST', `/federation/${td}/refresh`, { error: 'ECONNREFUSED' });
    expect(((await failed.json()) as { relationship: { lastRefreshError: string } }).relationship.lastRefreshError).toBe('ECONNREFUSED');
    const newer = await admin.call('POST', `/federation/${td}/refresh`, { bundle: { ...doc, spiffe_sequence: 2 } });
    expect(newer.status).toBe(200);
    expect(await newer.json()).toMatchObject({ status: 'updated', relationship: { lastRefreshError: '', lastRefreshAt: NOW_S }, bundle: { sequence: 2 } });
    expect(await errorCode(await admin.call('POST', `/federation/${td}/refresh`, { bundle: { ...doc, spiffe_sequence: 1 } }))).toBe('ERR_BUNDLE_SEQUENCE_BACKWARDS');
    const shown = (await (await admin.call('GET', `/federation/${td}`)).json()) as { relationship: { lastRefreshError: string } };
    expect(shown.relationship.lastRefreshError).toMatch(/ERR_BUNDLE_SEQUENCE_BACKWARDS/);
  });
});

describe('admin API: foreign bundles', () => {
  const admin = makeAdmin();

  it('sets from SPIFFE JSON or PEM, lists, shows and deletes', async () => {
    const td = foreignTd();
    const { doc, pem } = await foreignBundle(td, 5);
    expect((await admin.call('PUT', `/bundles/${td}`, { bundle: doc })).status).toBe(200);
    const shown = (await (await admin.call('GET', `/bundles/${td}`)).json()) as { bundle: { sequence: number; bundle: SpiffeBundleJson } };
    expect(shown.bundle.sequence).toBe(5);
    const list = (await (await admin.call('GET', '/bundles')).json()) as { bundles: { trustDomain: string }[] };
    expect(list.bundles.map((b) => b.trustDomain)).toContain(td);
    const td2 = foreignTd();
    const fromPem = await admin.call('PUT', `/bundles/${td2}`, { bundle: pem });
    expect(fromPem.status).toBe(200);
    const pemBundle = ((await fromPem.json()) as { bundle: { bundle: SpiffeBundleJson } }).bundle.bundle;
    expect(pemBundle.keys).toHaveLength(1);
    expect(pemBundle.keys[0]).toMatchObject({ use: 'x509-svid', kty: 'EC', x5c: (doc.keys[0] as { x5c: string[] }).x5c });
    expect((await admin.call('DELETE', `/bundles/${td}`)).status).toBe(204);
    expect(await errorCode(await admin.call('GET', `/bundles/${td}`))).toBe('ERR_BUNDLE_NOT_FOUND');
  });

  it('refuses a spiffe_sequence going backwards, malformed bundles and our own trust domain', async () => {
    const td = foreignTd();
    const { doc } = await foreignBundle(td, 7);
    expect((await admin.call('PUT', `/bundles/${td}`, { bundle: doc })).status).toBe(200);
    expect(await errorCode(await admin.call('PUT', `/bundles/${td}`, { bundle: { ...doc, spiffe_sequence: 6 } }))).toBe('ERR_BUNDLE_SEQUENCE_BACKWARDS');
    expect((await admin.call('PUT', `/bundles/${td}`, { bundle: { ...doc, spiffe_sequence: 8 } })).status).toBe(200);
    // the store refuses it too (a concurrent writer)
    expect(await store.putBundle({ trustDomain: td as never, bundle: doc, sequence: 7, updatedAt: NOW_S })).toBe(false);
    expect((await store.getBundle(td as never))?.sequence).toBe(8);
    for (const bundle of ['garbage', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', { keys: 'x' }, { keys: [] }, { keys: [{ use: 'jwt-svid', kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }] }, 42]) {
      expect(await errorCode(await admin.call('PUT', `/bundles/${td}`, { bundle })), JSON.stringify(bundle)).toBe('ERR_BAD_REQUEST');
    }
    expect(await errorCode(await admin.call('PUT', '/bundles/example.org', { bundle: doc }))).toBe('ERR_BAD_REQUEST');
  });
});

describe('https_web refresh', () => {
  function fakeEndpoint(answers: Array<() => Response | Promise<Response>>) {
    const calls: string[] = [];
    const f = (async (url: string | URL | Request) => {
      calls.push(String(url));
      const next = answers.shift();
      if (!next) throw new Error('unexpected fetch');
      return next();
    }) as typeof fetch;
    return { calls, fetch: f };
  }

  it('stores the fetched bundle, schedules at the bounded refresh hint, keeps the last good one on failure', async () => {
    const td = foreignTd();
    const v1 = await foreignBundle(td, 1, 10); // hint 10 s → bounded to 60 s
    const v0 = { ...v1.doc, spiffe_sequence: 0 };
    await store.createRelationship({ trustDomain: td as never, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web' }, undefined, NOW_S);
    let now = NOW_S;
    const ep = fakeEndpoint([
      () => Response.json(v1.doc),
      () => new Response('oops', { status: 500 }),
      () => Response.json(v0),
      () => new Response('{"keys": 3}'),
    ]);
    const deps = { store, fetch: ep.fetch, now: () => now };
    const rel = async () => (await store.getRelationship(td as never))!;

    const due = await store.dueForRefresh(now, 1000);
    expect(due.map((r) => r.trustDomain)).toContain(td);
    expect(due.every((r) => r.bundleEndpointProfile === 'https_web')).toBe(true);
    const first = await refreshRelationship(deps, await rel());
    expect(first).toEqual({ trustDomain: td, status: 'updated' });
    expect(await rel()).toMatchObject({ lastRefreshAt: NOW_S, lastRefreshError: '', nextRefreshAt: NOW_S + 60 });
    expect((await store.getBundle(td as never))?.bundle).toEqual(v1.doc);

    now += 60;
    for (const expected of [/HTTP 500/, /ERR_BUNDLE_SEQUENCE_BACKWARDS/, /ERR_BAD_REQUEST/]) {
      const outcome = await refreshRelationship(deps, await rel());
      expect(outcome.status).toBe('failed');
      const r = await rel();
      expect(r.lastRefreshError).toMatch(expected);
      expect(r.lastRefreshAt).toBe(NOW_S);
      expect(r.nextRefreshAt).toBe(now + 300);
      expect((await store.getBundle(td as never))?.bundle).toEqual(v1.doc);
    }
    // not due until its next refresh
    expect((await store.dueForRefresh(now, 1000)).map((r) => r.trustDomain)).not.toContain(td);
  }, 30_000);

  it('the cron job refreshes every due https_web relationship', async () => {
    const td = foreignTd();
    const v1 = await foreignBundle(td, 3, 3600);
    await store.createRelationship({ trustDomain: td as never, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web' }, undefined, NOW_S);
    const f = (async (url: string | URL | Request) => (String(url).includes(td) ? Response.json(v1.doc) : new Response('no', { status: 404 }))) as typeof fetch;
    const outcomes = await refreshDueRelationships({ store, fetch: f, now: () => NOW_S });
    expect(outcomes.find((o) => o.trustDomain === td)).toEqual({ trustDomain: td, status: 'updated' });
    expect((await store.getRelationship(td as never))?.nextRefreshAt).toBe(NOW_S + 3600);
  });

  it('gives up on a silent endpoint after the timeout and refuses a redirect to a non-https URL', async () => {
    const td = foreignTd();
    await store.createRelationship({ trustDomain: td as never, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web' }, undefined, NOW_S);
    const { fetchBundleDocument } = await import('../../src/worker/federation/refresh.js');
    const silent = (async (_u: unknown, init?: RequestInit) =>
      new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'TimeoutError' }))))) as typeof fetch;
    await expect(fetchBundleDocument(`https://${td}/bundle`, silent, 50)).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    const redirect = (async () => new Response(null, { status: 302, headers: { location: `http://${td}/elsewhere` } })) as typeof fetch;
    await expect(fetchBundleDocument(`https://${td}/bundle`, redirect)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST' });
  });
});

describe('agent API: federated bundles', () => {
  let ca: TestCa;
  let h: ReturnType<typeof createHarness>;
  let agent: TestAgent;
  let tdA: string;
  let tdB: string;
  let tdC: string;

  beforeAll(async () => {
    const clock = { nowMs: Date.now() };
    ca = createTestCa('example.org', () => clock.nowMs);
    h = createHarness(() => ca, clock);
    agent = await h.attestFresh();
    tdA = foreignTd();
    tdB = foreignTd();
    tdC = foreignTd();
    for (const td of [tdA, tdB, tdC]) await store.putBundle({ trustDomain: td as never, bundle: (await foreignBundle(td)).doc, sequence: 1, updatedAt: NOW_S });
    await h.createEntry({ spiffeId: `spiffe://example.org/fed-${n++}` as never, parentId: agent.agentId, federatesWith: [tdA as never, tdB as never] });
  });

  it("sends only the bundles of the agent's federatesWith, and again only when federation changes", async () => {
    const { sequence } = await ca.published();
    const first = (await (await h.call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse;
    expect(Object.keys(first.federatedBundles ?? {}).sort()).toEqual([tdA, tdB].sort());
    const again = (await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: first.revision, bundleSequence: sequence })).json()) as SyncResponse;
    expect(again).toEqual({ revision: first.revision });

    // a new bundle of tdA: federatedBundles (complete set), no entries
    await store.putBundle({ trustDomain: tdA as never, bundle: (await foreignBundle(tdA, 2)).doc, sequence: 2, updatedAt: NOW_S });
    const changed = (await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: first.revision, bundleSequence: sequence })).json()) as SyncResponse;
    expect(changed.entries).toBeUndefined();
    expect(Object.keys(changed.federatedBundles ?? {}).sort()).toEqual([tdA, tdB].sort());
    expect(changed.federatedBundles?.[tdA]?.spiffe_sequence).toBe(2);

    // deleting a bundle: the set shrinks
    await store.deleteBundle(tdB as never);
    const shrunk = (await (await h.call(agent, 'POST', '/agent/v1/sync', { revision: changed.revision, bundleSequence: sequence })).json()) as SyncResponse;
    expect(Object.keys(shrunk.federatedBundles ?? {})).toEqual([tdA]);

    const bundle = (await (await h.call(agent, 'GET', '/agent/v1/bundle')).json()) as BundleResponse;
    expect(Object.keys(bundle.federatedBundles ?? {})).toEqual([tdA]);
  });
});

describe('agent API: https_spiffe refresh by the assigned agent', () => {
  it('lists the tasks of the assigned agent only, and takes its bundles and errors', async () => {
    const clock = { nowMs: NOW_MS };
    const ca = createTestCa('example.org', () => clock.nowMs);
    const h = createHarness(() => ca, clock);
    const attest = async () => {
      return h.attestFresh();
    };
    const [assigned, other] = [await attest(), await attest()];
    const td = foreignTd();
    const { doc } = await foreignBundle(td, 1);
    const admin = makeAdmin();
    const created = await admin.call('POST', '/federation', {
      trustDomain: td,
      bundleEndpointUrl: `https://${td}:8443/bundle`,
      bundleEndpointProfile: 'https_spiffe',
      endpointSpiffeId: `spiffe://${td}/spire/server`,
      refreshAgentId: assigned.agentId,
      trustDomainBundle: doc,
    });
    expect(created.status).toBe(201);
    expect(await errorCode(await admin.call('POST', '/federation', { trustDomain: foreignTd(), bundleEndpointUrl: 'https://x.example/b', refreshAgentId: assigned.agentId }))).toBe('ERR_BAD_REQUEST');
    expect(
      await errorCode(
        await admin.call('POST', '/federation', { trustDomain: foreignTd(), bundleEndpointUrl: 'https://x.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://x.example/s', refreshAgentId: 'spiffe://example.org/not-an-agent', trustDomainBundle: doc }),
      ),
    ).toBe('ERR_BAD_REQUEST');

    const tasks = (await (await h.call(assigned, 'GET', '/agent/v1/federation/refresh-tasks')).json()) as FederationRefreshTasksResponse;
    expect(tasks.tasks).toEqual([{ trustDomain: td, bundleEndpointUrl: `https://${td}:8443/bundle`, endpointSpiffeId: `spiffe://${td}/spire/server`, bundle: doc }]);
    const none = (await (await h.call(other, 'GET', '/agent/v1/federation/refresh-tasks')).json()) as FederationRefreshTasksResponse;
    expect(none.tasks).toEqual([]);

    const submit = (agent: TestAgent, body: unknown) => h.call(agent, 'POST', '/agent/v1/federation/bundles', body);
    expect(await errorCode(await submit(other, { trustDomain: td, bundle: { ...doc, spiffe_sequence: 2 } }))).toBe('ERR_PERMISSION_DENIED');
    const ok = await submit(assigned, { trustDomain: td, bundle: { ...doc, spiffe_sequence: 2 } });
    expect(await ok.json()).toEqual({ status: 'updated' });
    expect((await store.getBundle(td as never))?.sequence).toBe(2);
    expect(await errorCode(await submit(assigned, { trustDomain: td, bundle: { ...doc, spiffe_sequence: 1 } }))).toBe('ERR_BUNDLE_SEQUENCE_BACKWARDS');
    expect(await (await submit(assigned, { trustDomain: td, error: 'TLS: unexpected endpoint SPIFFE ID' })).json()).toEqual({ status: 'failed' });
    expect((await store.getRelationship(td as never))?.lastRefreshError).toBe('TLS: unexpected endpoint SPIFFE ID');
    expect(await errorCode(await submit(assigned, { trustDomain: td }))).toBe('ERR_BAD_REQUEST');
    expect(await errorCode(await submit(assigned, { trustDomain: 'Bad!', error: 'x' }))).toBe('ERR_BAD_REQUEST');
  });
});
