// Attestation claims the agent ID atomically before anything is signed (issue 20): of concurrent
// attestations for one agent ID at most one gets an SVID, for join tokens with a preset ID and for attestors
// that allow re-attestation alike; a banned ID is refused without signing.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AttestResponse } from '../../src/shared/agent-api.js';
import type { SpiffeId } from '../../src/shared/spiffe/id.js';
import type { NodeAttestor } from '../../src/worker/attestation/types.js';
import { createApp } from '../../src/worker/app.js';
import { parseWorkerConfig } from '../../src/worker/config.js';
import { createAppDeps } from '../../src/worker/wiring.js';
import { fromBase64, makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { agents, BASE, createHarness, expectError, TD, type Harness } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

const N = 10;
let ca: TestCa;
let h: Harness;
const clock = { nowMs: Date.now() };

beforeAll(async () => {
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
});

const uniq = () => crypto.randomUUID();
const statuses = (responses: Response[]) => responses.map((r) => r.status).sort((a, b) => a - b);

/** An app whose only attestor names one fixed agent ID and allows re-attestation (like aws_iid). */
function reattestingApp(agentId: SpiffeId) {
  const attestor: NodeAttestor = { type: 'fixed', attest: async () => ({ agentId, selectors: [{ type: 'fixed', value: 'x' }], allowReattestation: true }) };
  const config = parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, AGENT_REQUEST_MAX_SKEW: '60s' });
  const app = createApp(createAppDeps({ config, ca: () => ca, db: env.DB, clock: () => clock.nowMs, nodeAttestors: { fixed: attestor } }));
  return async () => app.request(`${BASE}/agent/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType: 'fixed', payload: {}, csr: toBase64((await makeCsr()).der) }) }, env);
}

describe('concurrent attestations of one agent ID', () => {
  it(`of ${N} join tokens with one preset agent ID used at once, exactly one gets an SVID; the CA signs one`, async () => {
    const id = `spiffe://example.org/spire/agent/node-${uniq()}`;
    const tokens = Array.from({ length: N }, uniq);
    for (const t of tokens) await h.createToken(t, { spiffeId: id });
    const csrs = await Promise.all(tokens.map(() => makeCsr()));
    const signedBefore = ca.signedX509;
    const responses = await Promise.all(tokens.map((token, i) => h.attestRaw({ attestationType: 'join_token', payload: { token }, csr: toBase64(csrs[i]!.der) })));
    expect(statuses(responses)).toEqual([200, ...Array<number>(N - 1).fill(409)]);
    expect(ca.signedX509 - signedBefore).toBe(1);
    for (const r of responses.filter((r) => r.status === 409)) await expectError(r, 409, 'ERR_AGENT_ALREADY_ATTESTED');
    const winner = (await responses.find((r) => r.status === 200)!.json()) as AttestResponse;
    const record = await agents().get(id as SpiffeId);
    expect(record?.serialNumber).toBe(new x509.X509Certificate(fromBase64(winner.svid.certChain[0]!)).serialNumber.replace(/^0+/, ''));
  });

  it('lets an attestor that allows re-attestation re-attest serially (the serial changes), one at a time concurrently', async () => {
    const id = `spiffe://example.org/spire/agent/fixed/${uniq()}` as SpiffeId;
    const attest = reattestingApp(id);
    expect((await attest()).status).toBe(200);
    const first = (await agents().get(id))!.serialNumber;
    expect((await attest()).status).toBe(200);
    const second = (await agents().get(id))!;
    expect(second.serialNumber).not.toBe(first);
    expect(second.nodeSelectors).toEqual([{ type: 'fixed', value: 'x' }]);

    const signedBefore = ca.signedX509;
    const responses = await Promise.all(Array.from({ length: N }, () => attest()));
    const ok = responses.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(1);
    expect(statuses(responses)).toEqual([...Array<number>(ok).fill(200), ...Array<number>(N - ok).fill(409)]);
    expect(ca.signedX509 - signedBefore).toBe(ok);
    expect((await agents().get(id))!.serialNumber).not.toMatch(/^attesting/);
  });

  it('refuses a banned agent ID without signing, also concurrently', async () => {
    const id = `spiffe://example.org/spire/agent/fixed/${uniq()}` as SpiffeId;
    const attest = reattestingApp(id);
    expect((await attest()).status).toBe(200);
    await agents().ban(id, h.nowSeconds());
    const signedBefore = ca.signedX509;
    const responses = await Promise.all(Array.from({ length: 4 }, () => attest()));
    expect(statuses(responses)).toEqual([403, 403, 403, 403]);
    expect(ca.signedX509 - signedBefore).toBe(0);
    expect((await agents().get(id))!.banned).toBe(true);
  });
});

