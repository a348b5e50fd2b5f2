// The CA's own counters (src/worker/ca/metrics.ts) on the core over memory and DO SQLite storage: key
// steps by kind (first use, prepare, activate, taint, revoke), signatures, rate-limit refusals, the same
// counts from a core re-created over the same storage, and the Worker's samples limited to its families.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { unwrap } from '../../../src/shared/result.js';
import { histogramObservation, ISSUER_METRICS, type MetricSample } from '../../../src/shared/telemetry/issuer-names.js';
import { createCaCore, type CaCore } from '../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage, type CaStorage } from '../../../src/worker/ca/ca-storage.js';
import { createDoCaStorage } from '../../../src/worker/ca/do-ca-storage.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { parseCaConfig } from '../../../src/worker/config.js';
import { freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const config = parseCaConfig(env);
const M = ISSUER_METRICS;
const AGENT = `spiffe://${config.trustDomain}/spire/agent/join_token/m`;

async function valueOf(core: CaCore, name: string, labels: Record<string, string> = {}): Promise<number> {
  const samples = unwrap(await core.getMetrics());
  return samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort())).reduce((n, s) => n + s.value, 0);
}

async function exercise(storage: () => CaStorage): Promise<void> {
  const core = createCaCore({ storage: storage(), config, clock: Date.now, rateLimits: { attestation: { ratePerSecond: 0.001, burst: 1 }, x509Signing: { ratePerSecond: 0.001, burst: 3 }, jwtSigning: { ratePerSecond: 0, burst: 0 } } });
  const spki = await subjectSpki();
  const x = (n: number) => Array.from({ length: n }, (_, i) => ({ spiffeId: `${AGENT}/w${i}`, publicKeySpki: spki, dnsNames: [], ttlSeconds: 60 }));
  expect((await core.signX509Svids(x(3), AGENT)).every((r) => r.ok)).toBe(true);
  expect((await core.signX509Svids(x(1), AGENT))[0]).toMatchObject({ ok: false, error: { code: 'ERR_RATE_LIMITED' } });
  // a refused item is not a signature: one bad SPIFFE ID in a batch of 2
  const mixed = await core.signX509Svids([...x(1), { spiffeId: 'spiffe://elsewhere.test/w', publicKeySpki: spki, dnsNames: [], ttlSeconds: 60 }]);
  expect(mixed.map((r) => r.ok)).toEqual([true, false]);
  expect((await core.signJwtSvids([{ spiffeId: `${AGENT}/w`, audience: ['a'], ttlSeconds: 60 }], AGENT))[0]!.ok).toBe(true);
  expect((await core.admitAttestation('198.51.100.1')).ok).toBe(true);
  expect((await core.admitAttestation('198.51.100.1')).ok).toBe(false);
  const prepared = unwrap(await core.manageAuthority({ kind: 'jwt', op: 'prepare' }));
  if (prepared.op === 'show') throw new Error('show');
  unwrap(await core.manageAuthority({ kind: 'jwt', op: 'activate', authorityId: prepared.authority.authorityId }));

  const check = async (c: CaCore) => {
    expect(await valueOf(c, M.x509SvidSigned.name)).toBe(4);
    expect(await valueOf(c, M.jwtSvidSigned.name)).toBe(1);
    expect(await valueOf(c, M.x509CaPrepare.name)).toBe(1);
    expect(await valueOf(c, M.x509CaActivate.name)).toBe(1);
    expect(await valueOf(c, M.jwtKeyPrepare.name)).toBe(2);
    expect(await valueOf(c, M.jwtKeyActivate.name)).toBe(2);
    expect(await valueOf(c, M.rateLimitExceeded.name, { limit: 'x509Signing' })).toBe(1);
    expect(await valueOf(c, M.rateLimitExceeded.name, { limit: 'attestation' })).toBe(1);
    const ttl = await valueOf(c, M.x509CaTtl.name, { trust_domain_id: config.trustDomain });
    expect(ttl).toBeGreaterThan(config.caTtlSeconds - 60);
    expect(ttl).toBeLessThanOrEqual(config.caTtlSeconds);
  };
  await check(core);
  await check(createCaCore({ storage: storage(), config, clock: Date.now }));
}

describe('CA metrics', () => {
  it('counts key steps, signatures and refusals in memory storage, read again by a new core', async () => {
    const storage = createMemoryCaStorage();
    await exercise(() => storage);
  });

  it('counts them in DO SQLite (ca_metrics), read again over the same storage', async () => {
    const { stub } = freshCa();
    await runInDurableObject(stub, async (_ca: TrustDomainCa, state) => {
      await exercise(() => createDoCaStorage(state.storage));
    });
  });

  it("takes from the Worker only the agent API and federation families, with their labels", async () => {
    const core = createCaCore({ storage: createMemoryCaStorage(), config, clock: Date.now });
    const calls = M.rpc.sync.calls;
    const good: MetricSample[] = [{ name: calls.name, labels: { status: 'OK' }, value: 2 }, ...histogramObservation(M.rpc.sync.latency, { status: 'OK' }, 7)];
    expect(await core.recordTelemetry(good)).toEqual({ ok: true, value: true });
    expect(await core.recordTelemetry(good)).toEqual({ ok: true, value: true });
    expect(await core.recordTelemetry([{ name: M.federatedBundleUpdate.name, labels: { trust_domain_id: `${'a'.repeat(251)}.org` }, value: 1 }])).toEqual({ ok: true, value: true });
    expect(await valueOf(core, calls.name, { status: 'OK' })).toBe(4);
    expect(await valueOf(core, `${M.rpc.sync.latency.name}_sum`, { status: 'OK' })).toBe(14);
    for (const bad of [
      [{ name: M.x509SvidSigned.name, labels: {}, value: 1 }],
      [{ name: 'spire_server_made_up', labels: {}, value: 1 }],
      [{ name: calls.name, labels: { status: 'OK', agent: 'x' }, value: 1 }],
      [{ name: calls.name, labels: { status: 'OK' }, value: -1 }],
      [{ name: calls.name, labels: { status: 'OK' }, value: Number.NaN }],
      [{ name: calls.name, labels: { le: '1' }, value: 1 }],
      [{ name: M.federatedBundleUpdate.name, labels: { trust_domain_id: 'x'.repeat(256) }, value: 1 }],
      'not an array',
    ]) {
      expect(await core.recordTelemetry(bad as MetricSample[])).toMatchObject({ ok: false, error: { code: 'ERR_BAD_REQUEST' } });
    }
    expect(await valueOf(core, M.x509SvidSigned.name)).toBe(0);
    expect(await valueOf(core, calls.name, { status: 'OK' })).toBe(4);
  });
});
