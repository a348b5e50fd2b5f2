// Per-caller rate limits on the agent socket (SPIRE 1.13's `ratelimit`), end to end in one process: the real
// server on a Unix socket, the real unix attestor plus one test selector (so this process can be two callers
// with different selector sets), an in-memory IdentitySource with real SVIDs, real grpc-js clients, and the
// limiter with a clock the test moves.
import { create } from '@bufbuild/protobuf';
import { credentials, makeGenericClientConstructor, status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { healthcheck } from '../../src/agent/cli/api.js';
import { createSds } from '../../src/agent/sds/handler.js';
import { DiscoveryRequestSchema, type DiscoveryResponse } from '../../src/agent/sds/gen/envoy/service/discovery/v3/discovery_pb.js';
import { SecretDiscoveryService } from '../../src/agent/sds/gen/envoy/service/secret/v3/sds_pb.js';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import {
  createCallerRateLimiter,
  RATE_LIMIT_EXCEEDED,
  REFUSAL_LOG_INTERVAL_MS,
  UNATTESTED_KEY,
  type CallerRateLimiter,
  type WorkloadRateLimits,
} from '../../src/agent/workload-api/rate-limit.js';
import { startWorkloadApiServer, type WorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createUnixAttestor, type WorkloadAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { createWorkloadApiClient, isGrpcError, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { grpcServiceDefinition } from '../../src/node/workload-api/service.js';
import { concatBytes } from '../../src/shared/encoding/bytes.js';
import type { Selector } from '../../src/shared/registry/selectors.js';
import { createTrustDomain, issueX509Svid, type TestTrustDomain } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';

const UID = process.getuid!();
const OWN = 'example.org';
const WEB = `spiffe://${OWN}/web`;
const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

interface SdsClient extends Client {
  fetchSecrets(req: unknown, cb: (err: ServiceError | null, res?: DiscoveryResponse) => void): void;
  streamSecrets(): ClientDuplexStream<unknown, DiscoveryResponse>;
}

let own: TestTrustDomain;
let dir: string;
let socketPath: string;
let source: MemoryIdentitySource;
let server: WorkloadApiServer;
let client: WorkloadApiClient;
let sdsClient: SdsClient;
let limiter: CallerRateLimiter;
let now: number;
let warnings: Array<Record<string, unknown>>;
/** the caller the next attestation sees: `a` (this process's unix selectors) or `b` (the same plus one more) */
let caller: 'a' | 'b' | 'none';
const EXTRA: Selector = { type: 'test', value: 'caller-b' };

beforeAll(async () => {
  own = await createTrustDomain(OWN);
  dir = mkdtempSync(join(tmpdir(), 'wisp-rl-'));
  chmodSync(dir, 0o755);
  socketPath = join(dir, 'agent.sock');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(limits: WorkloadRateLimits) {
  source = new MemoryIdentitySource(own);
  const svid = await issueX509Svid(own, { entryId: 'e-web', spiffeId: WEB });
  // both callers hold the identity: entries match when their selectors are a subset of the caller's
  source.put({ entryId: 'e-web', spiffeId: WEB, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: '', federatesWith: [], svid });
  now = 1_000_000;
  warnings = [];
  caller = 'a';
  limiter = createCallerRateLimiter(limits, { clock: () => now, log: { warn: (fields: object) => warnings.push(fields as Record<string, unknown>) } });
  const unix = createUnixAttestor();
  const attest: WorkloadAttestor = async (peer) => (caller === 'none' ? [] : caller === 'b' ? [...(await unix(peer)), EXTRA] : unix(peer));
  server = await startWorkloadApiServer({
    socketPath,
    impl: createWorkloadApi({ attest, source, updateDelayMs: 20, limiter }),
    sds: createSds({ attest, source, updateDelayMs: 20, limiter }),
  });
  client = createWorkloadApiClient(`unix://${socketPath}`);
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(SecretDiscoveryService), 'SecretDiscoveryService');
  sdsClient = new Ctor(`unix://${socketPath}`, credentials.createInsecure()) as unknown as SdsClient;
}

afterEach(async () => {
  client?.close();
  sdsClient?.close();
  await server?.close(200);
});

/** 'OK', or the gRPC code's name; a refusal must say why. */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'OK';
  } catch (err) {
    if (!isGrpcError(err)) throw err;
    if (err.code === status.UNAVAILABLE) expect(err.details).toMatch(new RegExp(`^${RATE_LIMIT_EXCEEDED}: \\w+ allows \\d+ per second per selector set; retry in \\d+ ms$`));
    return status[err.code];
  }
}

const jwt = () => outcome(client.fetchJWTSVID({ audience: ['spiffe://example.org/db'] }));

/** Opens a FetchX509SVID stream and waits for its first response; the iterator stays open. */
async function openX509Stream() {
  const it = client.fetchX509SVID()[Symbol.asyncIterator]();
  const first = await it.next();
  return { first, it };
}

const times = async <T>(n: number, f: () => Promise<T>): Promise<T[]> => {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
};

describe('Workload API rate limits', () => {
  it('FetchJWTSVID: a flooding caller gets Unavailable, a caller with another selector set keeps succeeding', async () => {
    await start({ fetchJwtSvid: 3 });
    expect(await times(10, jwt)).toEqual([...Array(3).fill('OK'), ...Array(7).fill('UNAVAILABLE')]);
    caller = 'b';
    expect(await times(3, jwt)).toEqual(['OK', 'OK', 'OK']);
    caller = 'a';
    expect(await jwt()).toBe('UNAVAILABLE'); // still empty: b's calls took nothing from a
    now += 1000; // a second later a's bucket holds 3 again (rate 3/s), no more
    expect(await times(4, jwt)).toEqual(['OK', 'OK', 'OK', 'UNAVAILABLE']);
    expect(limiter.exceeded()).toMatchObject({ FetchJWTSVID: 9, FetchX509SVID: 0 });
    // the limit is per method: FetchX509Bundles is not limited here
    expect(await outcome((async () => { for await (const r of client.fetchX509Bundles()) return r; })())).toBe('OK');
  });

  it('FetchX509SVID is limited at stream establishment: opens beyond the limit fail, open streams keep receiving updates', async () => {
    await start({ fetchX509Svid: 2 });
    const s1 = await openX509Stream();
    const s2 = await openX509Stream();
    expect(s1.first.value?.svids[0]?.spiffeId).toBe(WEB);
    expect(s2.first.value?.svids[0]?.spiffeId).toBe(WEB);
    expect(await outcome(openX509Stream())).toBe('UNAVAILABLE');
    caller = 'b';
    const other = await openX509Stream();
    expect(other.first.value?.svids[0]?.spiffeId).toBe(WEB);
    // a rotation reaches the open streams: messages on an established stream are never limited
    const renewed = await issueX509Svid(own, { entryId: 'e-web', spiffeId: WEB });
    source.put({ entryId: 'e-web', spiffeId: WEB, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: '', federatesWith: [], svid: renewed });
    for (const s of [s1, s2, other]) {
      const next = await s.it.next();
      expect(new Uint8Array(next.value!.svids[0]!.x509Svid)).toEqual(concatBytes(renewed.certChain));
      await s.it.return?.();
    }
    expect(limiter.exceeded().FetchX509SVID).toBe(1);
  });

  it('FetchX509Bundles and FetchJWTBundles have their own buckets per selector set', async () => {
    await start({ fetchX509Bundles: 1, fetchJwtBundles: 1 });
    const x509Bundles = () => outcome((async () => { for await (const r of client.fetchX509Bundles()) return r; })());
    const jwtBundles = () => outcome((async () => { for await (const r of client.fetchJWTBundles()) return r; })());
    expect([await x509Bundles(), await x509Bundles()]).toEqual(['OK', 'UNAVAILABLE']);
    expect([await jwtBundles(), await jwtBundles()]).toEqual(['OK', 'UNAVAILABLE']);
    caller = 'b';
    expect([await x509Bundles(), await jwtBundles()]).toEqual(['OK', 'OK']);
    expect(limiter.exceeded()).toMatchObject({ FetchX509Bundles: 1, FetchJWTBundles: 1 });
  });

  it('callers with no selectors share one <unattested> bucket', async () => {
    await start({ fetchX509Bundles: 1 });
    caller = 'none';
    const bundles = () => outcome((async () => { for await (const r of client.fetchX509Bundles()) return r; })());
    // the first is let through (and denied for lack of identity), the second finds the shared bucket empty
    expect([await bundles(), await bundles()]).toEqual(['PERMISSION_DENIED', 'UNAVAILABLE']);
    expect(warnings[0]).toMatchObject({ method: 'FetchX509Bundles', selectors: UNATTESTED_KEY });
  });

  it('limits of 0 (and absent ones) leave every method unlimited', async () => {
    await start({ fetchJwtSvid: 0, fetchX509Svid: 0 });
    expect(limiter.active).toBe(false);
    expect(new Set(await times(50, jwt))).toEqual(new Set(['OK']));
    for (let i = 0; i < 5; i++) await (await openX509Stream()).it.return?.();
    expect(limiter.exceeded()).toMatchObject({ FetchJWTSVID: 0, FetchX509SVID: 0 });
  });

  it('logs a flood once per selector set and interval, with how many were refused meanwhile, and no secret', async () => {
    await start({ fetchJwtSvid: 1 });
    expect(await times(21, jwt)).toEqual(['OK', ...Array(20).fill('UNAVAILABLE')]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ method: 'FetchJWTSVID', pid: process.pid, uid: UID, refused_since_last_log: 0, limit_per_second: 1 });
    expect(String(warnings[0]!.selectors)).toContain(`unix:uid:${UID}`);
    caller = 'b';
    expect(await times(3, jwt)).toEqual(['OK', 'UNAVAILABLE', 'UNAVAILABLE']);
    expect(warnings).toHaveLength(2); // another selector set: its own line
    caller = 'a';
    now += REFUSAL_LOG_INTERVAL_MS;
    expect(await times(2, jwt)).toEqual(['OK', 'UNAVAILABLE']);
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatchObject({ method: 'FetchJWTSVID', refused_since_last_log: 19 });
    expect(JSON.stringify(warnings)).not.toMatch(/eyJ|PRIVATE KEY/);
  });

  it('healthcheck stays healthy while its caller is rate-limited (the probe is exempt in effect)', async () => {
    await start({ fetchX509Bundles: 1 });
    expect(await healthcheck({ address: `unix://${socketPath}`, timeoutMs: 2000 })).toEqual({ healthy: true, detail: 'agent is ready' });
    expect(await healthcheck({ address: `unix://${socketPath}`, timeoutMs: 2000 })).toEqual({ healthy: true, detail: 'agent is ready (caller is rate-limited)' });
    source.ready = false; // any other Unavailable is still unhealthy
    expect((await healthcheck({ address: `unix://${socketPath}`, timeoutMs: 2000 })).healthy).toBe(false);
  });
});

describe('SDS rate limits (the same limiter, after the same attestation)', () => {
  const fetchSecrets = () =>
    outcome(
      new Promise((resolve, reject) =>
        sdsClient.fetchSecrets(create(DiscoveryRequestSchema, { typeUrl: SECRET_TYPE, resourceNames: ['default'] }), (err, res) => (err ? reject(err) : resolve(res))),
      ),
    );

  /** Opens StreamSecrets, asks for "default", resolves with the first response (or rejects with the call's error). */
  function openSdsStream(): Promise<{ res: DiscoveryResponse; call: ClientDuplexStream<unknown, DiscoveryResponse> }> {
    const call = sdsClient.streamSecrets();
    return new Promise((resolve, reject) => {
      call.once('data', (res: DiscoveryResponse) => resolve({ res, call }));
      call.once('error', reject);
      call.write(create(DiscoveryRequestSchema, { typeUrl: SECRET_TYPE, resourceNames: ['default'] }));
    });
  }

  it('FetchSecrets: per call, per selector set', async () => {
    await start({ fetchSecrets: 2 });
    expect(await times(5, fetchSecrets)).toEqual(['OK', 'OK', 'UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    caller = 'b';
    expect(await times(2, fetchSecrets)).toEqual(['OK', 'OK']);
    expect(limiter.exceeded().FetchSecrets).toBe(3);
  });

  it('StreamSecrets: per stream opened; the open stream goes on; another selector set opens its own', async () => {
    await start({ streamSecrets: 1, fetchSecrets: 0 });
    const open = await openSdsStream();
    expect(open.res.resources).toHaveLength(1);
    expect(await outcome(openSdsStream())).toBe('UNAVAILABLE');
    caller = 'b';
    const other = await openSdsStream();
    expect(other.res.resources).toHaveLength(1);
    expect(await fetchSecrets()).toBe('OK'); // FetchSecrets has no limit here
    open.call.cancel();
    other.call.cancel();
    expect(limiter.exceeded()).toMatchObject({ StreamSecrets: 1, FetchSecrets: 0 });
  });

  it('the Workload API and SDS share the limiter but not the buckets of different methods', async () => {
    await start({ fetchJwtSvid: 1, fetchSecrets: 1 });
    expect([await jwt(), await jwt()]).toEqual(['OK', 'UNAVAILABLE']);
    expect([await fetchSecrets(), await fetchSecrets()]).toEqual(['OK', 'UNAVAILABLE']);
  });
});
