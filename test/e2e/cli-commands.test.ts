// `wisp token|agent|bundle|jwt|x509|healthcheck` and --useWorkloadAPI as child processes against the real
// issuer (wrangler dev) and a real wisp-agent attested with a join token made by `wisp token generate`.
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { ONE_LINE_ERROR, runWisp, type WispRunOptions } from '../helpers/node/wisp-cli.js';

const TD = 'example.org';
const ADMIN_WORKLOAD = `spiffe://${TD}/ops/wisp-cli`;
const uid = process.getuid?.() ?? 0;

let root: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let agentId: string;
let socketPath: string;

const wisp = (args: string[], options: WispRunOptions = {}) =>
  runWisp(args, { ...options, env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken, ...options.env } });

async function ok(args: string[], options: WispRunOptions = {}) {
  const run = await wisp(args, options);
  expect(run.stderr, `wisp ${args.join(' ')}`).toBe('');
  expect(run.code).toBe(0);
  return run;
}

async function fails(args: string[], code: string, options: WispRunOptions = {}) {
  const run = await wisp(args, options);
  expect(run.code, run.stdout).toBe(1);
  expect(run.stderr).toMatch(ONE_LINE_ERROR);
  expect(run.stderr.startsWith(`Error: ${code}: `), run.stderr).toBe(true);
  return run;
}

const json = <T>(run: { stdout: string }) => JSON.parse(run.stdout) as T;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-cli-commands-'));
  socketPath = join(root, 'run', 'agent.sock');
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
  const { token } = json<{ token: string }>(await ok(['token', 'generate', '--output', 'json']));
  agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
  await ok(['entry', 'create', '--parentID', agentId, '--spiffeID', ADMIN_WORKLOAD, '--selector', `unix:uid:${uid}`, '--admin']);
  agent = await startAgent({ serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent-data'), socketPath, joinToken: token, syncIntervalSeconds: 1 });
});

