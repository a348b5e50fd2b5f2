// The WIT-SVID profile of the Workload API (Workload API §7, WIT-SVID.md) served by the whole daemon (runAgent)
// against the real issuer in process: FetchWITSVID streams a WIT-SVID with the private key of its cnf,
// renewed at half-life, FetchWITBundles the wit-svid keys; both Unimplemented where the issuer has the
// profile off. Each token is validated against the streamed bundle and used for a proof of possession.
import { status } from '@grpc/grpc-js';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { createWorkloadApiClient, isGrpcError, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { validateWitSvid, verifyWorkloadProofToken, witHash } from '../../src/shared/spiffe/wit-svid.js';
import { startRunningAgent, until, useStops } from '../helpers/node/agent/running-agent.js';

const TD = 'example.org';
const stops = useStops();

async function grpcCode(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  return isGrpcError(e) ? status[e.code] : `not a gRPC error: ${String(e)}`;
}

/** An issuer (WIT_SVID_TTL from `witTtl`, none: off), an entry for this uid, and a running agent; its client. */
async function agentWith(witTtl: string | undefined): Promise<WorkloadApiClient> {
  const { socketPath } = await startRunningAgent(stops, { trustDomain: TD, ...(witTtl ? { issuerConfig: { WIT_SVID_TTL: witTtl } } : {}), entry: { extra: { hint: 'internal' } }, dirPrefix: 'wisp-wit-' });
  const client = createWorkloadApiClient(`unix://${socketPath}`);
  stops.push(async () => client.close());
  // entitled once the first sync brought the entry in
  await until(async () => (await client.fetchX509SVID()[Symbol.asyncIterator]().next()).value?.svids.length === 1);
  return client;
}

async function first<T>(stream: AsyncIterable<T>): Promise<T> {
  for await (const m of stream) return m;
  throw new Error('stream ended without a message');
}

describe('Workload API WIT-SVID profile', () => {
  it('FetchWITSVID: a WIT-SVID that validates against FetchWITBundles, with the private key of its cnf; the same one while fresh', async () => {
    const client = await agentWith('1h');
    const bundles = await first(client.fetchWITBundles());
    expect(Object.keys(bundles.bundles)).toEqual([`spiffe://${TD}`]);
    const witKeys = (JSON.parse(bundles.bundles[`spiffe://${TD}`]!) as { keys: JWK[] }).keys;
    expect(witKeys).toHaveLength(1);
    expect(witKeys[0]).not.toHaveProperty('d');

    const res = await first(client.fetchWITSVID());
    expect(res.svids).toHaveLength(1);
    const svid = res.svids[0]!;
    expect(svid.spiffeId).toBe(`spiffe://${TD}/me`);
    expect(svid.hint).toBe('internal');
    expect(decodeProtectedHeader(svid.witSvid)).toMatchObject({ typ: 'wit+jwt', kid: witKeys[0]!.kid });
    const validated = await validateWitSvid(svid.witSvid, witKeys, { now: Date.now(), trustDomain: TD });
    if (!validated.ok) throw new Error(validated.error.message);
    expect(validated.value.spiffeId).toBe(svid.spiffeId);
    // the key handed out is the private half of cnf.jwk: a proof signed with it verifies against the WIT
    const privateJwk = JSON.parse(svid.witSvidKey) as JWK;
    expect(privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', x: validated.value.cnfJwk.x, y: validated.value.cnfJwk.y, d: expect.any(String) });
    const now = Math.floor(Date.now() / 1000);
    const proof = await new SignJWT({ wth: await witHash(svid.witSvid), jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'wpt+jwt' })
      .setAudience('https://db.example.org')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(await importJWK(privateJwk, 'ES256'));
    expect((await verifyWorkloadProofToken(proof, svid.witSvid, validated.value, { audience: 'https://db.example.org', now: Date.now() })).ok).toBe(true);
    expect((await verifyWorkloadProofToken(proof, svid.witSvid, validated.value, { audience: 'https://other.example.org', now: Date.now() })).ok).toBe(false);

    // cached on the agent while more than half its lifetime remains (WIT-SVID.md §4 allows it)
    const again = await first(client.fetchWITSVID({ spiffeId: `spiffe://${TD}/me` }));
    expect(again.svids[0]!.witSvid).toBe(svid.witSvid);
    expect(await grpcCode(first(client.fetchWITSVID({ spiffeId: `spiffe://${TD}/not-mine` })))).toBe('PERMISSION_DENIED');
    expect(await grpcCode(first(client.fetchWITSVID({ spiffeId: 'not a spiffe id' })))).toBe('INVALID_ARGUMENT');
  });

  it('FetchWITSVID streams a renewed WIT-SVID (new key, new token) at half-life', async () => {
    const client = await agentWith('4s');
    const seen: Array<{ token: string; key: string }> = [];
    const controller = new AbortController();
    for await (const res of client.fetchWITSVID({}, { signal: controller.signal })) {
      seen.push({ token: res.svids[0]!.witSvid, key: res.svids[0]!.witSvidKey });
      if (seen.length === 2) break;
    }
    const [a, b] = seen;
    expect(b!.token).not.toBe(a!.token);
    expect(b!.key).not.toBe(a!.key);
    const [ca, cb] = [decodeJwt(a!.token), decodeJwt(b!.token)];
    expect(cb.exp! - ca.exp!).toBeGreaterThanOrEqual(1);
    expect(cb.iat! - ca.iat!).toBeLessThanOrEqual(3); // renewed at about half of the 4 s lifetime, not at expiry
  }, 20_000);

  it('both RPCs are Unimplemented where the issuer does not sign WIT-SVIDs (Workload API §7)', async () => {
    const client = await agentWith(undefined);
    expect(await grpcCode(first(client.fetchWITSVID()))).toBe('UNIMPLEMENTED');
    expect(await grpcCode(first(client.fetchWITBundles()))).toBe('UNIMPLEMENTED');
  });
});
