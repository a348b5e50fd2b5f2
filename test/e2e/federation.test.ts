// Two trust domains, end to end: two real issuers (wrangler dev) with an agent each, federated both ways
// over each other's /bundle endpoint with the `wisp` CLI (https_web profile; http is allowed on loopback).
// A workload of alpha.test completes mutual TLS with a workload of beta.test, each checking the other's
// SPIFFE ID against the federated bundle its agent serves; beta's agent validates alpha's JWT-SVIDs. An
// https_spiffe refresh from Node goes through a bundle endpoint served with beta's own X509-SVID. Deleting
// the relationship removes the federated bundle from the stream, and the handshake and validation fail.
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { adminCall, startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { certsOf, toPem } from '../helpers/node/der.js';
import { runWisp } from '../helpers/node/wisp-cli.js';

const ALPHA = 'alpha.test';
const BETA = 'beta.test';
const CLIENT_ID = `spiffe://${ALPHA}/client`;
const SERVER_ID = `spiffe://${BETA}/server`;
const uid = process.getuid?.() ?? 0;

interface Side {
  agentId: string;
  issuer: RunningIssuer;
  agent: RunningAgent;
  client: WorkloadApiClient;
}

let root: string;
let alpha: Side;
let beta: Side;

type X509Message = Awaited<ReturnType<typeof firstX509>>;

async function firstX509(c: WorkloadApiClient) {
  const ac = new AbortController();
  for await (const msg of c.fetchX509SVID({ signal: ac.signal })) {
    ac.abort();
    return msg;
  }
  throw new Error('stream ended without a message');
}

async function firstX509Bundles(c: WorkloadApiClient) {
  const ac = new AbortController();
  for await (const msg of c.fetchX509Bundles({ signal: ac.signal })) {
    ac.abort();
    return msg;
  }
  throw new Error('stream ended without a message');
}

async function firstJwtBundles(c: WorkloadApiClient) {
  const ac = new AbortController();
  for await (const msg of c.fetchJWTBundles({ signal: ac.signal })) {
    ac.abort();
    return msg;
  }
  throw new Error('stream ended without a message');
}

const wisp = (issuer: RunningIssuer, args: string[]) => runWisp(args, { env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken } });

