import { decodeJwt } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JWT_BATCH_MAX } from '../../src/agent/cache/jwt-batcher.js';
import { syncOnce } from '../../src/agent/cache/sync.js';
import { certificateMatchesKey, importPkcs8 } from '../../src/agent/keys.js';
import { silentLogger } from '../../src/agent/log.js';
import { runRotator } from '../../src/agent/rotator.js';
import type { JwtSvidsRequest } from '../../src/shared/agent-api.js';
import { WispError } from '../../src/shared/errors.js';
import type { TrustDomain } from '../../src/shared/spiffe/id.js';
import { TTL, useAgentHarness, type Harness } from '../helpers/node/agent/agent-harness.js';
import { foreignCaBundle } from '../helpers/node/agent/test-issuer.js';

const UID = { type: 'unix', value: 'uid:1000' };
const GID = { type: 'unix', value: 'gid:50' };
const log = silentLogger();
const createHarness = useAgentHarness();

let h: Harness;
let notified: number;
const sync = () => syncOnce({ client: h.client, cache: h.cache, clock: h.clock.fn, log, onBundleChanged: (b) => h.dataDir.saveBundle(b) });

beforeEach(async () => {
  h = await createHarness();
  await h.addEntry('e-web', '/web', [UID]);
  await h.addEntry('e-db', '/db', [UID, GID]);
  await h.identity.start();
  notified = 0;
  h.cache.subscribe(() => notified++);
});
afterEach(() => h.close());

