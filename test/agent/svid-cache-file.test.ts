// The workload SVID cache on disk: a restarted agent serves cached SVIDs before (and without) reaching
// the issuer; expired ones are not served; a corrupt file is ignored with a warning; writes are coalesced.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { runAgent } from '../../src/agent/agent.js';
import { CACHE_FILE_PART_CHARS, createCachePersister, encodeCacheFile, encodeCacheFileParts, loadSvidCacheFile } from '../../src/agent/cache/cache-file.js';
import { SvidCache } from '../../src/agent/cache/svid-cache.js';
import { syncOnce } from '../../src/agent/cache/sync.js';
import { fetchX509, healthcheck, type ApiCommandOptions } from '../../src/agent/cli/api.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { DATA_FILES, openDataDir } from '../../src/agent/data-dir.js';
import { toBase64 } from '../../src/shared/encoding/base64.js';
import { exportPkcs8, generateKeyPair } from '../../src/agent/keys.js';
import { silentLogger, type Logger } from '../../src/agent/log.js';
import { TRUST_DOMAIN, TTL, useAgentHarness, type Harness } from '../helpers/node/agent/agent-harness.js';
import { startAgentTestIssuer } from '../helpers/node/agent/test-issuer.js';
import type { SpiffeId } from '../../src/shared/spiffe/id.js';
import { makeEntry } from '../helpers/shared/entry.js';
import { until } from '../helpers/node/agent/running-agent.js';

const UID = { type: 'unix', value: 'uid:1000' };
const GID = { type: 'unix', value: 'gid:50' };

const createHarness = useAgentHarness();
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function capturingLogger(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { lines, log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) }) };
}

/** The agent's wiring of cache + persister (agent.ts), over the harness; `writes` counts file writes. */
function wireCache(h: Harness, client: Harness['client'], agentId: () => string, log: Logger = silentLogger()) {
  const cache = new SvidCache({ trustDomain: TRUST_DOMAIN, clock: h.clock.fn, jwt: client, log, random: () => 0 });
  const counter = { writes: 0 };
  const persister = createCachePersister({
    write: async (text) => {
      counter.writes++;
      await h.dataDir.writeSvidCache(text);
    },
    encode: () => encodeCacheFileParts(cache.snapshot(), { trustDomain: TRUST_DOMAIN, agentId: agentId() }, h.clock.now),
    log,
    delayMs: 60_000, // only flush() writes in these tests, so counts are exact
  });
  cache.onStateChange(() => persister.schedule());
  return { cache, persister, counter };
}

/** First run: attest, sync two entries, persist. Returns the harness and what was served. */
async function firstRun() {
  const h = await createHarness();
  stops.push(() => h.close());
  await h.addEntry('e-web', '/web', [UID]);
  await h.addEntry('e-db', '/db', [UID, GID]);
  await h.identity.start();
  const first = wireCache(h, h.client, () => h.identity.current()!.spiffeId);
  await syncOnce({ client: h.client, cache: first.cache, clock: h.clock.fn, log: silentLogger() });
  await first.persister.flush();
  return { h, first };
}

/** A restarted agent: identity from the data dir, a fresh cache loaded from the cache file. */
async function restart(h: Harness, log: Logger = silentLogger()) {
  const { identity, client } = await h.restart(undefined);
  const { svid, bundle } = await identity.start();
  const wired = wireCache(h, client, () => identity.current()!.spiffeId, log);
  if (bundle) await wired.cache.setBundle(bundle);
  const loaded = await loadSvidCacheFile({ dataDir: h.dataDir, cache: wired.cache, trustDomain: TRUST_DOMAIN, agentId: svid.spiffeId, log });
  return { ...wired, client, loaded };
}

