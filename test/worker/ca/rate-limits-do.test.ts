// The rate limits in the real TrustDomainCa Durable Object: RATE_LIMITS read from the object's env, buckets in
// its SQLite storage (ca_rate_buckets), and the counts still there after the object restarts.
import { abortAllDurableObjects, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { caNamed, freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const RATE_LIMITS = JSON.stringify({ attestation: { ratePerSecond: 0.01, burst: 2 }, x509Signing: { ratePerSecond: 1, burst: 256 }, jwtSigning: { ratePerSecond: 0 } });
const AGENT = `spiffe://${env.TRUST_DOMAIN}/spire/agent/join_token/noisy`;
const OTHER = `spiffe://${env.TRUST_DOMAIN}/spire/agent/join_token/quiet`;

/** Gives the object RATE_LIMITS before its first call (the core reads its config then). */
async function withLimits(stub: DurableObjectStub<TrustDomainCa>): Promise<void> {
  await runInDurableObject(stub, (instance: TrustDomainCa) => {
    (instance as unknown as { env: Record<string, unknown> }).env = { ...env, RATE_LIMITS };
  });
}

describe('TrustDomainCa rate limits', () => {
  it('counts attestation attempts per source and signing per caller in its storage, across a restart', async () => {
    const { name, stub, api } = freshCa();
    await withLimits(stub);
    expect(await api.admitAttestation('203.0.113.7')).toEqual({ ok: true, value: true });
    expect(await api.admitAttestation('203.0.113.7')).toEqual({ ok: true, value: true });
    expect(await api.admitAttestation('203.0.113.7')).toEqual({ ok: false, error: { code: 'ERR_RATE_LIMITED', message: 'node attestation rate limit exceeded; retry after 100s', retryAfterSeconds: 100 } });
    expect((await api.admitAttestation('203.0.113.8')).ok).toBe(true);

    const spki = await subjectSpki();
    const batch = (n: number, id: string) => Array.from({ length: n }, (_, i) => ({ spiffeId: `${id}/w${i}`, publicKeySpki: spki, dnsNames: [], ttlSeconds: 60 }));
    const signed = await api.signX509Svids(batch(250, AGENT), AGENT);
    expect(signed.every((r) => r.ok)).toBe(true);
    const refused = await api.signX509Svids(batch(10, AGENT), AGENT);
    expect(refused.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(Array(10).fill('ERR_RATE_LIMITED'));
    expect(refused[0]).toMatchObject({ error: { retryAfterSeconds: expect.any(Number) } });
    expect((await api.signX509Svids(batch(10, OTHER), OTHER)).every((r) => r.ok)).toBe(true);
    // no caller (the agent's own SVID at attestation) and a limit of 0 (JWT here: 200 + 200 > 256) are not counted
    expect((await api.signX509Svids(batch(10, AGENT))).every((r) => r.ok)).toBe(true);
    const jwts = Array.from({ length: 200 }, () => ({ spiffeId: `${AGENT}/w`, audience: ['a'], ttlSeconds: 60 }));
    for (let i = 0; i < 2; i++) expect((await api.signJwtSvids(jwts, AGENT)).every((r) => r.ok)).toBe(true);

    const rows = await runInDurableObject(stub, (_i: TrustDomainCa, state) => state.storage.sql.exec<{ kind: string; key: string }>('SELECT kind, key FROM ca_rate_buckets ORDER BY kind, key').toArray());
    expect(rows).toEqual([
      { kind: 'attestation', key: '203.0.113.7' },
      { kind: 'attestation', key: '203.0.113.8' },
      { kind: 'x509Signing', key: AGENT },
      { kind: 'x509Signing', key: OTHER },
    ]);

    await abortAllDurableObjects();
    const restarted = caNamed(name);
    await withLimits(restarted.stub);
    expect(await restarted.api.admitAttestation('203.0.113.7')).toMatchObject({ ok: false, error: { code: 'ERR_RATE_LIMITED' } });
    expect((await restarted.api.admitAttestation('203.0.113.9')).ok).toBe(true);
    expect((await restarted.api.signX509Svids(batch(10, AGENT), AGENT))[0]).toMatchObject({ ok: false, error: { code: 'ERR_RATE_LIMITED' } });
    expect((await restarted.api.signX509Svids(batch(1, OTHER), OTHER))[0]!.ok).toBe(true);
  });

  it('is not ready with a RATE_LIMITS it cannot parse (the Worker refuses it at start too)', async () => {
    const { stub, api } = freshCa();
    await runInDurableObject(stub, (instance: TrustDomainCa) => {
      (instance as unknown as { env: Record<string, unknown> }).env = { ...env, RATE_LIMITS: '{"x509Signing":{"ratePerSecond":500,"burst":10}}' };
    });
    expect(await api.status()).toEqual({ ready: false });
    expect(await api.admitAttestation('203.0.113.7')).toMatchObject({ ok: false, error: { code: 'ERR_CA_NOT_READY' } });
  });
});
