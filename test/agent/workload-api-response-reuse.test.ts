// handler.ts builds one X509SVIDResponse per entry set and hands it to every caller whose own selectors
// resolve to that set (server.ts then encodes it once). These tests hold the rule: each call is attested on
// its own, a reused answer goes only to a caller with the same entry set, and a rotated SVID, a changed bundle
// or a new CRL is never answered from the old message. Real certificates and keys, no gRPC (the server
// tests cover the wire).
import { beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApi, type CallContext } from '../../src/agent/workload-api/handler.js';
import type { PeerInfo } from '../../src/agent/workload-api/unix-attestor.js';
import type { MintedJwtSvid } from '../../src/agent/cache/identity-source.js';
import type { Selector } from '../../src/shared/registry/selectors.js';
import { createTrustDomain, issueX509Svid, type TestTrustDomain } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';

const TD = 'example.org';
let own: TestTrustDomain;

beforeAll(async () => {
  own = await createTrustDomain(TD);
});

const uidSelector = (uid: number): Selector => ({ type: 'unix', value: `uid:${uid}` });

/** The attestor of these tests: a caller's selectors from its uid, each call counted. */
function countingAttestor() {
  const calls: number[] = [];
  const attest = async (peer: PeerInfo) => {
    calls.push(peer.pid);
    return [uidSelector(peer.uid), { type: 'unix', value: `gid:${peer.gid}` }];
  };
  return { attest, calls };
}

const ctx = (pid: number, uid: number): CallContext => ({ peer: { pid, uid, gid: 100, startTime: '1' }, signal: new AbortController().signal });

async function firstResponse(api: ReturnType<typeof createWorkloadApi>, c: CallContext) {
  for await (const message of api.fetchX509SVID({} as never, c)) return message as { svids: { spiffeId: string; x509Svid: Uint8Array; x509SvidKey: Uint8Array }[]; crl: Uint8Array[] };
  throw new Error('stream ended without a message');
}

async function put(source: MemoryIdentitySource, entryId: string, uid: number) {
  const spiffeId = `spiffe://${TD}/${entryId}`;
  const svid = await issueX509Svid(own, { entryId, spiffeId });
  source.put({ entryId, spiffeId, selectors: [uidSelector(uid)], hint: '', federatesWith: [], svid });
  return svid;
}

describe('X509SVIDResponse reuse', () => {
  it('gives callers with the same entry set one message, attesting each call', async () => {
    const source = new MemoryIdentitySource(own);
    const { attest, calls } = countingAttestor();
    const api = createWorkloadApi({ attest, source });
    const svid = await put(source, 'web', 1000);
    const a = await firstResponse(api, ctx(11, 1000));
    const b = await firstResponse(api, ctx(12, 1000));
    expect(b).toBe(a);
    expect(calls).toEqual([11, 12]);
    expect(Buffer.from(a.svids[0]!.x509SvidKey)).toEqual(Buffer.from(svid.privateKey));
  });

  it('never gives a caller another entry set’s answer', async () => {
    const source = new MemoryIdentitySource(own);
    const api = createWorkloadApi({ attest: countingAttestor().attest, source });
    const web = await put(source, 'web', 1000);
    const db = await put(source, 'db', 2000);
    const forWeb = await firstResponse(api, ctx(11, 1000));
    const forDb = await firstResponse(api, ctx(12, 2000));
    expect(forDb).not.toBe(forWeb);
    expect(forDb.svids.map((s) => s.spiffeId)).toEqual([`spiffe://${TD}/db`]);
    expect(Buffer.from(forDb.svids[0]!.x509SvidKey)).toEqual(Buffer.from(db.privateKey));
    expect(Buffer.from(forWeb.svids[0]!.x509SvidKey)).toEqual(Buffer.from(web.privateKey));
    // a caller with no entry is still denied, whatever was built before
    await expect(firstResponse(api, ctx(13, 3000))).rejects.toMatchObject({ code: 'ERR_NO_IDENTITY' });
  });

  it('builds a new message after a rotation, a bundle change or a new CRL', async () => {
    const source = new MemoryIdentitySource(own);
    const api = createWorkloadApi({ attest: countingAttestor().attest, source });
    await put(source, 'web', 1000);
    const before = await firstResponse(api, ctx(11, 1000));
    const rotated = await put(source, 'web', 1000);
    const afterRotation = await firstResponse(api, ctx(12, 1000));
    expect(afterRotation).not.toBe(before);
    expect(Buffer.from(afterRotation.svids[0]!.x509Svid)).toEqual(Buffer.from(rotated.certChain[0]!));

    source.crlList = [new Uint8Array([0x30, 0x00])];
    const afterCrl = await firstResponse(api, ctx(13, 1000));
    expect(afterCrl).not.toBe(afterRotation);
    expect(afterCrl.crl).toEqual([new Uint8Array([0x30, 0x00])]);

    const next = await createTrustDomain(TD);
    (source as { own: TestTrustDomain }).own = next;
    const afterBundle = await firstResponse(api, ctx(14, 1000));
    expect(afterBundle).not.toBe(afterCrl);
    expect((afterBundle as unknown as { svids: { bundle: Uint8Array }[] }).svids[0]!.bundle).toEqual(next.bundle.x509Authorities[0]);
  });

  it('reuses a FetchJWTSVID response only for the same cached JWT-SVID', async () => {
    // a source that keeps each JWT-SVID, as the agent's cache does (cache/jwt-svid-cache.ts)
    class HoldingSource extends MemoryIdentitySource {
      readonly held = new Map<string, Promise<MintedJwtSvid>>();
      override fetchJwtSvid(entryId: string, audience: string[]): Promise<MintedJwtSvid> {
        const key = `${entryId} ${audience.join(' ')}`;
        if (!this.held.has(key)) this.held.set(key, super.fetchJwtSvid(entryId, audience));
        return this.held.get(key)!;
      }
    }
    const source = new HoldingSource(own);
    const api = createWorkloadApi({ attest: countingAttestor().attest, source });
    await put(source, 'web', 1000);
    await put(source, 'db', 2000);
    const web1 = await api.fetchJWTSVID({ audience: ['a'], spiffeId: '' } as never, ctx(11, 1000));
    const db = await api.fetchJWTSVID({ audience: ['a'], spiffeId: '' } as never, ctx(12, 2000));
    const webOther = await api.fetchJWTSVID({ audience: ['b'], spiffeId: '' } as never, ctx(13, 1000));
    expect(await api.fetchJWTSVID({ audience: ['a'], spiffeId: '' } as never, ctx(14, 1000))).toBe(web1);
    expect(db).not.toBe(web1);
    expect((db as { svids: { spiffeId: string }[] }).svids.map((s) => s.spiffeId)).toEqual([`spiffe://${TD}/db`]);
    expect(webOther).not.toBe(web1);
    source.held.clear(); // the cache mints a new JWT-SVID: a new response
    const web2 = await api.fetchJWTSVID({ audience: ['a'], spiffeId: '' } as never, ctx(15, 1000));
    expect(web2).not.toBe(web1);
    expect((web2 as { svids: { svid: string }[] }).svids[0]!.svid).not.toBe((web1 as { svids: { svid: string }[] }).svids[0]!.svid);
    expect(JSON.parse(Buffer.from((webOther as { svids: { svid: string }[] }).svids[0]!.svid.split('.')[1]!, 'base64url').toString()).aud).toEqual(['b']);
  });
});
