// Agents follow per-SVID revocation within one sync (against the real issuer in process): a revoked SVID is
// dropped at once (a FetchX509SVID never returns it), replaced in the same round, and an open stream gets the
// replacement; every X509SVIDResponse carries the issuer's CRLs (DER, verified with @peculiar/x509 and
// openssl against the bundle); a restarted agent re-applies the revocations and taint its cache file holds.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCacheFile, loadSvidCacheFile } from '../../src/agent/cache/cache-file.js';
import { SvidCache, type CacheSnapshot } from '../../src/agent/cache/svid-cache.js';
import { silentLogger } from '../../src/agent/log.js';
import { SecretSchema } from '../../src/agent/sds/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { buildSecrets, SDS_DEFAULTS } from '../../src/agent/sds/resources.js';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import { normalizeSerialNumber } from '../../src/shared/agent-proof.js';
import { signerAuthorityIdsOf } from '../../src/shared/ca/authority-id.js';
import { rotatorRound, useAgentHarness, TRUST_DOMAIN, type Harness } from '../helpers/node/agent/agent-harness.js';
import { createOpensslKit, openssl } from '../helpers/node/agent/openssl-kit.js';

const UID = { type: 'unix', value: 'uid:1000' };
const log = silentLogger();
const createHarness = useAgentHarness();
const kit = createOpensslKit('wisp-revocation-');
afterAll(() => kit.cleanup());

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
  await h.addEntry('e-web', '/web', [UID]);
  await h.addEntry('e-db', '/db', [UID]);
  await h.identity.start();
  // past the CA key's first 10 s, where notBefore is clipped to the key's (revocation.ts issuedBefore)
  h.clock.advance(60_000);
});
afterEach(() => h.close());

const round = (cache: SvidCache = h.cache) => rotatorRound(h, cache);

const serialOf = (der: Uint8Array) => normalizeSerialNumber(new x509.X509Certificate(der).serialNumber);
const serials = (cache: SvidCache = h.cache) => new Map(cache.x509SvidsFor([UID]).map((s) => [s.spiffeId, serialOf(s.certChain[0]!)]));
const revoke = (body: Record<string, string>) => h.issuer.admin('POST', '/revocations', body);

/** the Workload API over the harness's cache, for a caller with UID */
function workloadApi(cache: SvidCache = h.cache) {
  return createWorkloadApi({ attest: async () => [UID], source: cache, updateDelayMs: 0, log });
}
const ctx = () => ({ peer: { pid: 1, uid: 1000, gid: 1000 }, signal: new AbortController().signal });

async function fetchOnce(cache: SvidCache = h.cache, api = workloadApi(cache)) {
  const controller = new AbortController();
  const it = api.fetchX509SVID({} as never, { ...ctx(), signal: controller.signal })[Symbol.asyncIterator]();
  const first = await it.next();
  controller.abort();
  await it.return?.();
  return first.value as { svids: Array<{ spiffeId: string; x509Svid: Uint8Array }>; crl: Uint8Array[] };
}
/** the leaf of a response's x509_svid (DER certificates back to back): its DER SEQUENCE's length */
function leafOf(chain: Uint8Array): Uint8Array {
  const n = chain[1]! & 0x80 ? chain[1]! & 0x7f : 0;
  const len = n === 0 ? chain[1]! : chain.subarray(2, 2 + n).reduce((a, b) => a * 256 + b, 0);
  return chain.slice(0, 2 + n + len);
}
const leafSerialsOf = (res: { svids: Array<{ spiffeId: string; x509Svid: Uint8Array }> }) => new Map(res.svids.map((s) => [s.spiffeId, serialOf(leafOf(s.x509Svid))]));

