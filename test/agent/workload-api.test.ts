// The Workload API end to end in one process: the real server on a Unix socket in a tmpdir, the real unix
// attestor (SO_PEERCRED of this test process), an in-memory IdentitySource with real certificates and keys,
// and the real grpc-js client built from the generated code.
import { status } from '@grpc/grpc-js';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, isGrpcError, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { createWorkloadApi, type WorkloadApiDeps } from '../../src/agent/workload-api/handler.js';
import { WispError } from '../../src/shared/errors.js';
import { createCallerRateLimiter } from '../../src/agent/workload-api/rate-limit.js';
import { startWorkloadApiServer, type WorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createUnixAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { createTrustDomain, issueX509Svid, signJwtSvid, type TestTrustDomain } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';
import { asUid } from '../helpers/node/other-uid.js';

const UID = process.getuid!();
const OWN = 'example.org';
const PARTNER = 'partner.example';
const WEB = `spiffe://${OWN}/web`;

let own: TestTrustDomain;
let partner: TestTrustDomain;
let dir: string;
let socketPath: string;
let source: MemoryIdentitySource;
let server: WorkloadApiServer;
let client: WorkloadApiClient;

async function expectGrpcError(promise: Promise<unknown>, code: status): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isGrpcError(err), `expected gRPC error ${status[code]}, got ${String(err)}`).toBe(true);
  expect(status[(err as { code: status }).code]).toBe(status[code]);
}

async function first<T>(stream: AsyncIterable<T>): Promise<T> {
  for await (const message of stream) return message;
  throw new Error('stream ended without a message');
}

