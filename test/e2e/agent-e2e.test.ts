// End to end: the real issuer (wrangler dev: workerd, local D1 + Durable Objects), a real wisp-agent process,
// and real gRPC clients on its socket — in this process, and as other uids through setpriv.
import 'reflect-metadata';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, isGrpcError, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { adminCall, agentCli, REPO_ROOT, startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { certsOf, toPem, uriSans } from '../helpers/node/der.js';
import { asUid, otherUidCannotRead, runnableByOtherUids } from '../helpers/node/other-uid.js';

const TD = 'example.org';
const ID_A = `spiffe://${TD}/workload/a`;
const ID_B = `spiffe://${TD}/workload/b`;
const ID_C = `spiffe://${TD}/workload/c`;
const OTHER_UID = 65534;
const UID_WITHOUT_ENTRY = 65533;
const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const AGENT_MAIN = join(REPO_ROOT, 'src', 'agent', 'main.ts');
const isRoot = process.getuid?.() === 0;

let root: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let agentId: string;
let client: WorkloadApiClient;
let socketPath: string;
/** the Node binary other uids run (other-uid.ts), and why they cannot run the CLI, when they cannot */
let otherUidNode: string;
let otherUidBlocked: string | undefined;
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

function agentOptions(joinToken?: string) {
  return { serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent-data'), socketPath, joinToken, syncIntervalSeconds: 1 };
}

async function firstX509(c: WorkloadApiClient = client) {
  const ac = new AbortController();
  for await (const msg of c.fetchX509SVID({ signal: ac.signal })) {
    ac.abort();
    return msg;
  }
  throw new Error('stream ended without a message');
}

/** Runs the agent CLI as another uid (a different workload, as the kernel sees it). */
function cliAs(runAsUid: number, args: string[]) {
  return spawnSync(...asUid(runAsUid, [otherUidNode, TSX, AGENT_MAIN, ...args]), {
    cwd: REPO_ROOT,
    env: { ...process.env, HOME: '/tmp', SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-e2e-'));
  chmodSync(root, 0o755); // other uids must reach the socket directory
  if (isRoot) {
    otherUidNode = runnableByOtherUids(process.execPath, root);
    otherUidBlocked = otherUidCannotRead(OTHER_UID, otherUidNode, [TSX, AGENT_MAIN]);
  }
  socketPath = join(root, 'run', 'agent.sock');
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD, vars: { X509_SVID_TTL: '30s', CA_TTL: '2h' } });
  const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 300 });
  agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
  const entry = (spiffeId: string, selector: string, extra: Record<string, unknown> = {}) =>
    adminCall(issuer, 'POST', '/entries', { spiffeId, parentId: agentId, selectors: [{ type: 'unix', value: selector }], ...extra });
  await entry(ID_A, `uid:${uid}`, { dnsNames: ['a.example.test'] });
  await entry(ID_B, `uid:${OTHER_UID}`);
  await entry(ID_C, `gid:${gid}`);
  agent = await startAgent(agentOptions(token));
  client = createWorkloadApiClient(`unix://${socketPath}`);
  await waitFor('the first X509-SVIDs', async () => ((await firstX509()).svids.length >= 2 ? true : undefined), 60_000, 500);
}, 180_000);

