// The issuer's Prometheus endpoint through the real Worker entry point, the real TrustDomainCa Durable
// Object and D1: after N X509-SVIDs, M JWT-SVIDs and a failed attestation the scrape shows them, the
// counts survive a restart of the CA object, and an unauthenticated scrape gets 401.
import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { ISSUER_METRICS } from '../../src/shared/telemetry/issuer-names.js';
import { FLUSH_AFTER_MS } from '../../src/worker/telemetry.js';
import { buildBundleJson } from '../../src/shared/spiffe/bundle.js';
import { makeCsr, makeRootCa, toBase64 } from '../helpers/shared/agent-svid.js';
import { ADMIN, admin, attestNew, call, fetchWorker } from '../helpers/workerd/entry-client.js';

/** Every sample line of a scrape: `name{labels}` → value. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetchWorker('/admin/v1/metrics', { headers: { authorization: ADMIN.authorization } });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-store');
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const M = ISSUER_METRICS;
const X509 = 5;
const JWT = 3;

describe('GET /admin/v1/metrics', () => {
  it('counts signatures, attestations and agent API calls where they happen, across a CA restart', async () => {
    const before = await scrape();
    const delta = (after: Map<string, number>, series: string) => (after.get(series) ?? 0) - (before.get(series) ?? 0);

    const agent = await attestNew(); // one more X509-SVID (the agent's), one successful join_token attestation
    const failed = await fetchWorker('/agent/v1/attest', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ attestationType: 'join_token', payload: { token: 'no-such-token' }, csr: toBase64((await makeCsr()).der) }),
    });
    expect(failed.status).toBeGreaterThanOrEqual(400);
    const { entry } = (await admin('/entries', { spiffeId: `spiffe://${env.TRUST_DOMAIN}/w/${crypto.randomUUID()}`, parentId: agent.agentId, selectors: [{ type: 'unix', value: 'uid:1' }] })) as { entry: { id: string } };
    const csrs = await Promise.all(Array.from({ length: X509 }, () => makeCsr()));
    const x = await call(agent, 'POST', '/agent/v1/x509-svids', { requests: csrs.map((c) => ({ entryId: entry.id, csr: toBase64(c.der) })) });
    expect(x.status, await x.clone().text()).toBe(200);
    for (let i = 0; i < JWT; i++) expect((await call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId: entry.id, audience: [`a${i}`] }] })).status).toBe(200);

    const after = await scrape();
    expect(delta(after, M.x509SvidSigned.name)).toBe(X509 + 1);
    expect(delta(after, M.jwtSvidSigned.name)).toBe(JWT);
    const attest = M.rpc.attest.calls.name;
    expect(delta(after, `${attest}{status="OK",attestor="join_token"}`)).toBe(1);
    const failures = [...after.keys()].filter((k) => k.startsWith(`${attest}{`) && k.includes('attestor="join_token"') && !k.includes('status="OK"'));
    expect(failures.reduce((n, k) => n + delta(after, k), 0)).toBe(1);
    expect(delta(after, `${M.rpc['jwt-svids'].calls.name}{status="OK"}`)).toBe(JWT);
    expect(delta(after, `${M.rpc['jwt-svids'].latency.name}_count{status="OK"}`)).toBe(JWT);
    expect(delta(after, `${M.rpc['jwt-svids'].latency.name}_bucket{status="OK",le="+Inf"}`)).toBe(JWT);
    expect(delta(after, `${M.rpc['x509-svids'].calls.name}{status="OK"}`)).toBe(1);
    // the CA's gauges and the registry sizes read from D1
    const ttl = after.get(`${M.x509CaTtl.name}{trust_domain_id="${env.TRUST_DOMAIN}"}`)!;
    const expiry = after.get(`${M.x509CaExpiration.name}{trust_domain_id="${env.TRUST_DOMAIN}"}`)!;
    expect(ttl).toBeGreaterThan(0);
    expect(Math.abs(expiry - Date.now() / 1000 - ttl)).toBeLessThan(5);
    expect(after.get(M.attestedAgents.name)).toBeGreaterThanOrEqual(1);
    expect(after.get(M.registrationEntries.name)).toBeGreaterThanOrEqual(1);
    expect(delta(after, M.registrationEntries.name)).toBe(1);
    await admin('/join-tokens', {});
    expect((await scrape()).get(M.joinTokens.name)).toBe((after.get(M.joinTokens.name) ?? 0) + 1);

    await abortAllDurableObjects();
    const restarted = await scrape();
    for (const series of [M.x509SvidSigned.name, M.jwtSvidSigned.name, `${attest}{status="OK",attestor="join_token"}`, `${M.rpc['jwt-svids'].latency.name}_count{status="OK"}`]) {
      expect(restarted.get(series), series).toBe(after.get(series));
    }
  });

  it('refuses a scrape without the admin credential (401) or with a wrong one (403)', async () => {
    const none = await fetchWorker('/admin/v1/metrics');
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: 'ERR_UNAUTHENTICATED' } });
    const wrong = await fetchWorker('/admin/v1/metrics', { headers: { authorization: 'Bearer not-the-admin-token' } });
    expect(wrong.status).toBe(403);
    expect(await wrong.json()).toMatchObject({ error: { code: 'ERR_PERMISSION_DENIED' } });
  });

  it("sends an isolate's agent API counts to the CA by itself, FLUSH_AFTER_MS after the call (no scrape needed)", async () => {
    const stub = env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN));
    const stored = () =>
      runInDurableObject(stub, (_ca, state) => state.storage.sql.exec<{ v: number }>('SELECT COALESCE(SUM(value), 0) AS v FROM ca_metrics WHERE name = ?', M.rpc.bundle.calls.name).one().v);
    const agent = await attestNew();
    await scrape(); // sends what this isolate held so far
    const before = await stored();
    expect((await call(agent, 'GET', '/agent/v1/bundle')).status).toBe(200);
    expect(await stored()).toBe(before);
    await scheduler.wait(FLUSH_AFTER_MS + 500);
    expect(await stored()).toBe(before + 1);
  });

  it('counts federated bundle refreshes by trust domain and outcome (an operator-submitted https_spiffe refresh)', async () => {
    const td = `partner-${crypto.randomUUID().slice(0, 8)}.example`;
    const doc = (sequence: number) => makeRootCa(td, Date.now() / 1000).then((root) => buildBundleJson({ x509Authorities: [toBase64(root.der)], jwtAuthorities: [], sequence, refreshHintSeconds: 300 }));
    await admin('/federation', { trustDomain: td, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: `spiffe://${td}/bundle-server`, trustDomainBundle: await doc(1) });
    const refresh = (body: unknown) => fetchWorker(`/admin/v1/federation/${td}/refresh`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
    expect((await refresh({ bundle: await doc(2) })).status).toBe(200);
    expect((await refresh({ error: 'ECONNREFUSED' })).status).toBe(200);
    expect((await refresh({ bundle: await doc(1) })).status).toBe(409); // backwards: refused, counted as failed
    const after = await scrape();
    expect(after.get(`${M.federatedBundleFetch.name}{trust_domain_id="${td}",status="OK"}`)).toBe(1);
    expect(after.get(`${M.federatedBundleFetch.name}{trust_domain_id="${td}",status="Unavailable"}`)).toBe(2);
    expect(after.get(`${M.federatedBundleUpdate.name}{trust_domain_id="${td}"}`)).toBe(1);
  });
});