describe('AgentStore attestation claims', () => {
  const store = () => agents();
  const NOW = 1_800_000_000;
  const record = (spiffeId: SpiffeId, serialNumber: string) => ({ spiffeId, attestationType: 't', serialNumber, expiresAt: NOW + 3600, nodeSelectors: [] });
  const newId = () => `spiffe://example.org/spire/agent/t/${uniq()}` as SpiffeId;

  it('claims a new ID once; a release leaves no agent; a completed claim records the SVID', async () => {
    const id = newId();
    const claim = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW);
    expect(claim.claimed).toBe(true);
    expect(await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: true }, NOW)).toEqual({ claimed: false, reason: 'attested' });
    expect((await store().get(id))?.serialNumber).toBe('');
    await store().releaseAttestation(id, claim.claimed ? claim.token : '');
    expect(await store().get(id)).toBeUndefined();
    const again = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW);
    if (!again.claimed) throw new Error('not claimed');
    expect(await store().completeAttestation(again.token, record(id, 'aa'), NOW)).toMatchObject({ serialNumber: 'aa', banned: false });
    expect(await store().completeAttestation(again.token, record(id, 'bb'), NOW)).toBeUndefined();
    expect(await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW)).toEqual({ claimed: false, reason: 'attested' });
  });

  it('keeps the current SVID valid while a re-attestation is in flight and restores it on release', async () => {
    const id = newId();
    await store().upsertAttested(record(id, 'aa'), NOW);
    const claim = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: true }, NOW);
    if (!claim.claimed) throw new Error('not claimed');
    expect(await store().get(id)).toMatchObject({ serialNumber: '', previousSerialNumber: 'aa' });
    await store().releaseAttestation(id, claim.token);
    expect(await store().get(id)).toMatchObject({ serialNumber: 'aa' });
    expect((await store().get(id))?.previousSerialNumber).toBeUndefined();
  });

  it('takes over a claim abandoned for a minute, and the late completion of the abandoned one fails', async () => {
    const id = newId();
    const first = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW);
    if (!first.claimed) throw new Error('not claimed');
    expect((await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW + 59)).claimed).toBe(false);
    const second = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: false }, NOW + 60);
    if (!second.claimed) throw new Error('not claimed');
    expect(await store().completeAttestation(first.token, record(id, 'aa'), NOW + 61)).toBeUndefined();
    expect(await store().completeAttestation(second.token, record(id, 'bb'), NOW + 61)).toMatchObject({ serialNumber: 'bb' });
  });

  it('refuses a banned ID, and a completion after a ban', async () => {
    const id = newId();
    const claim = await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: true }, NOW);
    if (!claim.claimed) throw new Error('not claimed');
    await store().ban(id, NOW);
    expect(await store().completeAttestation(claim.token, record(id, 'aa'), NOW)).toBeUndefined();
    expect(await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: true }, NOW + 3600)).toEqual({ claimed: false, reason: 'banned' });
    await store().evict(id);
    expect(await store().claimAttestation({ spiffeId: id, attestationType: 't', allowReattestation: true }, NOW + 3600)).toEqual({ claimed: false, reason: 'banned' });
  });
});