describe('sync loop against the real issuer (in process)', () => {
  it('first sync issues SVIDs with keys generated locally, and serves them by selectors', async () => {
    expect(h.cache.isReady()).toBe(false);
    const out = await sync();
    expect(out).toEqual({ entriesChanged: true, bundleChanged: true, issued: 2 });
    expect(h.cache.isReady()).toBe(true);
    expect(notified).toBe(1);

    expect(h.cache.x509SvidsFor([UID]).map((s) => s.spiffeId)).toEqual(['spiffe://example.org/web']);
    const both = h.cache.x509SvidsFor([UID, GID, { type: 'unix', value: 'pid:7' }]);
    expect(both.map((s) => s.spiffeId).sort()).toEqual(['spiffe://example.org/db', 'spiffe://example.org/web']);
    expect(h.cache.x509SvidsFor([GID])).toEqual([]);
    for (const s of both) expect(certificateMatchesKey(s.certChain[0]!, importPkcs8(s.privateKey))).toBe(true);

    // the CSRs carried public keys only; every signed call passed the issuer's agent-proof check
    const csrCall = h.issuer.callsTo('/x509-svids')[0]!;
    expect(JSON.stringify(csrCall.body)).not.toMatch(/PRIVATE/);
    expect(csrCall).toMatchObject({ status: 200, agentId: `spiffe://example.org/spire/agent/join_token/${h.joinToken}` });
    // the issuer's published bundle: one CA and one JWT key
    const published = await h.issuer.bundle();
    expect(await h.issuer.x509Authorities()).toHaveLength(1);
    expect(h.cache.bundles().own.x509Authorities).toEqual(await h.issuer.x509Authorities());
    const jwtKids = published.keys.filter((k) => k.use === 'jwt-svid').map((k) => k.kid);
    expect(jwtKids).toHaveLength(1);
    expect(h.cache.bundles().own.jwtAuthorities.map((k) => k.kid)).toEqual(jwtKids);
  });

  it('an unchanged sync sends the last revision and bundle sequence, gets nothing new, signs nothing', async () => {
    await sync();
    const before = h.issuer.callsTo('/x509-svids').length;
    notified = 0;
    const out = await sync();
    expect(out).toEqual({ entriesChanged: false, bundleChanged: false, issued: 0 });
    expect(h.issuer.callsTo('/sync').at(-1)!.body).toEqual({ revision: await h.issuer.revision(), bundleSequence: (await h.issuer.bundle()).spiffe_sequence });
    expect(h.issuer.callsTo('/x509-svids').length).toBe(before);
    expect(notified).toBe(0);
  });

  it('drops the SVID of a deleted entry and notifies subscribers', async () => {
    await sync();
    await h.issuer.deleteEntry('e-web');
    notified = 0;
    const out = await sync();
    expect(out.entriesChanged).toBe(true);
    expect(notified).toBe(1);
    expect(h.cache.x509SvidsFor([UID, GID]).map((s) => s.entryId)).toEqual(['e-db']);
    expect(h.cache.identitiesFor([UID]).length).toBe(0);
  });

  it('renews each SVID at half of its lifetime, not before', async () => {
    await sync();
    const first = h.cache.x509SvidsFor([UID])[0]!;
    const ttlMs = TTL.x509 * 1000;
    h.clock.advance(ttlMs / 2 - 1000);
    expect((await sync()).issued).toBe(0);
    h.clock.advance(1000);
    notified = 0;
    expect((await sync()).issued).toBe(2);
    expect(notified).toBe(1);
    const renewed = h.cache.x509SvidsFor([UID])[0]!;
    expect(renewed.certChain[0]).not.toEqual(first.certChain[0]);
    expect(renewed.privateKey).not.toEqual(first.privateKey);
    expect(renewed.expiresAt - first.expiresAt).toBe(ttlMs / 2 / 1000);
  });

  it('re-issues an SVID when its entry is updated', async () => {
    await sync();
    await h.issuer.updateEntry('e-web', '/web', [UID], { x509SvidTtl: TTL.x509, hint: 'external' });
    expect((await sync()).issued).toBe(1);
    expect(h.cache.x509SvidsFor([UID])[0]!.hint).toBe('external');
  });

  it('follows bundle changes (persisting them) and federated bundles', async () => {
    await sync();
    const before = await h.issuer.bundle();
    // a real rotation: the CA's alarm at half its life prepares (publishes) its next X.509 CA and JWT key
    await h.fireCaAlarm();
    const rotated = await h.issuer.bundle();
    expect(rotated.spiffe_sequence).toBeGreaterThan(before.spiffe_sequence!);
    notified = 0;
    const out = await sync();
    expect(out.bundleChanged).toBe(true);
    expect(notified).toBe(1);
    expect(h.cache.bundles().own.x509Authorities.length).toBe(2);
    expect((await h.dataDir.load()).bundle?.spiffe_sequence).toBe(rotated.spiffe_sequence);

    // a foreign bundle (of a real CA of partner.example) reaches the agent once an entry federates with it
    await h.issuer.putForeignBundle('partner.example', await foreignCaBundle('partner.example', h.clock.fn));
    await h.issuer.updateEntry('e-web', '/web', [UID], { x509SvidTtl: TTL.x509, federatesWith: ['partner.example' as TrustDomain] });
    expect((await sync()).bundleChanged).toBe(true);
    expect([...h.cache.bundles().federated.keys()]).toEqual(['partner.example']);
    expect((await sync()).bundleChanged).toBe(false);
  });

  it('keeps the previous bundle when the issuer sends a malformed one', async () => {
    await sync();
    const before = h.cache.bundles().own;
    const sequence = h.cache.syncState().bundleSequence;
    expect(sequence).toBe((await h.issuer.bundle()).spiffe_sequence);
    const changed = await h.cache.applySync({ revision: await h.issuer.revision(), bundle: { keys: [{ kty: 'EC', use: 'x509-svid', x5c: ['bm90IGEgY2VydA=='] }], spiffe_sequence: 9 } });
    expect(changed.bundle).toBe(false);
    expect(h.cache.bundles().own).toBe(before);
    expect(h.cache.syncState().bundleSequence).toBe(sequence);
  });

  it('while the issuer is down: serves cached SVIDs until they expire, backoff grows, then recovers', async () => {
    const controller = new AbortController();
    const delays: number[] = [];
    let served = 0;
    const run = runRotator(
      {
        identity: h.identity,
        cache: h.cache,
        client: h.client,
        dataDir: h.dataDir,
        clock: h.clock.fn,
        random: () => 0.99,
        intervalMs: 5_000,
        log,
        sleep: async (ms) => {
          delays.push(ms);
          h.clock.advance(ms);
          if (delays.length === 1) h.issuer.down = true; // after the first good round
          if (h.issuer.down) served = h.cache.x509SvidsFor([UID]).length;
          if (delays.length === 7) h.issuer.down = false;
          if (delays.length === 9) controller.abort();
        },
      },
      controller.signal,
    );
    await run;
    expect(delays[0]).toBe(5_000);
    const backoff = delays.slice(1, 7);
    for (let i = 1; i < backoff.length; i++) expect(backoff[i]!).toBeGreaterThan(backoff[i - 1]!);
    expect(served).toBe(1);
    expect(delays.slice(7)).toEqual([5_000, 5_000]); // back to the normal interval after recovery
  });

  it('stops serving an SVID once it expires while the issuer is unreachable, and says so to subscribers', async () => {
    await sync();
    h.issuer.down = true;
    h.clock.advance(TTL.x509 * 1000);
    expect(h.cache.x509SvidsFor([UID])).toEqual([]);
    const controller = new AbortController();
    notified = 0;
    await runRotator(
      { identity: h.identity, cache: h.cache, client: h.client, dataDir: h.dataDir, clock: h.clock.fn, random: () => 0, intervalMs: 5_000, log, sleep: async () => controller.abort() },
      controller.signal,
    );
    expect(notified).toBe(1);
  });

  it('reports an unreachable issuer as ERR_UNAVAILABLE', async () => {
    h.issuer.down = true;
    await expect(sync()).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(h.cache.isReady()).toBe(false);
  });
});