async function waitFor(check: () => boolean, timeoutMs = 1000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function webEntry(extra: { hint?: string; federatesWith?: string[] } = {}) {
  const svid = await issueX509Svid(own, { entryId: 'e-web', spiffeId: WEB, ...extra });
  source.put({ entryId: 'e-web', spiffeId: WEB, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: extra.hint ?? '', federatesWith: extra.federatesWith ?? [], svid });
  return svid;
}

beforeAll(async () => {
  own = await createTrustDomain(OWN);
  partner = await createTrustDomain(PARTNER);
  dir = mkdtempSync(join(tmpdir(), 'wisp-wl-'));
  chmodSync(dir, 0o755); // another uid must reach the socket
  socketPath = join(dir, 'run', 'agent.sock');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(overrides: Partial<WorkloadApiDeps> = {}) {
  source = new MemoryIdentitySource(own, [partner]);
  const impl = createWorkloadApi({ attest: createUnixAttestor(), source, updateDelayMs: 50, ...overrides });
  server = await startWorkloadApiServer({ socketPath, impl });
  client = createWorkloadApiClient(`unix://${socketPath}`);
}

afterEach(async () => {
  client?.close();
  await server?.close(200);
});

describe('Workload API server', () => {
  it('serves FetchX509SVID: chain and bundle as DER, key as PKCS#8, federated bundles keyed by trust domain ID', async () => {
    await start();
    const svid = await webEntry({ hint: 'internal', federatesWith: [PARTNER] });
    const res = await first(client.fetchX509SVID());
    expect(res.svids).toHaveLength(1);
    const got = res.svids[0]!;
    expect(got.spiffeId).toBe(WEB);
    expect(got.hint).toBe('internal');
    expect(Buffer.from(got.x509Svid)).toEqual(Buffer.from(svid.certChain[0]!));
    const cert = new X509Certificate(Buffer.from(got.x509Svid));
    expect(cert.subjectAltName).toContain(`URI:${WEB}`);
    expect(cert.checkPrivateKey(createPrivateKey({ key: Buffer.from(got.x509SvidKey), format: 'der', type: 'pkcs8' }))).toBe(true);
    expect(Buffer.from(got.bundle)).toEqual(Buffer.from(own.caCert.rawData));
    expect(cert.verify(new X509Certificate(Buffer.from(got.bundle)).publicKey)).toBe(true);
    expect(Object.keys(res.federatedBundles)).toEqual([`spiffe://${PARTNER}`]);
    expect(Buffer.from(res.federatedBundles[`spiffe://${PARTNER}`]!)).toEqual(Buffer.from(partner.caCert.rawData));
  });

  it('concatenates a chain leaf first and several CA certificates into one bundle', async () => {
    await start();
    const svid = await webEntry();
    const intermediate = new Uint8Array(partner.caCert.rawData); // any DER certificate stands in
    svid.certChain.push(intermediate);
    const second = await createTrustDomain(OWN);
    own.bundle.x509Authorities.push(second.bundle.x509Authorities[0]!);
    try {
      const got = (await first(client.fetchX509SVID())).svids[0]!;
      expect(Buffer.from(got.x509Svid)).toEqual(Buffer.concat([svid.certChain[0]!, intermediate]));
      expect(Buffer.from(got.bundle)).toEqual(Buffer.concat(own.bundle.x509Authorities));
    } finally {
      own.bundle.x509Authorities.pop();
    }
  });

  it('streams FetchX509SVID again within 1 s after a rotation, and not for unrelated no-op changes', async () => {
    await start();
    const before = await webEntry();
    const controller = new AbortController();
    const iterator = client.fetchX509SVID({ signal: controller.signal })[Symbol.asyncIterator]();
    const firstMessage = await iterator.next();
    expect(Buffer.from(firstMessage.value!.svids[0]!.x509Svid)).toEqual(Buffer.from(before.certChain[0]!));

    source.notify(); // nothing changed: no message
    await new Promise((r) => setTimeout(r, 150));
    const rotatedAt = Date.now();
    const after = await webEntry();
    const next = await iterator.next();
    expect(Date.now() - rotatedAt).toBeLessThan(1000);
    expect(Buffer.from(next.value!.svids[0]!.x509Svid)).toEqual(Buffer.from(after.certChain[0]!));
    controller.abort();
    await iterator.return?.();
  });

  it('unsubscribes from the IdentitySource when the client cancels a stream', async () => {
    await start();
    await webEntry();
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    const streams = [
      client.fetchX509SVID({ signal: controllers[0]!.signal }),
      client.fetchX509Bundles({ signal: controllers[1]!.signal }),
      client.fetchJWTBundles({ signal: controllers[2]!.signal }),
    ];
    const iterators = streams.map((s) => s[Symbol.asyncIterator]());
    await Promise.all(iterators.map((it) => it.next()));
    expect(source.subscriberCount).toBe(3);
    for (const c of controllers) c.abort();
    await Promise.all(iterators.map((it) => it.next()));
    await waitFor(() => source.subscriberCount === 0);
  });

  it('unsubscribes when a stream ends because the identity is removed (PermissionDenied)', async () => {
    await start();
    await webEntry();
    const iterator = client.fetchX509SVID()[Symbol.asyncIterator]();
    await iterator.next();
    source.remove('e-web');
    await expectGrpcError(iterator.next(), status.PERMISSION_DENIED);
    await waitFor(() => source.subscriberCount === 0);
  });

  it('waits for an X509-SVID the caller is entitled to but that is not minted yet', async () => {
    await start();
    source.put({ entryId: 'e-web', spiffeId: WEB, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: '', federatesWith: [] });
    const pending = first(client.fetchX509SVID());
    await new Promise((r) => setTimeout(r, 100));
    await webEntry();
    expect((await pending).svids[0]!.spiffeId).toBe(WEB);
  });

  it('serves FetchX509Bundles and FetchJWTBundles keyed spiffe://<td>, with federated bundles of the caller', async () => {
    await start();
    await webEntry({ federatesWith: [PARTNER] });
    const x509 = await first(client.fetchX509Bundles());
    expect(Object.keys(x509.bundles).sort()).toEqual([`spiffe://${OWN}`, `spiffe://${PARTNER}`]);
    expect(Buffer.from(x509.bundles[`spiffe://${OWN}`]!)).toEqual(Buffer.from(own.caCert.rawData));
    const jwt = await first(client.fetchJWTBundles());
    const jwks = JSON.parse(Buffer.from(jwt.bundles[`spiffe://${OWN}`]!).toString('utf8')) as { keys: Array<{ kid: string; d?: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([own.jwtKid]);
    expect(jwks.keys[0]!.d).toBeUndefined();
    expect(Object.keys(jwt.bundles).sort()).toEqual([`spiffe://${OWN}`, `spiffe://${PARTNER}`]);
  });

  it('serves FetchJWTSVID and validates the token with ValidateJWTSVID', async () => {
    await start();
    await webEntry({ hint: 'internal' });
    const res = await client.fetchJWTSVID({ audience: ['spiffe://example.org/db'] });
    expect(res.svids.map((s) => [s.spiffeId, s.hint])).toEqual([[WEB, 'internal']]);
    const token = res.svids[0]!.svid;

    const validated = await client.validateJWTSVID({ audience: 'spiffe://example.org/db', svid: token });
    expect(validated.spiffeId).toBe(WEB);
    expect(validated.claims).toMatchObject({ sub: WEB, aud: ['spiffe://example.org/db'] });
    expect(typeof validated.claims!.exp).toBe('number');

    await expectGrpcError(client.validateJWTSVID({ audience: 'spiffe://example.org/other', svid: token }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.validateJWTSVID({ audience: 'a', svid: 'not-a-jwt' }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.validateJWTSVID({ audience: '', svid: token }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.validateJWTSVID({ audience: 'a', svid: '' }), status.INVALID_ARGUMENT);
  });

  it('validates a federated JWT-SVID against the partner bundle and rejects an expired or foreign one', async () => {
    await start();
    await webEntry();
    const partnerToken = await signJwtSvid(partner, `spiffe://${PARTNER}/api`, ['me']);
    expect((await client.validateJWTSVID({ audience: 'me', svid: partnerToken })).spiffeId).toBe(`spiffe://${PARTNER}/api`);
    const expired = await signJwtSvid(own, WEB, ['me'], -120);
    await expectGrpcError(client.validateJWTSVID({ audience: 'me', svid: expired }), status.INVALID_ARGUMENT);
    const stranger = await createTrustDomain('stranger.example');
    const foreign = await signJwtSvid(stranger, 'spiffe://stranger.example/x', ['me']);
    await expectGrpcError(client.validateJWTSVID({ audience: 'me', svid: foreign }), status.INVALID_ARGUMENT);
    const forged = await signJwtSvid({ ...stranger, jwtKid: own.jwtKid }, WEB, ['me']);
    await expectGrpcError(client.validateJWTSVID({ audience: 'me', svid: forged }), status.INVALID_ARGUMENT);
  });

  it('FetchJWTSVID: audience is required, a requested spiffe_id must be held', async () => {
    await start();
    await webEntry();
    await expectGrpcError(client.fetchJWTSVID({ audience: [] }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.fetchJWTSVID({ audience: ['a'], spiffeId: 'not a spiffe id' }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.fetchJWTSVID({ audience: ['a'], spiffeId: `spiffe://${OWN}/db` }), status.PERMISSION_DENIED);
    const res = await client.fetchJWTSVID({ audience: ['a'], spiffeId: WEB });
    expect(res.svids.map((s) => s.spiffeId)).toEqual([WEB]);
  });

  it('answers PermissionDenied "no identity issued" to a caller with no entry, on every method but ValidateJWTSVID', async () => {
    await start();
    source.put({ entryId: 'e-other', spiffeId: `spiffe://${OWN}/other`, selectors: [{ type: 'unix', value: 'uid:4242' }], hint: '', federatesWith: [] });
    await expectGrpcError(first(client.fetchX509SVID()), status.PERMISSION_DENIED);
    await expectGrpcError(first(client.fetchX509Bundles()), status.PERMISSION_DENIED);
    await expectGrpcError(first(client.fetchJWTBundles()), status.PERMISSION_DENIED);
    await expectGrpcError(client.fetchJWTSVID({ audience: ['a'] }), status.PERMISSION_DENIED);
    const err = await client.fetchJWTSVID({ audience: ['a'] }).catch((e: unknown) => e);
    expect((err as { details: string }).details).toBe('no identity issued');
  });

  it('validates a JWT-SVID for an attested caller that holds no identity (as spire-agent), and still rejects a bad one', async () => {
    await start();
    // this process's selectors (unix:uid:…) match no entry: a validator-only workload
    source.put({ entryId: 'e-other', spiffeId: `spiffe://${OWN}/other`, selectors: [{ type: 'unix', value: 'uid:4242' }], hint: '', federatesWith: [] });
    await expectGrpcError(first(client.fetchJWTBundles()), status.PERMISSION_DENIED);
    const token = await signJwtSvid(own, `spiffe://${OWN}/other`, ['validator']);
    const validated = await client.validateJWTSVID({ audience: 'validator', svid: token });
    expect(validated.spiffeId).toBe(`spiffe://${OWN}/other`);
    expect(validated.claims).toMatchObject({ sub: `spiffe://${OWN}/other`, aud: ['validator'] });
    await expectGrpcError(client.validateJWTSVID({ audience: 'a', svid: 'x.y.z' }), status.INVALID_ARGUMENT);
    await expectGrpcError(client.validateJWTSVID({ audience: 'someone-else', svid: token }), status.INVALID_ARGUMENT);
    const stranger = await createTrustDomain('stranger.example');
    const forged = await signJwtSvid({ ...stranger, jwtKid: own.jwtKid }, `spiffe://${OWN}/other`, ['validator']);
    await expectGrpcError(client.validateJWTSVID({ audience: 'validator', svid: forged }), status.INVALID_ARGUMENT);
    source.ready = false;
    await expectGrpcError(client.validateJWTSVID({ audience: 'validator', svid: token }), status.UNAVAILABLE);
  });

  it('rejects every call without the workload.spiffe.io header with InvalidArgument', async () => {
    await start();
    await webEntry();
    const bare = createWorkloadApiClient(`unix://${socketPath}`, { securityHeader: false });
    try {
      await expectGrpcError(first(bare.fetchX509SVID()), status.INVALID_ARGUMENT);
      await expectGrpcError(first(bare.fetchX509Bundles()), status.INVALID_ARGUMENT);
      await expectGrpcError(first(bare.fetchJWTBundles()), status.INVALID_ARGUMENT);
      await expectGrpcError(bare.fetchJWTSVID({ audience: ['a'] }), status.INVALID_ARGUMENT);
      await expectGrpcError(bare.validateJWTSVID({ audience: 'a', svid: 'x' }), status.INVALID_ARGUMENT);
    } finally {
      bare.close();
    }
  });

  it('answers Unavailable while the agent is not ready', async () => {
    await start();
    await webEntry();
    source.ready = false;
    await expectGrpcError(first(client.fetchX509SVID()), status.UNAVAILABLE);
    await expectGrpcError(client.fetchJWTSVID({ audience: ['a'] }), status.UNAVAILABLE);
  });

  it('answers Unavailable when workload attestation fails', async () => {
    await start({
      attest: async () => {
        throw new WispError('ERR_UNAVAILABLE', 'workload attestation failed: pid 1 was reused');
      },
    });
    await webEntry();
    await expectGrpcError(first(client.fetchX509SVID()), status.UNAVAILABLE);
    client.close();
    await server.close(200);
    await start({ attest: async () => Promise.reject(new Error('EACCES /proc')) });
    await webEntry();
    await expectGrpcError(client.fetchJWTSVID({ audience: ['a'] }), status.UNAVAILABLE);
  });

  it('keeps the first SVID of a duplicated hint, in the X509 and JWT responses', async () => {
    await start();
    const selectors = [{ type: 'unix', value: `uid:${UID}` }];
    for (const [entryId, path, hint] of [['e1', 'a', 'internal'], ['e2', 'b', 'internal'], ['e3', 'c', 'external'], ['e4', 'd', '']] as const) {
      const spiffeId = `spiffe://${OWN}/${path}`;
      source.put({ entryId, spiffeId, selectors, hint, federatesWith: [], svid: await issueX509Svid(own, { entryId, spiffeId, hint }) });
    }
    const x509 = await first(client.fetchX509SVID());
    expect(x509.svids.map((s) => [s.spiffeId, s.hint])).toEqual([
      [`spiffe://${OWN}/a`, 'internal'],
      [`spiffe://${OWN}/c`, 'external'],
      [`spiffe://${OWN}/d`, ''],
    ]);
    const jwt = await client.fetchJWTSVID({ audience: ['a'] });
    expect(jwt.svids.map((s) => s.spiffeId)).toEqual([`spiffe://${OWN}/a`, `spiffe://${OWN}/c`, `spiffe://${OWN}/d`]);
  });

  it('serves bundles and validation to callers without identity when unauthenticated verifiers are allowed', async () => {
    await start({ allowUnauthenticatedVerifiers: true });
    const bundles = await first(client.fetchX509Bundles());
    expect(Object.keys(bundles.bundles)).toEqual([`spiffe://${OWN}`]);
    const token = await signJwtSvid(own, WEB, ['me']);
    expect((await client.validateJWTSVID({ audience: 'me', svid: token })).spiffeId).toBe(WEB);
    await expectGrpcError(first(client.fetchX509SVID()), status.PERMISSION_DENIED);
    await expectGrpcError(client.fetchJWTSVID({ audience: ['me'] }), status.PERMISSION_DENIED);
  });

  it('answers Unimplemented for the WIT-SVID profile', async () => {
    await start();
    const fns = client.grpc as unknown as Record<string, (req: unknown, md: unknown) => AsyncIterable<unknown>>;
    const { Metadata } = await import('@grpc/grpc-js');
    const { create } = await import('@bufbuild/protobuf');
    const { WITSVIDRequestSchema } = await import('../../src/node/workload-api/gen/workload_pb.js');
    const md = new Metadata();
    md.set('workload.spiffe.io', 'true');
    await expectGrpcError(first(fns.fetchWITSVID!.call(client.grpc, create(WITSVIDRequestSchema), md)), status.UNIMPLEMENTED);
  });

  it('creates the socket 0777 in a 0755 directory, replaces a stale socket, removes it on close', async () => {
    rmSync(join(dir, 'run'), { recursive: true, force: true });
    // a stale socket, as a crashed agent leaves it (bound, never unlinked)
    execFileSync('python3', ['-c', 'import socket,sys,os; os.makedirs(os.path.dirname(sys.argv[1]), mode=0o755); socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
    expect(lstatSync(socketPath).isSocket()).toBe(true);
    await start();
    expect(statSync(socketPath).mode & 0o777).toBe(0o777);
    await webEntry();
    expect((await first(client.fetchX509SVID())).svids).toHaveLength(1);
    expect(server.connectionCount()).toBe(1);
    client.close();
    await server.close(200);
    expect(existsSync(socketPath)).toBe(false);

    rmSync(join(dir, 'run'), { recursive: true, force: true });
    await start();
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o755);
  });

  it('opens every folder it makes on the way to the socket to other users, whatever the umask', async () => {
    const nested = join(dir, 'deep', 'er', 'agent.sock');
    const umask = process.umask(0o077);
    try {
      source = new MemoryIdentitySource(own, [partner]);
      server = await startWorkloadApiServer({ socketPath: nested, impl: createWorkloadApi({ attest: createUnixAttestor(), source }) });
    } finally {
      process.umask(umask);
    }
    expect(statSync(join(dir, 'deep')).mode & 0o777).toBe(0o755);
    expect(statSync(join(dir, 'deep', 'er')).mode & 0o777).toBe(0o755);
    expect(statSync(dir).mode & 0o777).toBe(0o755); // an existing folder is left as it is
    rmSync(join(dir, 'deep'), { recursive: true, force: true });
  });

  it('ends open streams with Unavailable when the server shuts down, and unsubscribes', async () => {
    await start();
    await webEntry();
    const iterator = client.fetchX509SVID()[Symbol.asyncIterator]();
    await iterator.next();
    const closing = server.close(500);
    await expectGrpcError(iterator.next(), status.UNAVAILABLE);
    await closing;
    expect(source.subscriberCount).toBe(0);
  });
});

describe('Workload API as another uid', () => {
  const isRoot = UID === 0;
  const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

  const tsx = resolve('node_modules/.bin/tsx');
  const script = resolve('test/helpers/node/agent/workload-client-script.ts');
  const run = (args: string[]) =>
    new Promise<string>((done, fail) => {
      const child = spawn(args[0]!, args.slice(1), { env: { ...process.env, HOME: dir, TSX_DISABLE_CACHE: '1' } });
      let out = '';
      let errOut = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
      child.on('exit', (code) => (code === 0 ? done(out) : fail(new Error(`client exited ${code}: ${errOut}`))));
    });

  it.skipIf(!isRoot || !hasSetpriv)('denies a uid with no entry (client run as 65534 via setpriv), serves this uid', async () => {
    await start();
    await webEntry();
    const other = await run(asUid(65534, [tsx, script, `unix://${socketPath}`]).flat());
    const results = other.trim().split('\n').map((l) => JSON.parse(l) as { method: string; ok: boolean; code?: number });
    expect(results).toEqual([
      { method: 'FetchX509SVID', ok: false, code: status.PERMISSION_DENIED },
      { method: 'FetchJWTSVID', ok: false, code: status.PERMISSION_DENIED },
      { method: 'FetchX509Bundles', ok: false, code: status.PERMISSION_DENIED },
    ]);
    const same = await run([tsx, script, `unix://${socketPath}`]);
    expect(same.trim().split('\n').map((l) => JSON.parse(l) as { ok: boolean }).every((r) => r.ok)).toBe(true);
  });

  it.skipIf(!isRoot || !hasSetpriv)('rate limits: this uid flooded and refused, a client as uid 65534 (another selector set) still served', async () => {
    // a stopped clock: no token comes back while the child processes start
    const limiter = createCallerRateLimiter({ fetchX509Svid: 1, fetchJwtSvid: 1, fetchX509Bundles: 1 }, { clock: () => 1_000_000 });
    await start({ limiter });
    await webEntry();
    const svid = await issueX509Svid(own, { entryId: 'e-nobody', spiffeId: `spiffe://${OWN}/nobody` });
    source.put({ entryId: 'e-nobody', spiffeId: `spiffe://${OWN}/nobody`, selectors: [{ type: 'unix', value: 'uid:65534' }], hint: '', federatesWith: [], svid });
    const parse = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as { method: string; ok: boolean; code?: number });
    // this process's selector set takes each method's one token, and a second client of the same set is refused
    expect(parse(await run([tsx, script, `unix://${socketPath}`])).every((r) => r.ok)).toBe(true);
    expect(parse(await run([tsx, script, `unix://${socketPath}`])).map((r) => r.code)).toEqual([status.UNAVAILABLE, status.UNAVAILABLE, status.UNAVAILABLE]);
    const other = parse(await run(asUid(65534, [tsx, script, `unix://${socketPath}`]).flat()));
    expect(other).toEqual([
      { method: 'FetchX509SVID', ok: true, spiffeIds: [`spiffe://${OWN}/nobody`] },
      { method: 'FetchJWTSVID', ok: true, spiffeIds: [`spiffe://${OWN}/nobody`] },
      { method: 'FetchX509Bundles', ok: true, spiffeIds: [`spiffe://${OWN}`] },
    ]);
    expect(limiter.exceeded()).toMatchObject({ FetchX509SVID: 1, FetchJWTSVID: 1, FetchX509Bundles: 1 });
  });

  it.skipIf(isRoot && hasSetpriv)('is skipped: needs root and setpriv to run a client as uid 65534', () => {
    expect(isRoot && hasSetpriv).toBe(false);
  });
});
