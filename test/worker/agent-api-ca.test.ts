// Agent API end to end inside the Worker: the real entry point (exports.default), the real TrustDomainCa
// Durable Object, real D1, and the admin API to create join tokens and entries. A wisp-agent does the same.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import type { AttestResponse, JwtSvidsResponse, RenewResponse, SyncResponse, X509SvidsResponse } from '../../src/shared/agent-api.js';
import { validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { fromBase64, makeCsr, makeRootCa, makeSvid, toBase64 } from '../helpers/shared/agent-svid.js';
import { admin, call, fetchWorker, type Agent } from '../helpers/workerd/entry-client.js';

describe('agent API with the real CA', () => {
  it('attests, syncs, issues X509 and JWT SVIDs, renews, and refuses the renewed-away SVID', async () => {
    const { token } = (await admin('/join-tokens', {})) as { token: string };
    const csr = await makeCsr();
    const res = await fetchWorker('/agent/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }) });
    expect(res.status, await res.clone().text()).toBe(200);
    const attested = (await res.json()) as AttestResponse;
    expect(attested.svid.spiffeId).toBe(`spiffe://${env.TRUST_DOMAIN}/spire/agent/join_token/${token}`);
    expect(attested.bundle.keys.some((k) => k.use === 'x509-svid')).toBe(true);
    const agent: Agent = { agentId: attested.svid.spiffeId, chain: attested.svid.certChain.map(fromBase64), keys: csr.keys };
    const roots = attested.bundle.keys.filter((k) => k.use === 'x509-svid').map((k) => fromBase64((k.x5c as string[])[0]!));
    const checked = await validateX509Svid(agent.chain, { now: Date.now(), expectedId: agent.agentId, roots });
    expect(checked.ok, JSON.stringify(checked)).toBe(true);

    const { entry } = (await admin('/entries', {
      spiffeId: `spiffe://${env.TRUST_DOMAIN}/ns/test/sa/web-${crypto.randomUUID()}`,
      parentId: agent.agentId,
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      dnsNames: ['web.test'],
      x509SvidTtl: 900,
    })) as { entry: { id: string; spiffeId: string } };

    const sync = (await (await call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse;
    expect(sync.entries?.map((e) => e.id)).toContain(entry.id);
    expect(sync.bundle?.spiffe_sequence).toBeTypeOf('number');

    const workload = await makeCsr();
    const x = await call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId: entry.id, csr: toBase64(workload.der) }] });
    expect(x.status, await x.clone().text()).toBe(200);
    const { svids } = (await x.json()) as X509SvidsResponse;
    const leaf = new x509.X509Certificate(fromBase64(svids[0]!.svid.certChain[0]!));
    const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items.map((n) => `${n.type}:${n.value}`);
    expect(names).toContain(`url:${entry.spiffeId}`);
    expect(names).toContain('dns:web.test');
    expect(svids[0]!.svid.expiresAt - Date.now() / 1000).toBeLessThanOrEqual(900);
    expect((await validateX509Svid(svids[0]!.svid.certChain.map(fromBase64), { now: Date.now(), expectedId: entry.spiffeId, roots })).ok).toBe(true);

    const j = await call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId: entry.id, audience: ['svc'] }] });
    expect(j.status, await j.clone().text()).toBe(200);
    const jwt = ((await j.json()) as JwtSvidsResponse).svids[0]!;
    expect(decodeJwt(jwt.token)).toMatchObject({ sub: entry.spiffeId, aud: ['svc'] });

    expect((await call(agent, 'GET', '/agent/v1/bundle')).status).toBe(200);

    const next = await makeCsr();
    const r = await call(agent, 'POST', '/agent/v1/renew', { csr: toBase64(next.der) });
    expect(r.status, await r.clone().text()).toBe(200);
    const renewed: Agent = { agentId: agent.agentId, chain: ((await r.json()) as RenewResponse).svid.certChain.map(fromBase64), keys: next.keys };
    expect((await call(renewed, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    const old = await call(agent, 'POST', '/agent/v1/sync', {});
    expect(old.status).toBe(401);
    expect(await old.json()).toEqual({ error: { code: 'ERR_AGENT_AUTH_FAILED', message: 'agent authentication failed' } });
  });

  it('refuses an agent SVID from another CA, and a batch naming an entry of another agent', async () => {
    const impostor = await makeRootCa(env.TRUST_DOMAIN, Date.now() / 1000);
    const forged = await makeSvid(impostor, `spiffe://${env.TRUST_DOMAIN}/spire/agent/join_token/forged`, Date.now() / 1000);
    const res = await call({ agentId: 'forged', chain: [forged.der], keys: forged.keys }, 'POST', '/agent/v1/sync', {});
    expect(await res.json()).toEqual({ error: { code: 'ERR_AGENT_AUTH_FAILED', message: 'agent authentication failed' } });

    const attest = async (): Promise<Agent> => {
      const { token } = (await admin('/join-tokens', {})) as { token: string };
      const csr = await makeCsr();
      const r = await fetchWorker('/agent/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }) });
      const { svid } = (await r.json()) as AttestResponse;
      return { agentId: svid.spiffeId, chain: svid.certChain.map(fromBase64), keys: csr.keys };
    };
    const [mine, theirs] = [await attest(), await attest()];
    const entry = async (parentId: string) =>
      ((await admin('/entries', { spiffeId: `spiffe://${env.TRUST_DOMAIN}/w/${crypto.randomUUID()}`, parentId, selectors: [{ type: 'unix', value: 'uid:1' }] })) as { entry: { id: string } }).entry.id;
    const [own, foreign] = [await entry(mine.agentId), await entry(theirs.agentId)];
    const csr = toBase64((await makeCsr()).der);
    const batch = await call(mine, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId: own, csr }, { entryId: foreign, csr }] });
    expect(batch.status).toBe(403);
    expect(((await batch.json()) as { error: { code: string } }).error.code).toBe('ERR_NO_IDENTITY');
  });
});