afterAll(async () => {
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('healthcheck', () => {
  it('reports a healthy issuer without any credential', async () => {
    expect((await ok(['healthcheck'], { env: { WISP_ADMIN_TOKEN: undefined } })).stdout).toBe('Server is healthy.\n');
    expect(json<{ status: string }>(await ok(['healthcheck', '--output', 'json'])).status).toBe('ok');
  });
});

describe('token generate', () => {
  it('prints a join token as spire-server does, with a TTL and an optional agent SPIFFE ID', async () => {
    expect((await ok(['token', 'generate'])).stdout).toMatch(/^Token: [0-9a-f]{64}\n$/);
    const before = Math.floor(Date.now() / 1000);
    const res = json<{ token: string; expiresAt: number; spiffeId?: string }>(
      await ok(['token', 'generate', '--ttl', '120', '--spiffeID', `spiffe://${TD}/spire/agent/custom/build-01`, '--output', 'json']),
    );
    expect(res.spiffeId).toBe(`spiffe://${TD}/spire/agent/custom/build-01`);
    expect(res.expiresAt - before).toBeGreaterThanOrEqual(119);
    expect(res.expiresAt - before).toBeLessThanOrEqual(125);
  });
});

describe('agent list|show|count', () => {
  it('lists, counts and shows the attested agent', async () => {
    await waitFor('the agent to be attested', async () => ((await wisp(['agent', 'count'])).stdout === '1 attested agent\n' ? true : undefined), 60_000, 500);
    const list = await ok(['agent', 'list']);
    expect(list.stdout).toMatch(/^Found 1 attested agent:\n\n/);
    expect(list.stdout).toMatch(new RegExp(`^SPIFFE ID\\s+: ${agentId}$`, 'm'));
    expect(list.stdout).toMatch(/^Attestation Type\s+: join_token$/m);
    expect(json<{ agents: { spiffeId: string }[] }>(await ok(['agent', 'list', '--output', 'json'])).agents.map((a) => a.spiffeId)).toEqual([agentId]);
    const show = json<{ spiffeId: string; banned: boolean }>(await ok(['agent', 'show', '--spiffeID', agentId, '--output', 'json']));
    expect(show).toMatchObject({ spiffeId: agentId, banned: false });
    expect(json<{ count: number }>(await ok(['agent', 'count', '--output', 'json']))).toEqual({ count: 1 });
  });
});

describe('--useWorkloadAPI', () => {
  it("authenticates with the admin workload's JWT-SVID from the agent's Workload API", async () => {
    const args = ['--useWorkloadAPI', '--socketPath', socketPath, 'entry', 'show', '--spiffeID', ADMIN_WORKLOAD];
    const env = { WISP_ADMIN_TOKEN: undefined };
    const run = await waitFor('the admin JWT-SVID', async () => {
      const r = await wisp(args, { env });
      return r.code === 0 ? r : undefined;
    }, 60_000, 1000);
    expect(run.stdout).toContain(`SPIFFE ID        : ${ADMIN_WORKLOAD}`);
    expect(run.stdout).toContain('Admin            : true');
    // the same through SPIFFE_ENDPOINT_SOCKET, as SPIRE tools read it
    await ok(['--useWorkloadAPI', 'entry', 'count'], { env: { ...env, SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` } });
  });

  it('a Workload API that cannot be reached is a one-line error', async () => {
    await fails(['--useWorkloadAPI', '--socketPath', join(root, 'nope.sock'), '--timeout', '3', 'entry', 'count'], 'ERR_UNAUTHENTICATED', { env: { WISP_ADMIN_TOKEN: undefined } });
  });
});

describe('bundle show', () => {
  it('prints the X.509 authorities as PEM, and the SPIFFE bundle as JSON', async () => {
    const pem = (await ok(['bundle', 'show'])).stdout;
    const certs = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!;
    expect(certs.length).toBeGreaterThanOrEqual(1);
    for (const c of certs) expect(new X509Certificate(c).ca).toBe(true);
    const bundle = json<{ keys: { use: string }[]; spiffe_sequence: number }>(await ok(['bundle', 'show', '--format', 'spiffe']));
    expect(bundle.keys.some((k) => k.use === 'x509-svid')).toBe(true);
    expect(bundle.keys.some((k) => k.use === 'jwt-svid')).toBe(true);
    expect(bundle.keys.filter((k) => k.use === 'x509-svid')).toHaveLength(certs.length);
  });
});

describe('jwt mint', () => {
  it('mints a JWT-SVID that verifies against the bundle, for the SPIFFE ID and audiences asked for', async () => {
    const token = (await ok(['jwt', 'mint', '--spiffeID', `spiffe://${TD}/minted/jwt`, '--audience', 'https://api.test', '--audience', 'other', '--ttl', '120'])).stdout.trim();
    const bundle = json<{ keys: (JWK & { use: string })[] }>(await ok(['bundle', 'show', '--format', 'spiffe']));
    // jose accepts `use` only when it is "sig"; SPIFFE bundles say "jwt-svid"
    const keys = bundle.keys.filter((k) => k.use === 'jwt-svid').map(({ use: _use, ...k }) => k);
    const { payload } = await jwtVerify(token, createLocalJWKSet({ keys }), { audience: 'https://api.test' });
    expect(payload.sub).toBe(`spiffe://${TD}/minted/jwt`);
    expect(payload.aud).toEqual(['https://api.test', 'other']);
    expect(payload.exp! - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(121);
    const res = json<{ token: string; expiresAt: number }>(await ok(['jwt', 'mint', '--spiffeID', `spiffe://${TD}/minted/jwt`, '--audience', 'a', '--output', 'json']));
    expect(res.token.split('.')).toHaveLength(3);
  });

  it('needs --audience', async () => {
    await fails(['jwt', 'mint', '--spiffeID', `spiffe://${TD}/minted/jwt`], 'ERR_USAGE');
  });
});

describe('x509 mint', () => {
  it('writes svid.pem, key.pem (0600) and bundle.pem; the key is made locally and matches the certificate', async () => {
    const dir = join(root, 'minted');
    const id = `spiffe://${TD}/minted/db`;
    const run = await ok(['x509', 'mint', '--spiffeID', id, '--dns', 'db.internal', '--ttl', '1h', '--write', dir]);
    expect(run.stdout).toContain(`X509-SVID written to ${join(dir, 'svid.pem')}`);
    const chain = readFileSync(join(dir, 'svid.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!.map((c) => new X509Certificate(c));
    const leaf = chain[0]!;
    expect(leaf.subjectAltName).toContain(`URI:${id}`);
    expect(leaf.subjectAltName).toContain('DNS:db.internal');
    expect(leaf.ca).toBe(false);
    const hours = (Date.parse(leaf.validTo) - Date.now()) / 3_600_000;
    expect(hours).toBeLessThanOrEqual(1.01);
    const key = createPrivateKey(readFileSync(join(dir, 'key.pem'), 'utf8'));
    expect(createPublicKey(key).export({ format: 'der', type: 'spki' })).toEqual(leaf.publicKey.export({ format: 'der', type: 'spki' }));
    expect(statSync(join(dir, 'key.pem')).mode & 0o777).toBe(0o600);
    const roots = readFileSync(join(dir, 'bundle.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g)!.map((c) => new X509Certificate(c));
    const signer = chain[1] ?? roots.find((r) => leaf.checkIssued(r));
    expect(signer && leaf.verify(signer.publicKey)).toBe(true);
  });

  it('prints the SVID, key and roots without --write', async () => {
    const out = (await ok(['x509', 'mint', '--spiffeID', `spiffe://${TD}/minted/stdout`])).stdout;
    expect(out).toMatch(/^X509-SVID:\n-----BEGIN CERTIFICATE-----/);
    expect(out).toContain('\nPrivate key:\n-----BEGIN PRIVATE KEY-----');
    expect(out).toContain('\nRoot CAs:\n-----BEGIN CERTIFICATE-----');
  });

  it('refuses a SPIFFE ID of another trust domain with the issuer\'s code', async () => {
    await fails(['x509', 'mint', '--spiffeID', 'spiffe://elsewhere.test/x'], 'ERR_TRUST_DOMAIN_MISMATCH');
  });
});

describe('agent ban|evict', () => {
  it('bans the agent, then evicts it (the issuer keeps it banned); an unknown agent is a one-line error', async () => {
    expect((await ok(['agent', 'ban', '--spiffeID', agentId])).stdout).toBe('Agent banned successfully\n');
    expect((await ok(['agent', 'show', '--spiffeID', agentId])).stdout).toMatch(/^Banned\s+: true$/m);
    expect((await ok(['agent', 'evict', '--spiffeID', agentId])).stdout).toBe('Agent evicted successfully\n');
    expect(json<{ banned: boolean }>(await ok(['agent', 'show', '--spiffeID', agentId, '--output', 'json'])).banned).toBe(true);
    const unknown = `spiffe://${TD}/spire/agent/join_token/unknown`;
    await fails(['agent', 'show', '--spiffeID', unknown], 'ERR_AGENT_NOT_FOUND');
    await fails(['agent', 'ban', '--spiffeID', unknown], 'ERR_AGENT_NOT_FOUND');
    await fails(['agent', 'evict', '--spiffeID', unknown], 'ERR_AGENT_NOT_FOUND');
  });
});
