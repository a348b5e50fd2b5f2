// Moves the CA's clock through two full CA lifetimes (CA_TTL = 24h in wrangler.toml), firing alarms as the
// runtime would, and checks at every step that what is issued verifies against what is published then,
// and that everything issued earlier and not yet expired still verifies (old keys stay published).
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { unwrap } from '../../../src/shared/result.js';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../../src/shared/clock.js';
import { planRotation } from '../../../src/shared/ca/rotation.js';
import type { KeySlot } from '../../../src/shared/ca/key-slot.js';
import { validateJwtSvid } from '../../../src/shared/spiffe/jwt-svid.js';
import { validateX509Svid } from '../../../src/shared/spiffe/x509-svid.js';
import { fromBase64 } from '../../../src/shared/encoding/base64.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { freshCa, setCaClock, subjectSpki } from '../../helpers/workerd/ca.js';

const ID = `spiffe://${env.TRUST_DOMAIN}/ns/prod/sa/web`;
const CA_TTL_MS = 24 * HOUR_MS;
const der = (b64: string) => fromBase64(b64);

type Row = { kid: string; kind: string; status: KeySlot['status']; issued_at: number; not_after: number };

async function storedSlots(stub: DurableObjectStub<TrustDomainCa>): Promise<Row[]> {
  return runInDurableObject(stub, (_i: TrustDomainCa, state) => state.storage.sql.exec<Row>('SELECT kid, kind, status, issued_at, not_after FROM ca_key_slots').toArray());
}

describe('CA rotation over two lifetimes', () => {
  it('keeps every issued SVID and JWT-SVID verifiable against the keys published at each moment', async () => {
    const { stub, api } = freshCa();
    // Real time as the start: alarms scheduled in the real past would fire on their own during the test.
    const t0 = Date.now();
    let now = t0;
    await setCaClock(stub, () => now);
    expect(await api.status()).toEqual({ ready: true });

    const issued: { chain: Uint8Array[]; token: string; expiresAt: number }[] = [];
    const authoritiesSeen = new Set<string>();
    const jwtKidsSeen = new Set<string>();
    let lastSequence = 0;
    const spki = await subjectSpki();

    for (now = t0; now <= t0 + 2 * CA_TTL_MS + 4 * HOUR_MS; now += HOUR_MS) {
      // The alarm alone keeps the slots current: nothing is due after it ran (no lazy rotation involved).
      await runDurableObjectAlarm(stub);
      const rows = await storedSlots(stub);
      for (const kind of ['x509', 'jwt']) {
        const slots = rows.filter((r) => r.kind === kind).map((r) => ({ kid: r.kid, status: r.status, issuedAt: r.issued_at, notAfter: r.not_after }));
        expect(planRotation(slots, now, CA_TTL_MS), `${kind} at +${(now - t0) / HOUR_MS}h`).toEqual([]);
        expect(slots.filter((s) => s.status === 'active')).toHaveLength(1);
      }
      const alarm = await runInDurableObject(stub, (_i: TrustDomainCa, state) => state.storage.getAlarm());
      expect(alarm).toBeGreaterThan(now);

      const published = unwrap(await api.getPublishedKeys());
      expect(published.sequence).toBeGreaterThanOrEqual(lastSequence);
      lastSequence = published.sequence;
      published.x509Authorities.forEach((a) => authoritiesSeen.add(a));
      published.jwtAuthorities.forEach((k) => jwtKidsSeen.add(k.kid));
      const roots = published.x509Authorities.map(der);

      const [svid] = await api.signX509Svids([{ spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 6 * 3600 }]);
      const jwt = await api.signJwtSvid({ spiffeId: ID, audience: ['reports'], ttlSeconds: 6 * 3600 });
      if (!svid!.ok || !jwt.ok) throw new Error(`issuance failed at +${(now - t0) / HOUR_MS}h`);
      issued.push({ chain: svid!.value.certChain.map(der), token: jwt.value.token, expiresAt: Math.min(svid!.value.expiresAt, jwt.value.expiresAt) * 1000 });

      for (const [i, item] of issued.entries()) {
        if (now >= item.expiresAt) continue;
        const x = await validateX509Svid(item.chain, { now, expectedId: ID, roots });
        expect(x.ok, `SVID #${i} at +${(now - t0) / HOUR_MS}h: ${JSON.stringify(x)}`).toBe(true);
        const j = await validateJwtSvid(item.token, published.jwtAuthorities, { audience: 'reports', now });
        expect(j.ok, `JWT #${i} at +${(now - t0) / HOUR_MS}h: ${JSON.stringify(j)}`).toBe(true);
      }
    }
    // A new key every half lifetime (SPIRE cadence): at least 4 CA certs and 4 JWT keys over two lifetimes.
    expect(authoritiesSeen.size).toBeGreaterThanOrEqual(4);
    expect(jwtKidsSeen.size).toBeGreaterThanOrEqual(4);
    expect(lastSequence).toBeGreaterThanOrEqual(2 * 4);
  });

  it('recovers when alarms were missed for longer than a lifetime', async () => {
    const { stub, api } = freshCa();
    let now = Date.now();
    await setCaClock(stub, () => now);
    const first = unwrap(await api.getPublishedKeys());
    now += 3 * CA_TTL_MS;
    const later = unwrap(await api.getPublishedKeys());
    expect(later.x509Authorities).toHaveLength(1);
    expect(later.x509Authorities[0]).not.toBe(first.x509Authorities[0]);
    expect(later.sequence).toBeGreaterThan(first.sequence);
    const [svid] = await api.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 60 }]);
    expect(svid!.ok && (await validateX509Svid(svid!.value.certChain.map(der), { now, roots: later.x509Authorities.map(der) })).ok).toBe(true);
  });
});