describe('JWT-SVIDs', () => {
  it('reuses a JWT-SVID while more than half its lifetime remains and coalesces identical requests', async () => {
    await sync();
    const [a, b] = await Promise.all([h.cache.fetchJwtSvid('e-web', ['aud-1']), h.cache.fetchJwtSvid('e-web', ['aud-1'])]);
    expect(a.token).toBe(b.token);
    expect(h.issuer.callsTo('/jwt-svids').length).toBe(1);
    expect(a.spiffeId).toBe('spiffe://example.org/web');

    h.clock.advance((TTL.jwt * 1000) / 2 - 1000);
    expect((await h.cache.fetchJwtSvid('e-web', ['aud-1'])).token).toBe(a.token);
    await h.cache.fetchJwtSvid('e-web', ['aud-2']);
    expect(h.issuer.callsTo('/jwt-svids').length).toBe(2);
    h.clock.advance(1000);
    expect((await h.cache.fetchJwtSvid('e-web', ['aud-1'])).token).not.toBe(a.token);
  });

  it('coalesces concurrent requests for different entries and audiences into one /jwt-svids batch', async () => {
    await sync();
    const asked = [
      ['e-web', ['aud-1']],
      ['e-db', ['aud-1']],
      ['e-web', ['aud-2', 'aud-3']],
      ['e-web', ['aud-3', 'aud-2', 'aud-2']], // the same audience set: merged before batching
      ['e-db', ['aud-9']],
    ] as const;
    const got = await Promise.all(asked.map(([id, aud]) => h.cache.fetchJwtSvid(id, [...aud])));
    const calls = h.issuer.callsTo('/jwt-svids');
    expect(calls.length).toBe(1);
    expect((calls[0]!.body as JwtSvidsRequest).requests).toEqual([
      { entryId: 'e-web', audience: ['aud-1'] },
      { entryId: 'e-db', audience: ['aud-1'] },
      { entryId: 'e-web', audience: ['aud-2', 'aud-3'] },
      { entryId: 'e-db', audience: ['aud-9'] },
    ]);
    // each caller gets the token for its own entry and audiences
    got.forEach((svid, i) => {
      const [id, aud] = asked[i]!;
      const claims = decodeJwt(svid.token);
      expect(claims.sub).toBe(`spiffe://example.org/${id === 'e-web' ? 'web' : 'db'}`);
      expect([claims.aud].flat().sort()).toEqual([...new Set(aud)].sort());
    });
    expect(got[3]!.token).toBe(got[2]!.token);
    // all of them are cached: asking again calls nobody
    await Promise.all(asked.map(([id, aud]) => h.cache.fetchJwtSvid(id, [...aud])));
    expect(h.issuer.callsTo('/jwt-svids').length).toBe(1);
  });

  it(`sends a batch at once when it reaches ${JWT_BATCH_MAX} requests`, async () => {
    await sync();
    const n = JWT_BATCH_MAX * 2 + 50;
    const got = await Promise.all(Array.from({ length: n }, (_, i) => h.cache.fetchJwtSvid(i % 2 ? 'e-web' : 'e-db', [`aud-${i}`])));
    expect(new Set(got.map((s) => s.token)).size).toBe(n);
    expect(h.issuer.callsTo('/jwt-svids').map((c) => (c.body as JwtSvidsRequest).requests.length)).toEqual([JWT_BATCH_MAX, JWT_BATCH_MAX, 50]);
  });

  it('requests arriving while a batch is at the issuer go out in the next batch', async () => {
    await sync();
    h.issuer.transport.delayMs = (path) => (path === '/agent/v1/jwt-svids' ? 100 : 0); // a slow issuer
    const first = Promise.all([h.cache.fetchJwtSvid('e-web', ['a']), h.cache.fetchJwtSvid('e-db', ['a'])]);
    await new Promise((r) => setTimeout(r, 30)); // the first batch is out, not answered
    const second = Promise.all([h.cache.fetchJwtSvid('e-web', ['b']), h.cache.fetchJwtSvid('e-db', ['b']), h.cache.fetchJwtSvid('e-web', ['a'])]);
    const [a, b] = await Promise.all([first, second]);
    expect(b[2]!.token).toBe(a[0]!.token); // identical to one in flight: joined it
    expect(h.issuer.callsTo('/jwt-svids').map((c) => (c.body as JwtSvidsRequest).requests.length)).toEqual([2, 2]);
  });

  it('an entry the issuer refuses fails only its own request in a batch', async () => {
    await sync();
    await h.issuer.deleteEntry('e-db'); // the agent has not synced: it still holds e-db
    const results = await Promise.allSettled([h.cache.fetchJwtSvid('e-web', ['a']), h.cache.fetchJwtSvid('e-db', ['a']), h.cache.fetchJwtSvid('e-web', ['b'])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_NO_IDENTITY' });
    // the batch of 3 was refused, then each request went alone
    expect(h.issuer.callsTo('/jwt-svids').map((c) => (c.body as JwtSvidsRequest).requests.length)).toEqual([3, 1, 1, 1]);
  });

  it('an unreachable issuer fails every request of the batch, and nothing is cached', async () => {
    await sync();
    h.issuer.down = true;
    const results = await Promise.allSettled([h.cache.fetchJwtSvid('e-web', ['a']), h.cache.fetchJwtSvid('e-db', ['a'])]);
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ERR_UNAVAILABLE' } });
    h.issuer.down = false;
    await Promise.all([h.cache.fetchJwtSvid('e-web', ['a']), h.cache.fetchJwtSvid('e-db', ['a'])]);
    expect(h.issuer.callsTo('/jwt-svids').map((c) => (c.body as JwtSvidsRequest).requests.length)).toEqual([2]);
  });

  it('refuses entries the agent does not hold', async () => {
    await sync();
    await expect(h.cache.fetchJwtSvid('nope', ['a'])).rejects.toBeInstanceOf(WispError);
    await expect(h.cache.fetchJwtSvid('nope', ['a'])).rejects.toMatchObject({ code: 'ERR_NO_IDENTITY' });
  });
});

