// The CA core (ca-core.ts) on the in-memory storage: the same CA as the Durable Object, with no DO around it
// (what an in-process issuer in Node runs). And the two CaStorage implementations agree on the same writes.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../../src/shared/clock.js';
import { planRotation } from '../../../src/shared/ca/rotation.js';
import { unwrap } from '../../../src/shared/result.js';
import { validateJwtSvid } from '../../../src/shared/spiffe/jwt-svid.js';
import { validateX509Svid } from '../../../src/shared/spiffe/x509-svid.js';
import { fromBase64 } from '../../../src/shared/encoding/base64.js';
import { MAX_SIGN_BATCH } from '../../../src/worker/ca/ca-api.js';
import { createCaCore } from '../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage, type CaStorage, type SlotWrite, type StoredSlot } from '../../../src/worker/ca/ca-storage.js';
import { createDoCaStorage } from '../../../src/worker/ca/do-ca-storage.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { parseCaConfig } from '../../../src/worker/config.js';
import { freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const config = parseCaConfig(env);
const ID = `spiffe://${config.trustDomain}/ns/prod/sa/web`;
const CA_TTL_MS = config.caTtlSeconds * 1000;
const der = (b64: string) => fromBase64(b64);

describe('the CA core on the in-memory storage', () => {
  it('creates one key of each kind on first use, publishes them and sets the next rotation check', async () => {
    const storage = createMemoryCaStorage();
    const now = Date.now();
    const core = createCaCore({ storage, config, clock: () => now });
    // concurrent first calls share one rotation: still one key per kind
    const [a, b] = await Promise.all([core.status(), core.status()]);
    expect([a, b]).toEqual([{ ready: true }, { ready: true }]);
    const { slots, sequence } = storage.load();
    expect(slots.map((s) => [s.kind, s.status]).sort()).toEqual([['jwt', 'active'], ['x509', 'active']]);
    expect(sequence).toBeGreaterThan(0);
    expect(storage.alarm).toBeGreaterThan(now);
    const keys = unwrap(await core.getPublishedKeys());
    expect(keys.x509Authorities).toHaveLength(1);
    expect(keys.jwtAuthorities).toHaveLength(1);
    expect(keys.sequence).toBe(sequence);
  });

  it('rotates over two lifetimes from its alarm, everything issued verifying against what is published', async () => {
    const storage = createMemoryCaStorage();
    const t0 = Date.now();
    let now = t0;
    const core = createCaCore({ storage, config, clock: () => now });
    const spki = await subjectSpki();
    const kids = new Set<string>();
    for (; now <= t0 + 2 * CA_TTL_MS + 4 * HOUR_MS; now += 3 * HOUR_MS) {
      await core.alarm();
      const slots = storage.load().slots;
      for (const kind of ['x509', 'jwt'] as const) expect(planRotation(slots.filter((s) => s.kind === kind), now, CA_TTL_MS)).toEqual([]);
      expect(storage.alarm).toBeGreaterThan(now);
      const published = unwrap(await core.getPublishedKeys());
      published.x509Authorities.forEach((a) => kids.add(a));
      const [svid] = await core.signX509Svids([{ spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 3600 }]);
      const chain = unwrap(svid!).certChain.map(der);
      expect((await validateX509Svid(chain, { now, expectedId: ID, roots: published.x509Authorities.map(der) })).ok).toBe(true);
      const jwt = unwrap(await core.signJwtSvid({ spiffeId: ID, audience: ['a'], ttlSeconds: 300 }));
      expect((await validateJwtSvid(jwt.token, published.jwtAuthorities, { audience: 'a', now, trustDomain: config.trustDomain, issuer: config.jwtIssuer })).ok).toBe(true);
    }
    expect(kids.size).toBeGreaterThanOrEqual(3);
  });

  it('starts again from what its storage holds (a restart keeps the CA)', async () => {
    const storage = createMemoryCaStorage();
    const now = Date.now();
    const first = createCaCore({ storage, config, clock: () => now });
    const before = unwrap(await first.getPublishedKeys());
    const again = createCaCore({ storage, config, clock: () => now });
    expect(unwrap(await again.getPublishedKeys())).toEqual(before);
    const [svid] = await again.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 60 }]);
    expect((await validateX509Svid(unwrap(svid!).certChain.map(der), { now, roots: before.x509Authorities.map(der) })).ok).toBe(true);
  });

  it('shares one batch prologue: arrays only, at most MAX_SIGN_BATCH items signed', async () => {
    const core = createCaCore({ storage: createMemoryCaStorage(), config, clock: Date.now });
    const jwt = { spiffeId: ID, audience: ['a'], ttlSeconds: 60 };
    const results = await core.signJwtSvids(Array.from({ length: MAX_SIGN_BATCH + 2 }, () => jwt));
    expect(results.slice(0, MAX_SIGN_BATCH).every((r) => r.ok)).toBe(true);
    expect(results.slice(MAX_SIGN_BATCH)).toEqual([0, 1].map(() => ({ ok: false, error: { code: 'ERR_REQUEST_TOO_LARGE', message: `at most ${MAX_SIGN_BATCH} SVIDs per call` } })));
    for (const call of [core.signJwtSvids.bind(core), core.signX509Svids.bind(core)]) {
      expect(await call('nope' as never)).toEqual([{ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'requests must be an array' } }]);
    }
  });

  it('is not ready, as data, when its keys cannot be made', async () => {
    const core = createCaCore({ storage: createMemoryCaStorage(), config: { ...config, upstreamCa: { certChainPem: 'x', keyPem: 'y' } }, clock: Date.now });
    expect(await core.status()).toEqual({ ready: false });
    expect(await core.getPublishedKeys()).toEqual({ ok: false, error: { code: 'ERR_CA_NOT_READY', message: 'the trust domain CA is not ready' } });
  });
});