async function ok(issuer: RunningIssuer, args: string[]): Promise<string> {
  const r = await wisp(issuer, args);
  expect(r.code, `wisp ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

async function startSide(td: string, spiffeId: string, federatesWith: string): Promise<Side> {
  const issuer = await startIssuer({ stateDir: join(root, `${td}-issuer`), trustDomain: td, vars: { X509_SVID_TTL: '10m', CA_TTL: '2h' } });
  const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 300 });
  const agentId = `spiffe://${td}/spire/agent/join_token/${token}`;
  await adminCall(issuer, 'POST', '/entries', { spiffeId, parentId: agentId, selectors: [{ type: 'unix', value: `uid:${uid}` }], federatesWith: [federatesWith] });
  const socketPath = join(root, `${td}.sock`);
  const agent = await startAgent({ serverUrl: issuer.url, trustDomain: td, dataDir: join(root, `${td}-agent`), socketPath, joinToken: token, syncIntervalSeconds: 1 });
  return { agentId, issuer, agent, client: createWorkloadApiClient(`unix://${socketPath}`) };
}

/** Waits until the X509-SVID stream's federated bundles satisfy `cond`. */
function waitForX509(side: Side, what: string, cond: (m: X509Message) => boolean): Promise<X509Message> {
  return waitFor(what, async () => {
    const m = await firstX509(side.client);
    return m.svids.length > 0 && cond(m) ? m : undefined;
  }, 60_000, 500);
}

const pemOf = (der: Uint8Array) => certsOf(der).map((c) => toPem('CERTIFICATE', c.raw)).join('');
const peerIds = (s: TLSSocket) => (s.getPeerCertificate().subjectaltname ?? '').split(', ').filter((x) => x.startsWith('URI:')).map((x) => x.slice(4));

/**
 * beta's workload serves TLS with its SVID and trusts only `trustedForClients`; alpha's workload connects
 * trusting only `trustedForServer`. Each checks the other's SPIFFE ID. Resolves with what each side saw.
 */
async function mutualTls(server: X509Message, trustedForClients: Uint8Array, client: X509Message, trustedForServer: Uint8Array) {
  const s = server.svids[0]!;
  const c = client.svids[0]!;
  const tlsServer = createServer({
    key: toPem('PRIVATE KEY', s.x509SvidKey),
    cert: pemOf(s.x509Svid),
    ca: pemOf(trustedForClients),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  const serverSaw = new Promise<string[]>((resolve) => {
    tlsServer.on('secureConnection', (sock) => {
      const ids = peerIds(sock);
      sock.end(ids[0] === CLIENT_ID ? 'hello alpha' : 'wrong peer');
      resolve(ids);
    });
    tlsServer.on('tlsClientError', () => resolve([]));
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  const port = (tlsServer.address() as { port: number }).port;
  try {
    const reply = await new Promise<{ data: string; ids: string[] }>((resolve, reject) => {
      const sock = connect({
        host: '127.0.0.1',
        port,
        key: toPem('PRIVATE KEY', c.x509SvidKey),
        cert: pemOf(c.x509Svid),
        ca: pemOf(trustedForServer),
        checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${SERVER_ID}` ? undefined : new Error(`unexpected server ${cert.subjectaltname}`)),
      });
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => resolve({ data, ids: peerIds(sock) }));
      sock.on('error', reject);
    });
    const saw = await serverSaw;
    // TLS 1.3: the client may finish before the server refuses its certificate
    if (saw.length === 0) throw new Error('the server refused the client certificate');
    return { reply, serverSaw: saw };
  } finally {
    tlsServer.close();
  }
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-federation-'));
  [alpha, beta] = await Promise.all([startSide(ALPHA, CLIENT_ID, BETA), startSide(BETA, SERVER_ID, ALPHA)]);
}, 180_000);

afterAll(async () => {
  alpha?.client.close();
  beta?.client.close();
  await Promise.all([alpha?.agent.stop(), beta?.agent.stop()]);
  await Promise.all([alpha?.issuer.stop(), beta?.issuer.stop()]);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('two trust domains federated both ways', () => {
  it('federates over each other\'s bundle endpoint with the wisp CLI', async () => {
    await ok(alpha.issuer, ['federation', 'create', '--trustDomain', BETA, '--bundleEndpointURL', `${beta.issuer.url}/bundle`]);
    await ok(beta.issuer, ['federation', 'create', '--trustDomain', `spiffe://${ALPHA}`, '--bundleEndpointURL', `${alpha.issuer.url}/bundle`, '--bundleEndpointProfile', 'https_web']);
    expect(await ok(alpha.issuer, ['federation', 'refresh', '--id', BETA])).toBe(`Bundle of ${BETA} updated\n`);
    expect(await ok(beta.issuer, ['federation', 'refresh', '--id', ALPHA])).toBe(`Bundle of ${ALPHA} updated\n`);
    const shown = await ok(alpha.issuer, ['federation', 'show', '--trustDomain', BETA]);
    expect(shown).toMatch(/Last refresh error\s+: -/);
    expect(shown).not.toMatch(/Last refresh\s+: never/);
    const list = JSON.parse(await ok(beta.issuer, ['bundle', 'list', '--output', 'json'])) as { bundles: { trustDomain: string }[] };
    expect(list.bundles.map((b) => b.trustDomain)).toEqual([ALPHA]);
    // foreign bundles by hand: SPIFFE JSON from stdin, PEM out, sequence never backwards, delete
    const betaBundle = (await (await fetch(`${beta.issuer.url}/bundle`)).json()) as { spiffe_sequence: number };
    const setIt = (doc: unknown) => runWisp(['bundle', 'set', '--id', 'gamma.test', '--format', 'spiffe', '--path', '-'], { env: { WISP_SERVER_URL: alpha.issuer.url, WISP_ADMIN_TOKEN: alpha.issuer.adminToken }, input: JSON.stringify(doc) });
    const set = await setIt({ ...betaBundle, spiffe_sequence: 10 });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe('Bundle of gamma.test set (sequence 10)\n');
    expect(await ok(alpha.issuer, ['bundle', 'list', '--id', 'gamma.test', '--format', 'pem'])).toMatch(/^# gamma\.test\n-----BEGIN CERTIFICATE-----/);
    const backwards = await setIt({ ...betaBundle, spiffe_sequence: 9 });
    expect(backwards.code).toBe(1);
    expect(backwards.stderr).toMatch(/^Error: ERR_BUNDLE_SEQUENCE_BACKWARDS: /);
    const notPem = await wisp(alpha.issuer, ['bundle', 'set', '--id', 'gamma.test', '--path', '/dev/null']);
    expect(notPem.stderr).toMatch(/^Error: ERR_USAGE: \/dev\/null: not PEM/);
    expect(await ok(alpha.issuer, ['bundle', 'delete', '--id', 'gamma.test'])).toBe('Bundle of gamma.test deleted\n');
    expect((await wisp(alpha.issuer, ['bundle', 'delete', '--id', 'gamma.test'])).stderr).toMatch(/^Error: ERR_BUNDLE_NOT_FOUND: /);
    // a wrong URL is refused before anything is stored
    const bad = await wisp(alpha.issuer, ['federation', 'create', '--trustDomain', 'gamma.test', '--bundleEndpointURL', 'http://gamma.example/bundle']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^Error: ERR_BAD_REQUEST: bundleEndpointUrl must be https/);
  });

  it('a workload of each completes mutual TLS with the other, each checking the peer SPIFFE ID', async () => {
    const a = await waitForX509(alpha, "alpha's agent to serve beta's bundle", (m) => `spiffe://${BETA}` in m.federatedBundles);
    const b = await waitForX509(beta, "beta's agent to serve alpha's bundle", (m) => `spiffe://${ALPHA}` in m.federatedBundles);
    expect(a.svids[0]!.spiffeId).toBe(CLIENT_ID);
    expect(b.svids[0]!.spiffeId).toBe(SERVER_ID);
    const { reply, serverSaw } = await mutualTls(b, b.federatedBundles[`spiffe://${ALPHA}`]!, a, a.federatedBundles[`spiffe://${BETA}`]!);
    expect(serverSaw).toEqual([CLIENT_ID]);
    expect(reply).toEqual({ data: 'hello alpha', ids: [SERVER_ID] });
    // each side's own bundle does not authenticate the other: trust comes from the federated bundle
    await expect(mutualTls(b, b.svids[0]!.bundle, a, a.svids[0]!.bundle)).rejects.toThrow();
  });

  it("beta's agent serves alpha's X.509 and JWT bundles and validates alpha's JWT-SVIDs", async () => {
    const x509 = await firstX509Bundles(beta.client);
    expect(Object.keys(x509.bundles).sort()).toEqual([`spiffe://${ALPHA}`, `spiffe://${BETA}`]);
    const bundles = await firstJwtBundles(beta.client);
    expect(Object.keys(bundles.bundles).sort()).toEqual([`spiffe://${ALPHA}`, `spiffe://${BETA}`]);
    const { svids } = await alpha.client.fetchJWTSVID({ audience: [SERVER_ID] });
    const validated = await beta.client.validateJWTSVID({ audience: SERVER_ID, svid: svids[0]!.svid });
    expect(validated.spiffeId).toBe(CLIENT_ID);
  });

  it('refreshes an https_spiffe endpoint from Node: TLS checked against the stored bundle and the endpoint SPIFFE ID', async () => {
    // beta's workload serves beta's bundle over TLS with its own X509-SVID (an https_spiffe bundle endpoint)
    const b = await firstX509(beta.client);
    const server = createHttpsServer({ key: toPem('PRIVATE KEY', b.svids[0]!.x509SvidKey), cert: pemOf(b.svids[0]!.x509Svid) }, (_req, res) => {
      void fetch(`${beta.issuer.url}/bundle`).then(async (r) => {
        res.setHeader('content-type', 'application/json');
        res.end(await r.text());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/bundle`;
    try {
      await ok(alpha.issuer, ['federation', 'update', '--trustDomain', BETA, '--bundleEndpointURL', url, '--bundleEndpointProfile', 'https_spiffe', '--endpointSpiffeID', SERVER_ID]);
      expect(await ok(alpha.issuer, ['federation', 'refresh', '--id', BETA])).toMatch(new RegExp(`^Bundle of ${BETA} (updated|unchanged)\\n$`));
      // the wrong endpoint SPIFFE ID: the TLS check fails, the error is recorded, the bundle is kept
      await ok(alpha.issuer, ['federation', 'update', '--trustDomain', BETA, '--endpointSpiffeID', `spiffe://${BETA}/someone-else`]);
      const wrong = await wisp(alpha.issuer, ['federation', 'refresh', '--id', BETA]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/ERR_UNAVAILABLE: .*not spiffe:\/\/beta\.test\/someone-else/);
      expect(await ok(alpha.issuer, ['federation', 'show', '--trustDomain', BETA])).toMatch(/Last refresh error\s+: ERR_UNAVAILABLE/);
      expect(await ok(alpha.issuer, ['bundle', 'list', '--id', BETA])).toContain('BEGIN CERTIFICATE');

      // assigned to alpha's agent: it fetches over the same SPIFFE-authenticated TLS and submits the bundle
      const before = Math.floor(Date.now() / 1000);
      await ok(alpha.issuer, ['federation', 'update', '--trustDomain', BETA, '--endpointSpiffeID', SERVER_ID, '--refreshAgentID', alpha.agentId]);
      expect(await ok(alpha.issuer, ['federation', 'show', '--trustDomain', BETA])).toContain(`Refreshed by              : ${alpha.agentId}`);
      await waitFor('the agent to refresh the bundle', async () => {
        const { relationship } = await adminCall<{ relationship: { lastRefreshError: string; lastRefreshAt: number } }>(alpha.issuer, 'GET', `/federation/${BETA}`);
        // the wrong-ID failure above is cleared only by a successful submission, made by the agent
        return relationship.lastRefreshError === '' && relationship.lastRefreshAt >= before ? true : undefined;
      }, 60_000, 500);
    } finally {
      server.close();
      await ok(alpha.issuer, ['federation', 'update', '--trustDomain', BETA, '--bundleEndpointURL', `${beta.issuer.url}/bundle`, '--bundleEndpointProfile', 'https_web']);
    }
  });

  it('deleting the relationship ends that trust: the bundle leaves the stream, mTLS and JWT validation fail', async () => {
    const { svids } = await alpha.client.fetchJWTSVID({ audience: [SERVER_ID] });
    const a = await firstX509(alpha.client);
    expect(await ok(beta.issuer, ['federation', 'delete', '--id', ALPHA])).toBe(`Deleted federation relationship with ${ALPHA}\n`);
    const b = await waitForX509(beta, "alpha's bundle to leave beta's stream", (m) => !(`spiffe://${ALPHA}` in m.federatedBundles));
    expect(Object.keys(b.federatedBundles)).toEqual([]);
    const jwtBundles = await firstJwtBundles(beta.client);
    expect(Object.keys(jwtBundles.bundles)).toEqual([`spiffe://${BETA}`]);
    expect(Object.keys((await firstX509Bundles(beta.client)).bundles)).toEqual([`spiffe://${BETA}`]);
    // alpha still trusts beta: that relationship is untouched
    expect(Object.keys((await firstX509(alpha.client)).federatedBundles)).toEqual([`spiffe://${BETA}`]);
    await expect(beta.client.validateJWTSVID({ audience: SERVER_ID, svid: svids[0]!.svid })).rejects.toThrow();
    // beta's workload now trusts only what its agent serves (its own bundle): the handshake fails
    await expect(mutualTls(b, b.svids[0]!.bundle, a, a.federatedBundles[`spiffe://${BETA}`]!)).rejects.toThrow('refused the client certificate');
  });
});