describe('workload SVID cache file', () => {
  it('holds entries, chains, PKCS#8 keys, expiry, revision and bundle in one 0600 file; a burst of changes is one write', async () => {
    const { h, first } = await firstRun();
    expect(first.counter.writes).toBe(1); // entries, bundle, revision and two SVIDs changed in that sync
    const path = join(h.dataDirPath, DATA_FILES.SVID_CACHE);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { revision: string; bundle: { spiffe_sequence: number }; entries: Array<{ entry: { id: string }; svid: { privateKey: string; notAfter: number } }> };
    expect(file.revision).toBe(await h.issuer.revision());
    expect(file.bundle.spiffe_sequence).toBe((await h.issuer.bundle()).spiffe_sequence);
    expect(file.entries.map((e) => e.entry.id).sort()).toEqual(['e-db', 'e-web']);
    const web = first.cache.x509SvidsFor([UID])[0]!;
    expect(file.entries.find((e) => e.entry.id === 'e-web')!.svid.privateKey).toBe(toBase64(web.privateKey));
    expect(file.entries[0]!.svid.notAfter).toBe(h.clock.now + TTL.x509 * 1000);

    for (let i = 0; i < 100; i++) first.persister.schedule();
    await Promise.all([first.persister.flush(), first.persister.flush()]);
    expect(first.counter.writes).toBe(2);
    await first.persister.flush(); // nothing pending
    expect(first.counter.writes).toBe(2);
  });

  it('restart with the issuer down: ready at once, serving the cached SVIDs (same certificates and keys)', async () => {
    const { h, first } = await firstRun();
    const before = first.cache.x509SvidsFor([UID, GID]);
    const authorities = await h.issuer.x509Authorities();
    expect(authorities).toHaveLength(1);
    h.issuer.down = true;
    h.clock.advance(60_000);
    const again = await restart(h);
    expect(again.loaded).toEqual({ served: 2, expired: 0 });
    expect(again.cache.isReady()).toBe(true);
    const served = again.cache.x509SvidsFor([UID, GID]);
    expect(served.map((s) => [s.entryId, s.certChain, s.privateKey])).toEqual(before.map((s) => [s.entryId, s.certChain, s.privateKey]));
    expect(again.cache.bundles().own.x509Authorities).toEqual(authorities);
    // the first sync fails; the cache keeps serving
    await expect(syncOnce({ client: again.client, cache: again.cache, clock: h.clock.fn, log: silentLogger() })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(again.cache.x509SvidsFor([UID]).length).toBe(1);
    expect(h.issuer.callsTo('/attest').length).toBe(1);
  });

  it('does not serve SVIDs that expired while the agent was down, and issues new ones at the first sync', async () => {
    const { h } = await firstRun();
    h.clock.advance(TTL.x509 * 1000);
    const again = await restart(h);
    expect(again.loaded).toEqual({ served: 0, expired: 2 });
    expect(again.cache.x509SvidsFor([UID, GID])).toEqual([]);
    const out = await syncOnce({ client: again.client, cache: again.cache, clock: h.clock.fn, log: silentLogger() });
    expect(out).toEqual({ entriesChanged: false, bundleChanged: false, issued: 2 }); // the restored revision was current
    expect(again.cache.x509SvidsFor([UID, GID]).length).toBe(2);
  });

  it('a changed registry replaces what was loaded at the first sync', async () => {
    const { h } = await firstRun();
    await h.issuer.deleteEntry('e-db');
    await h.addEntry('e-new', '/new', [GID]);
    const again = await restart(h);
    expect(again.cache.x509SvidsFor([UID, GID]).map((s) => s.entryId).sort()).toEqual(['e-db', 'e-web']);
    const out = await syncOnce({ client: again.client, cache: again.cache, clock: h.clock.fn, log: silentLogger() });
    expect(out).toMatchObject({ entriesChanged: true, issued: 1 });
    expect(again.cache.x509SvidsFor([UID, GID]).map((s) => s.entryId).sort()).toEqual(['e-new', 'e-web']);
  });

  it('a corrupt cache file is ignored with a warning; the agent starts, syncs and rewrites it', async () => {
    const { h } = await firstRun();
    const path = join(h.dataDirPath, DATA_FILES.SVID_CACHE);
    writeFileSync(path, '{"version":1,"trustDomain":"example.org","agentId":"x","entr');
    const { log, lines } = capturingLogger();
    const again = await restart(h, log);
    expect(again.loaded).toBeUndefined();
    expect(again.cache.isReady()).toBe(false);
    expect(lines.find((l) => l.level === 40 && /ignored a corrupt SVID cache file \(not JSON\)/.test(l.msg))).toBeDefined();
    await syncOnce({ client: again.client, cache: again.cache, clock: h.clock.fn, log });
    expect(again.cache.isReady()).toBe(true);
    expect(again.cache.x509SvidsFor([UID, GID]).length).toBe(2);
    await again.persister.flush();
    expect((JSON.parse(readFileSync(path, 'utf8')) as { entries: unknown[] }).entries.length).toBe(2);
  });

  it('a cached SVID whose key does not match its certificate is dropped alone, with a warning', async () => {
    const { h } = await firstRun();
    const path = join(h.dataDirPath, DATA_FILES.SVID_CACHE);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { entries: Array<{ entry: { id: string }; svid: { privateKey: string } }> };
    file.entries.find((e) => e.entry.id === 'e-db')!.svid.privateKey = toBase64(exportPkcs8(generateKeyPair().privateKey));
    writeFileSync(path, JSON.stringify(file));
    const { log, lines } = capturingLogger();
    const again = await restart(h, log);
    expect(again.loaded).toEqual({ served: 1, expired: 0 });
    expect(again.cache.x509SvidsFor([UID, GID]).map((s) => s.entryId)).toEqual(['e-web']);
    expect(lines.some((l) => l.level === 40 && /not matching its key; dropped/.test(l.msg))).toBe(true);
  });

  it('is encoded and written in pieces that make up exactly JSON.stringify of the file', async () => {
    const entries = Array.from({ length: 300 }, (_, i) =>
      makeEntry({ id: `e-${i}`, spiffeId: `spiffe://example.org/w/${i}` as SpiffeId, parentId: 'spiffe://example.org/spire/agent/join_token/t' as SpiffeId, selectors: [UID], revisionNumber: 1, createdAt: 1 }),
    );
    const svids = entries.slice(0, 250).map((e, i) => ({ entryId: e.id, spiffeId: e.spiffeId, entryRevision: 1, serialNumber: (i + 1).toString(16), certChain: [new Uint8Array(600).fill(i)], privateKey: new Uint8Array(138).fill(i), notBefore: 1, notAfter: 2 }));
    const snap = { revision: 'r1', bundle: { keys: [] }, federatedBundles: {}, entries, svids };
    const parts = [...encodeCacheFileParts(snap, { trustDomain: TRUST_DOMAIN, agentId: 'spiffe://example.org/a' }, 0)];
    expect(parts.length).toBeGreaterThan(4);
    for (const part of parts) expect(part.length).toBeLessThan(CACHE_FILE_PART_CHARS + 2_000);
    const text = parts.join('');
    expect(text).toBe(`${JSON.stringify(JSON.parse(text))}\n`);
    expect(encodeCacheFile(snap, { trustDomain: TRUST_DOMAIN, agentId: 'spiffe://example.org/a' }, 0)).toBe(text);
    const file = JSON.parse(text) as { entries: Array<{ entry: { id: string }; svid?: unknown }> };
    expect(Object.keys(file)).toEqual(['version', 'trustDomain', 'agentId', 'writtenAt', 'revision', 'bundle', 'federatedBundles', 'entries']);
    expect(file.entries.map((e) => e.entry.id)).toEqual(entries.map((e) => e.id));
    expect(file.entries.filter((e) => e.svid).length).toBe(250);

    const dataDir = await openDataDir(join(mkdtempSync(join(tmpdir(), 'wisp-cache-parts-')), 'data'));
    await dataDir.writeSvidCache(encodeCacheFileParts(snap, { trustDomain: TRUST_DOMAIN, agentId: 'spiffe://example.org/a' }, 0));
    expect(readFileSync(join(dataDir.path, DATA_FILES.SVID_CACHE), 'utf8')).toBe(text);
    expect(await dataDir.readSvidCache()).toBe(text);
    const multibyte = `${'x'.repeat(64 * 1024 - 1)}\u00e9\u{1f511}${'\u00e9'.repeat(40_000)}`; // characters across 64 KiB read boundaries
    await dataDir.writeSvidCache(multibyte);
    expect(await dataDir.readSvidCache()).toBe(multibyte);
  });

  it('a cache file written for another trust domain or agent identity is not loaded', async () => {
    const { h, first } = await firstRun();
    const path = join(h.dataDirPath, DATA_FILES.SVID_CACHE);
    writeFileSync(path, encodeCacheFile(first.cache.snapshot(), { trustDomain: TRUST_DOMAIN, agentId: 'spiffe://example.org/spire/agent/join_token/other' }, h.clock.now));
    expect((await restart(h)).loaded).toBeUndefined();
    writeFileSync(path, encodeCacheFile(first.cache.snapshot(), { trustDomain: 'other.org', agentId: h.identity.current()!.spiffeId }, h.clock.now));
    expect((await restart(h)).loaded).toBeUndefined();
  });
});

describe('wisp-agent run, restarted while the issuer is down', () => {
  it('serves the SVIDs it cached before the restart, straight away', async () => {
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${process.getuid!()}` }], { parentId: issuer.agentIdOf(token) });
    const dir = mkdtempSync(join(tmpdir(), 'wisp-cache-run-'));
    const socketPath = join(dir, 'api.sock');
    const config = parseAgentConfig(
      { path: 'test', content: { serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1 } },
      {},
      { joinToken: token },
    );
    const start = () => {
      const controller = new AbortController();
      const done = runAgent(config, { log: silentLogger(), signal: controller.signal });
      return { controller, done };
    };
    const lines: string[] = [];
    const api: ApiCommandOptions = { address: socketPath, output: 'json', timeoutMs: 5_000, print: (l) => lines.push(l) };
    const healthy = async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy;

    const first = start();
    await until(healthy);
    await fetchX509({ ...api, writeDir: join(dir, 'out-1') });
    first.controller.abort();
    await first.done; // flushes the cache file
    expect(statSync(join(dir, 'data', DATA_FILES.SVID_CACHE)).mode & 0o777).toBe(0o600);

    issuer.down = true;
    const t0 = Date.now();
    const second = start();
    await until(healthy, 5_000);
    const readyAfterMs = Date.now() - t0;
    await fetchX509({ ...api, writeDir: join(dir, 'out-2') });
    const served = JSON.parse(lines.pop()!) as { svids: Array<{ spiffeId: string }> };
    expect(served.svids.map((s) => s.spiffeId)).toEqual(['spiffe://example.org/me']);
    for (const f of ['svid.0.pem', 'svid.0.key']) expect(readFileSync(join(dir, 'out-2', f), 'utf8')).toBe(readFileSync(join(dir, 'out-1', f), 'utf8'));
    expect(readyAfterMs).toBeLessThan(3_000); // not after an issuer timeout or backoff
    expect(issuer.callsTo('/attest').length).toBe(1);
    second.controller.abort();
    await second.done;
  });

  it('its own SVID expired meanwhile: serves the cached SVIDs still valid while it cannot attest; attested again as another agent, the first sync replaces them', async () => {
    let now = Date.now();
    const clock = () => now;
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    const { token: token2 } = await issuer.admin<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 3 * 3600 }); // outlives the clock's jump
    // the agent SVID lives X509_SVID_TTL (1 h by default); this workload's SVID 3 h
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${process.getuid!()}` }], { parentId: issuer.agentIdOf(token), x509SvidTtl: 3 * 3600 });
    const dir = mkdtempSync(join(tmpdir(), 'wisp-cache-expired-'));
    const socketPath = join(dir, 'api.sock');
    const configWith = (joinToken: string) =>
      parseAgentConfig({ path: 'test', content: { serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1 } }, {}, { joinToken });
    const start = (joinToken: string, log: Logger = silentLogger()) => {
      const controller = new AbortController();
      const done = runAgent(configWith(joinToken), { log, signal: controller.signal, clock });
      return { controller, done };
    };
    const lines: string[] = [];
    const api: ApiCommandOptions = { address: socketPath, output: 'json', timeoutMs: 2_000, print: (l) => lines.push(l) };
    const fetched = (out: string) => async () => {
      try {
        await fetchX509({ ...api, writeDir: join(dir, out) });
        return true;
      } catch {
        return false;
      }
    };

    const first = start(token);
    await until(async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy);
    await fetchX509({ ...api, writeDir: join(dir, 'out-1') });
    first.controller.abort();
    await first.done;

    now += 90 * 60_000; // the agent SVID has expired, the workload SVID has not
    issuer.down = true;
    const { log, lines: logged } = capturingLogger();
    const second = start(token, log);
    await until(fetched('out-2'), 10_000);
    for (const f of ['svid.0.pem', 'svid.0.key']) expect(readFileSync(join(dir, 'out-2', f), 'utf8')).toBe(readFileSync(join(dir, 'out-1', f), 'utf8'));
    expect(logged.some((l) => l.level === 40 && /stored agent SVID expired and the issuer is unreachable: serving the cached X509-SVIDs/.test(l.msg))).toBe(true);
    expect(issuer.callsTo('/attest').length).toBe(1); // nothing reached the issuer
    second.controller.abort();
    await second.done;

    // started with another join token: it serves the old cache until it attests, then syncs every entry as
    // the new agent, for which /me is not authorized (its parent is the first agent)
    const third = start(token2);
    await until(fetched('out-3'), 10_000);
    issuer.down = false;
    await until(async () => issuer.callsTo('/sync').some((c) => c.status === 200 && c.agentId === issuer.agentIdOf(token2)), 10_000);
    await until(async () => !(await fetched('out-4')()), 10_000);
    const sync = issuer.callsTo('/sync').find((c) => c.agentId === issuer.agentIdOf(token2))!;
    expect((sync.body as { revision?: string }).revision).toBeUndefined(); // a full sync, not one from the old identity's revision
    third.controller.abort();
    await third.done;
  });
});