function slot(kid: string, kind: StoredSlot['kind'], issuedAt: number): StoredSlot {
  return { kid, kind, status: 'prepared', issuedAt, notAfter: issuedAt + 1000, alg: kind === 'x509' ? 'EC P-256' : 'ES256', ...(kind === 'x509' ? { certDer: new Uint8Array([1, 2]) } : { publicJwk: { kty: 'EC' } }), keyIv: new Uint8Array([3]), keyCiphertext: new Uint8Array([4, 5]) };
}

describe('CaStorage: DO SQLite and memory agree', () => {
  const steps: [SlotWrite, number | undefined][] = [
    [{ op: 'insert', slot: slot('b', 'x509', 10) }, 1],
    [{ op: 'insert', slot: slot('a', 'x509', 10) }, undefined],
    [{ op: 'insert', slot: slot('j', 'jwt', 5) }, 2],
    [{ op: 'activate', kind: 'x509', kid: 'b' }, undefined],
    [{ op: 'activate', kind: 'jwt', kid: 'j' }, undefined],
    [{ op: 'activate', kind: 'x509', kid: 'a' }, 3],
    [{ op: 'retire', kid: 'b' }, 4],
  ];

  // in the future: a past alarm would fire and run the test DO's own CA
  const alarmAt = Date.now() + 86_400_000;
  async function run(storage: CaStorage) {
    const seen = [];
    for (const [write, sequence] of steps) {
      storage.commit(write, sequence);
      seen.push(storage.load());
    }
    await storage.setAlarm(alarmAt);
    return { seen, alarm: await storage.getAlarm() };
  }

  it('loads the same state after every write', async () => {
    const memory = await run(createMemoryCaStorage());
    const { stub } = freshCa();
    const sql = await runInDurableObject(stub, (_i: TrustDomainCa, state) => run(createDoCaStorage(state.storage)));
    expect(sql).toEqual(memory);
    expect(memory.seen.at(-1)!.slots.map((s) => [s.kid, s.status])).toEqual([['j', 'active'], ['a', 'active']]);
  });

  it('memory storage hands out copies', () => {
    const storage = createMemoryCaStorage();
    const s = slot('k', 'jwt', 1);
    storage.commit({ op: 'insert', slot: s });
    s.status = 'old';
    storage.load().slots[0]!.status = 'active';
    expect(storage.load().slots[0]!.status).toBe('prepared');
  });
});