describe('agents and per-SVID revocation', () => {
  it('by serial: the next sync drops the SVID, replaces it in the same round, streams get the new serial, and the CRL lists it', async () => {
    await round();
    const before = serials();
    const web = before.get('spiffe://example.org/web')!;
    const db = before.get('spiffe://example.org/db')!;

    const controller = new AbortController();
    const stream = workloadApi().fetchX509SVID({} as never, { ...ctx(), signal: controller.signal })[Symbol.asyncIterator]();
    const opened = (await stream.next()).value as { svids: Array<{ spiffeId: string; x509Svid: Uint8Array }>; crl: Uint8Array[] };
    // the CRLs come with the first sync, before anything is revoked
    expect(opened.crl.length).toBeGreaterThan(0);
    expect((new x509.X509Crl(opened.crl[0]!).entries ?? []).map((e) => normalizeSerialNumber(e.serialNumber))).not.toContain(web);

    await revoke({ serialNumber: web });
    // the sync alone (no signing yet): the revoked SVID is no longer served, not even until its replacement
    await h.cache.applySync(await h.client.sync(h.cache.syncState()));
    expect(serials().get('spiffe://example.org/web')).toBeUndefined();
    expect(serials().get('spiffe://example.org/db')).toBe(db);
    expect([...leafSerialsOf(await fetchOnce()).values()]).not.toContain(web);

    await round();
    const after = serials();
    expect(after.get('spiffe://example.org/web')).toBeDefined();
    expect(after.get('spiffe://example.org/web')).not.toBe(web);
    expect(after.get('spiffe://example.org/db')).toBe(db); // not revoked: kept

    let update = (await stream.next()).value as { svids: Array<{ spiffeId: string; x509Svid: Uint8Array }>; crl: Uint8Array[] };
    while (!leafSerialsOf(update).has('spiffe://example.org/web')) update = (await stream.next()).value as typeof update;
    expect(leafSerialsOf(update).get('spiffe://example.org/web')).toBe(after.get('spiffe://example.org/web'));
    controller.abort();
    await stream.return?.();

    // the CRL: DER, signed by a CA of the bundle, listing the revoked serial and not the fresh one
    const api = workloadApi();
    const res = await fetchOnce(h.cache, api);
    expect(res.crl.length).toBeGreaterThan(0);
    // precomputed once per change: the cache's CRLs, in one response (handler.ts) reused for every call
    expect(res.crl).toEqual(h.cache.crls());
    expect((await fetchOnce(h.cache, api)).crl).toBe(res.crl);
    const crl = new x509.X509Crl(res.crl[0]!);
    const cas = h.cache.bundles().own.x509Authorities.map((d) => new x509.X509Certificate(d));
    const verified = await Promise.all(cas.map((ca) => crl.verify({ publicKey: ca.publicKey })));
    expect(verified).toContain(true);
    const listed = (crl.entries ?? []).map((e) => normalizeSerialNumber(e.serialNumber));
    expect(listed).toContain(web);
    expect(listed).not.toContain(after.get('spiffe://example.org/web'));

    // openssl agrees: the CRL verifies with the bundle; the revoked SVID fails a CRL check, the fresh one passes
    const crlPem = kit.writePem(res.crl[0]!, 'X509 CRL');
    const bundlePem = `${crlPem}.bundle.pem`;
    writeFileSync(bundlePem, h.cache.bundles().own.x509Authorities.map((d) => readFileSync(kit.writePem(d), 'utf8')).join(''));
    const crlDer = join(`${crlPem}.der`);
    writeFileSync(crlDer, res.crl[0]!);
    expect(openssl('crl', '-inform', 'DER', '-in', crlDer, '-CAfile', bundlePem, '-noout')).toBe('');
    const revokedLeaf = leafOf(opened.svids.find((s) => s.spiffeId === 'spiffe://example.org/web')!.x509Svid);
    const freshLeaf = leafOf(update.svids.find((s) => s.spiffeId === 'spiffe://example.org/web')!.x509Svid);
    expect(serialOf(revokedLeaf)).toBe(web);
    const at = String(Math.floor(h.clock.now / 1000)); // the harness's clock, not the machine's
    expect(() => openssl('verify', '-attime', at, '-crl_check', '-CAfile', bundlePem, '-CRLfile', crlPem, kit.writePem(revokedLeaf))).toThrow(/certificate revoked/);
    expect(openssl('verify', '-attime', at, '-crl_check', '-CAfile', bundlePem, '-CRLfile', crlPem, kit.writePem(freshLeaf))).toMatch(/OK/);

    // SDS: a plain trusted_ca context carries the CRLs (PEM, leaf only); the SPIFFE validator's carries none
    const view = { svids: h.cache.x509SvidsFor([UID]), own: h.cache.bundles().own, federated: [], ownCrls: h.cache.crls() };
    const plain = anyUnpack(buildSecrets(view, ['ROOTCA'], SDS_DEFAULTS, false)[0]!, SecretSchema)!;
    if (plain.type.case !== 'validationContext') throw new Error('not a validation context');
    expect(plain.type.value.onlyVerifyLeafCertCrl).toBe(true);
    const crlSource = plain.type.value.crl?.specifier;
    expect(crlSource?.case).toBe('inlineBytes');
    const envoyCrlPem = kit.writePem(new Uint8Array(0), 'UNUSED');
    writeFileSync(envoyCrlPem, crlSource!.value as Uint8Array);
    expect(() => openssl('verify', '-attime', at, '-crl_check', '-CAfile', bundlePem, '-CRLfile', envoyCrlPem, kit.writePem(revokedLeaf))).toThrow(/certificate revoked/);
    const spiffe = anyUnpack(buildSecrets(view, ['ROOTCA'], SDS_DEFAULTS, true)[0]!, SecretSchema)!;
    expect(spiffe.type.case === 'validationContext' && spiffe.type.value.crl).toBeFalsy();
  });

  it('by SPIFFE ID: every SVID of the ID issued until then is dropped; one signed in the cutoff second is not served either', async () => {
    await round();
    const before = serials();
    await revoke({ spiffeId: 'spiffe://example.org/db' });
    await round(); // same second as the revocation: the replacement is revoked too, so not served
    expect(serials().get('spiffe://example.org/db')).toBeUndefined();
    expect(serials().get('spiffe://example.org/web')).toBe(before.get('spiffe://example.org/web'));
    expect([...leafSerialsOf(await fetchOnce()).keys()]).toEqual(['spiffe://example.org/web']);
    h.clock.advance(1_000);
    await round();
    const db = serials().get('spiffe://example.org/db');
    expect(db).toBeDefined();
    expect(db).not.toBe(before.get('spiffe://example.org/db'));
  });

  it('an entry revocation through the admin API works the same', async () => {
    await round();
    const before = serials().get('spiffe://example.org/web');
    await revoke({ entryId: 'e-web' });
    h.clock.advance(1_000);
    await round();
    expect(serials().get('spiffe://example.org/web')).not.toBe(before);
    expect(serials().get('spiffe://example.org/web')).toBeDefined();
  });

  it("the agent's own SVID revoked: the issuer refuses it (ERR_SVID_REVOKED) and the agent re-attests", async () => {
    await round();
    await revoke({ serialNumber: serialOf(h.identity.current()!.certChain[0]!) });
    // a join token is single use: the re-attestation the refusal triggers needs a new one
    await expect(round()).rejects.toMatchObject({ code: 'ERR_JOIN_TOKEN_INVALID' });
    expect(h.issuer.callsTo('/sync').at(-1)!.status).toBe(401);

    // an attestor that can attest again (a cloud attestor; here a fresh join token each time)
    const fresh: { issuer?: Harness['issuer'] } = {};
    const g = await createHarness({ attestor: (first) => {
      const tokens = [first];
      return { type: 'join_token', singleUse: false, payload: async () => ({ token: tokens.shift() ?? (await fresh.issuer!.createJoinToken()) }), describe: () => ({ attestor: 'join_token' }) };
    } });
    fresh.issuer = g.issuer;
    await g.identity.start();
    const before = serialOf(g.identity.current()!.certChain[0]!);
    await g.issuer.admin('POST', '/revocations', { serialNumber: before });
    await rotatorRound(g);
    expect(g.issuer.callsTo('/attest')).toHaveLength(2);
    const after = serialOf(g.identity.current()!.certChain[0]!);
    expect(after).not.toBe(before);
    expect((await g.client.sync({})).revision).toBeTypeOf('string'); // the new agent SVID is accepted
  });

  it('a restarted agent re-applies the revocations and the taint its cache file holds before it serves', async () => {
    await round();
    const before = h.cache.snapshot();
    const web = serials().get('spiffe://example.org/web')!;
    const owner = { trustDomain: TRUST_DOMAIN, agentId: h.identity.current()!.spiffeId };

    const restarted = async (snap: CacheSnapshot) => {
      await h.dataDir.writeSvidCache(encodeCacheFile(snap, owner, h.clock.now));
      const cache = new SvidCache({ trustDomain: TRUST_DOMAIN, clock: h.clock.fn, jwt: h.client, log, random: () => 0 });
      const loaded = await loadSvidCacheFile({ dataDir: h.dataDir, cache, trustDomain: TRUST_DOMAIN, agentId: owner.agentId, log });
      return { cache, loaded };
    };

    // a file written before the SVID was dropped, with the revocation recorded: it is not served after restart
    await revoke({ serialNumber: web });
    await h.cache.applySync(await h.client.sync(h.cache.syncState()));
    const revokedSnap: CacheSnapshot = { ...before, revocations: h.cache.snapshot().revocations! };
    expect(revokedSnap.revocations!.serials).toContain(web);
    const one = await restarted(revokedSnap);
    expect(one.loaded).toMatchObject({ served: 1, revoked: 1 });
    expect(one.cache.isReady()).toBe(true);
    expect([...serials(one.cache).keys()]).toEqual(['spiffe://example.org/db']);
    expect(one.cache.crls().length).toBeGreaterThan(0);
    expect([...leafSerialsOf(await fetchOnce(one.cache)).values()]).not.toContain(web);
    // the restored cache round-trips the revocations through its own snapshot
    expect(one.cache.snapshot().revocations).toEqual(revokedSnap.revocations);

    // a taint received, then a restart before the re-sign: the restored cache does not serve what it signed
    await round();
    const la = <T>(path: string, body?: unknown) => h.issuer.admin<T>(body === undefined && !path.endsWith('prepare') ? 'GET' : 'POST', `/localauthority${path}`, body);
    const first = (await la<{ active: { authorityId: string } }>('/x509')).active.authorityId;
    const next = (await la<{ preparedAuthority: { authorityId: string } }>('/x509/prepare')).preparedAuthority.authorityId;
    await la('/x509/activate', { authorityId: next });
    await la('/x509/taint', { authorityId: first });
    await h.cache.applySync(await h.client.sync(h.cache.syncState())); // taint received, nothing re-signed yet
    const tainted = h.cache.snapshot();
    expect(tainted.taintedX509).toEqual([first]);
    expect(tainted.svids.length).toBe(2);
    expect(tainted.svids.every((s) => signerAuthorityIdsOf(s.certChain).includes(first))).toBe(true);
    const two = await restarted(tainted);
    expect(two.loaded).toMatchObject({ served: 0, revoked: 2 });
    expect(two.cache.x509SvidsFor([UID])).toEqual([]);
    // the first round of the restarted agent signs them anew with the new authority
    await round(two.cache);
    expect(two.cache.x509SvidsFor([UID]).map((s) => signerAuthorityIdsOf(s.certChain))).toEqual([[next], [next]]);

    // a file of an older agent (no revocations, no taint) still loads, as none
    const { revocations: _r, taintedX509: _t, ...old } = before;
    const three = await restarted(old);
    expect(three.loaded).toMatchObject({ served: 2 });
    expect(three.cache.crls()).toEqual([]);
  });
});