afterAll(async () => {
  client?.close();
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the issuer under wrangler dev', () => {
  it('serves discovery, JWKS, the SPIFFE bundle and health', async () => {
    const discovery = await fetch(`${issuer.url}/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200);
    expect(discovery.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const doc = (await discovery.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ issuer: issuer.url, jwks_uri: `${issuer.url}/keys` });
    const jwks = (await (await fetch(`${issuer.url}/keys`)).json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) expect(key).toMatchObject({ use: 'sig', kid: expect.any(String), alg: expect.any(String) });
    const bundle = (await (await fetch(`${issuer.url}/bundle`)).json()) as { keys: Array<Record<string, unknown>>; spiffe_sequence: number };
    expect(bundle.spiffe_sequence).toBeGreaterThan(0);
    expect(bundle.keys.filter((k) => k.use === 'x509-svid').every((k) => (k.x5c as string[]).length === 1)).toBe(true);
    expect(bundle.keys.some((k) => k.use === 'jwt-svid' && typeof k.kid === 'string')).toBe(true);
    expect((await fetch(`${issuer.url}/healthz`)).status).toBe(200);
  });
});

describe('a workload on the agent socket', () => {
  it('gets X509-SVIDs that verify against the bundle with node:crypto and openssl', async () => {
    const msg = await firstX509();
    const ids = msg.svids.map((s) => s.spiffeId).sort();
    expect(ids).toEqual([ID_A, ID_C]);
    const a = msg.svids.find((s) => s.spiffeId === ID_A)!;
    const chain = certsOf(a.x509Svid);
    const roots = certsOf(a.bundle);
    const leaf = chain[0]!;
    expect(uriSans(leaf)).toEqual([ID_A]);
    expect(leaf.subjectAltName).toContain('DNS:a.example.test');
    expect(leaf.ca).toBe(false);
    const issuerCert = chain[1] ?? roots.find((r) => leaf.checkIssued(r))!;
    expect(leaf.verify(issuerCert.publicKey)).toBe(true);

    const dir = join(root, 'openssl');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'svid.pem'), toPem('CERTIFICATE', chain[0]!.raw));
    writeFileSync(join(dir, 'chain.pem'), chain.slice(1).map((c) => toPem('CERTIFICATE', c.raw)).join('') || '\n');
    writeFileSync(join(dir, 'bundle.pem'), roots.map((r) => toPem('CERTIFICATE', r.raw)).join(''));
    const untrusted = chain.length > 1 ? ['-untrusted', join(dir, 'chain.pem')] : [];
    const verified = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'bundle.pem'), ...untrusted, join(dir, 'svid.pem')], { encoding: 'utf8' });
    expect(verified.trim()).toBe(`${join(dir, 'svid.pem')}: OK`);
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'svid.pem'), '-noout', '-text'], { encoding: 'utf8' });
    expect(text).toContain(`URI:${ID_A}`);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/Digital Signature/);
    // the key is PKCS#8 DER and matches the certificate
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const key = createPrivateKey({ key: Buffer.from(a.x509SvidKey), format: 'der', type: 'pkcs8' });
    expect(createPublicKey(key).export({ format: 'der', type: 'spki' })).toEqual(leaf.publicKey.export({ format: 'der', type: 'spki' }));
  });

  it.skipIf(!isRoot)('completes mutual TLS between two workloads (different uids), each checking the peer SPIFFE ID', async (ctx) => {
    if (otherUidBlocked) ctx.skip(otherUidBlocked);
    const msg = await firstX509();
    const a = msg.svids.find((s) => s.spiffeId === ID_A)!;
    const outDir = join(root, 'workload-b');
    mkdirSync(outDir, { recursive: true });
    chmodSync(outDir, 0o777);
    const fetched = cliAs(OTHER_UID, ['api', 'fetch', 'x509', '--write', outDir]);
    expect(fetched.status, fetched.stderr).toBe(0);
    expect(fetched.stdout).toContain(ID_B);
    const bundlePem = certsOf(a.bundle).map((c) => toPem('CERTIFICATE', c.raw)).join('');
    const serverKey = toPem('PRIVATE KEY', a.x509SvidKey);
    const serverChain = certsOf(a.x509Svid).map((c) => toPem('CERTIFICATE', c.raw)).join('');

    const peerOf = (s: TLSSocket) => (s.getPeerCertificate().subjectaltname ?? '').split(', ').filter((x) => x.startsWith('URI:')).map((x) => x.slice(4));
    const server = createServer({ key: serverKey, cert: serverChain, ca: bundlePem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' });
    const serverSaw = new Promise<string[]>((resolve) => {
      server.on('secureConnection', (s) => {
        const ids = peerOf(s);
        s.end(ids[0] === ID_B ? 'hello b' : 'wrong peer');
        resolve(ids);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const reply = await new Promise<{ data: string; ids: string[] }>((resolve, reject) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        key: readFileSync(join(outDir, 'svid.0.key')),
        cert: readFileSync(join(outDir, 'svid.0.pem')),
        ca: readFileSync(join(outDir, 'bundle.0.pem')),
        // SPIFFE authenticates by SPIFFE ID, not host name (X509-SVID §5)
        checkServerIdentity: (_host, cert) => (cert.subjectaltname?.includes(`URI:${ID_A}`) ? undefined : new Error('unexpected server SPIFFE ID')),
      });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => resolve({ data, ids: peerOf(sock) }));
      sock.on('error', reject);
    });
    server.close();
    expect(await serverSaw).toEqual([ID_B]);
    expect(reply).toEqual({ data: 'hello b', ids: [ID_A] });
  });

  it('gets a JWT-SVID that validates against the issuer public JWKS with jose', async () => {
    const res = await client.fetchJWTSVID({ audience: ['e2e-audience'] });
    const tokenA = res.svids.find((s) => s.spiffeId === ID_A)!;
    const jwks = createRemoteJWKSet(new URL(`${issuer.url}/keys`));
    const { payload, protectedHeader } = await jwtVerify(tokenA.svid, jwks, { audience: 'e2e-audience', issuer: issuer.url });
    expect(payload.sub).toBe(ID_A);
    expect(protectedHeader.kid).toBeTruthy();
    const validated = await client.validateJWTSVID({ audience: 'e2e-audience', svid: tokenA.svid });
    expect(validated.spiffeId).toBe(ID_A);
  });

  it('refuses a call without the workload.spiffe.io header with InvalidArgument', async () => {
    const bare = createWorkloadApiClient(`unix://${socketPath}`, { securityHeader: false });
    try {
      await expect(bare.fetchJWTSVID({ audience: ['x'] })).rejects.toSatisfy((e: unknown) => isGrpcError(e, 3));
    } finally {
      bare.close();
    }
  });

  it.skipIf(!isRoot)('answers PermissionDenied to a uid with no entry', (ctx) => {
    if (otherUidBlocked) ctx.skip(otherUidBlocked);
    const res = cliAs(UID_WITHOUT_ENTRY, ['api', 'fetch', 'x509']);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/PermissionDenied|permission denied|no identity/i);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('drops a deleted entry from the open stream', async () => {
    const entries = await adminCall<{ entries: Array<{ id: string; spiffeId: string }> }>(issuer, 'GET', `/entries?spiffeId=${encodeURIComponent(ID_C)}`);
    const ac = new AbortController();
    const stream = client.fetchX509SVID({ signal: ac.signal })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.value.svids.map((s: { spiffeId: string }) => s.spiffeId)).toContain(ID_C);
    await adminCall(issuer, 'DELETE', `/entries/${entries.entries[0]!.id}`);
    for (;;) {
      const next = await stream.next();
      if (next.done) throw new Error('stream ended');
      const ids = next.value.svids.map((s: { spiffeId: string }) => s.spiffeId);
      if (!ids.includes(ID_C)) {
        expect(ids).toEqual([ID_A]);
        break;
      }
    }
    ac.abort();
  }, 30_000);

  it('sees a renewed SVID arrive on an open stream', async () => {
    const ac = new AbortController();
    let firstSerial: string | undefined;
    for await (const msg of client.fetchX509SVID({ signal: ac.signal })) {
      const a = msg.svids.find((s) => s.spiffeId === ID_A)!;
      const serial = certsOf(a.x509Svid)[0]!.serialNumber;
      if (firstSerial === undefined) firstSerial = serial;
      else if (serial !== firstSerial) {
        ac.abort();
        break;
      }
    }
    expect(firstSerial).toBeDefined();
  }, 60_000);

  it('keeps its identity across an agent restart without a new token', async () => {
    const before = await firstX509();
    await agent.stop();
    agent = await startAgent(agentOptions(undefined));
    client.close();
    client = createWorkloadApiClient(`unix://${socketPath}`);
    const after = await waitFor('SVIDs after restart', async () => {
      const msg = await firstX509();
      return msg.svids.length > 0 ? msg : undefined;
    });
    expect(after.svids.map((s) => s.spiffeId)).toEqual(before.svids.map((s) => s.spiffeId));
    expect(agent.output()).toContain('reusing stored agent SVID');
    expect(agent.output()).not.toContain('node attested');
    const { count } = await adminCall<{ count: number }>(issuer, 'GET', '/agents/count');
    expect(count).toBe(1);
  }, 90_000);

  it('keeps serving cached SVIDs while the issuer is down', async () => {
    await issuer.stop();
    const res = await fetch(`${issuer.url}/healthz`).then(() => 'up', () => 'down');
    expect(res).toBe('down');
    const fresh = createWorkloadApiClient(`unix://${socketPath}`);
    try {
      const msg = await firstX509(fresh);
      expect(msg.svids.map((s) => s.spiffeId)).toContain(ID_A);
    } finally {
      fresh.close();
    }
    const health = await agentCli(['healthcheck', '--socketPath', `unix://${socketPath}`]);
    expect(health.code).toBe(0);
  });

  it('restarted while the issuer is down, serves the SVIDs it persisted', async () => {
    await agent.stop();
    agent = await startAgent(agentOptions(undefined));
    const fresh = createWorkloadApiClient(`unix://${socketPath}`);
    try {
      const msg = await waitFor('cached SVIDs after a restart without the issuer', async () => {
        const m = await firstX509(fresh);
        return m.svids.length > 0 ? m : undefined;
      }, 20_000);
      expect(msg.svids.map((s) => s.spiffeId)).toContain(ID_A);
    } finally {
      fresh.close();
    }
  }, 60_000);
});
