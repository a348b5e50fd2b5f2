// Interop: go-spiffe v2 — the reference SPIFFE client library — against a real wisp-agent and issuer.
// test/interop/go/main.go is built here with the Go toolchain (modules from the Go module proxy). The issuer
// signs WIT-SVIDs (WIT_SVID_TTL): go-spiffe v2.9.0's experimental exp/svid/witsvid validates them too.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateWitSvid } from '../../src/shared/spiffe/wit-svid.js';
import { REPO_ROOT, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';
import { asUid } from '../helpers/node/other-uid.js';

const TD = 'interop.example';
const ID_SERVER = `spiffe://${TD}/svc/server`;
const ID_CLIENT = `spiffe://${TD}/svc/client`;
const CLIENT_UID = 65534;
const isRoot = process.getuid?.() === 0;

let root: string;
let bin: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let socket: string;

function run(args: string[], uid?: number) {
  const withSocket = ['-socket', `unix://${socket}`, ...args];
  const res = spawnSync(...asUid(uid, [bin, ...withSocket]), { encoding: 'utf8', timeout: 90_000 });
  if (res.status !== 0) throw new Error(`go-spiffe client ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-interop-'));
  chmodSync(root, 0o755);
  bin = join(root, 'interop');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: join(REPO_ROOT, 'test', 'interop', 'go'), stdio: 'pipe', env: { ...process.env, CGO_ENABLED: '0' } });
  chmodSync(bin, 0o755);
  socket = join(root, 'run', 'agent.sock');
  ({ issuer, agent } = await startTwoWorkloads({ trustDomain: TD, serverId: ID_SERVER, clientId: ID_CLIENT, clientUid: CLIENT_UID, x509SvidTtl: '20s', issuerStateDir: join(root, 'issuer'), agentDataDir: join(root, 'agent'), socketPath: socket, issuerVars: { WIT_SVID_TTL: '1h' } }));
  await waitFor('an SVID for go-spiffe', async () => {
    const r = spawnSync(bin, ['-socket', `unix://${socket}`, '-mode', 'x509', '-timeout', '5s'], { encoding: 'utf8' });
    return r.status === 0 ? true : undefined;
  }, 60_000, 500);
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('go-spiffe v2 against wisp-agent', () => {
  it('fetches an X509-SVID and bundle and validates them with x509svid.Verify', () => {
    const [out] = run(['-mode', 'x509']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, svids: 1, bundles: 1 });
    expect(out!.expiresAt as number).toBeGreaterThan(Date.now() / 1000);
  });

  it('fetches a JWT-SVID and validates it locally (jwtsvid.ParseAndValidate) and through ValidateJWTSVID', () => {
    const [out] = run(['-mode', 'jwt', '-audience', 'interop-test']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, local: ID_SERVER, remote: ID_SERVER });
  });

  it('go-spiffe (exp/svid/witsvid) fetches a WIT-SVID from wisp-agent and validates it; its key proves possession; jose agrees against /bundle', async () => {
    const [out] = run(['-mode', 'wit']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, pop: true });
    expect(out!.expiresAt as number).toBeGreaterThan(Date.now() / 1000);
    const token = out!.token as string;
    // the same token checked by Wisp's validator (jose) against the issuer's public SPIFFE bundle
    const bundle = await parseBundleJson(await (await fetch(`${issuer.url}/bundle`)).text(), TD);
    const keys = bundle.witAuthorities ?? [];
    expect(keys.map((k: JWK) => k.kid)).toContain(out!.kid);
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'wit+jwt', kid: out!.kid });
    const checked = await validateWitSvid(token, keys, { now: Date.now(), trustDomain: TD });
    expect(checked.ok, JSON.stringify(checked)).toBe(true);
    // and fetched with Wisp's own gRPC client from the same socket: the agent hands out the same cached one
    const client = createWorkloadApiClient(`unix://${socket}`);
    try {
      for await (const res of client.fetchWITSVID()) {
        expect(res.svids[0]!.witSvid).toBe(token);
        break;
      }
    } finally {
      client.close();
    }
  });

  it.skipIf(!isRoot)('connects two workloads with spiffetls mutual TLS, each authorizing the other by SPIFFE ID', async () => {
    const server = spawn(bin, ['-socket', `unix://${socket}`, '-mode', 'serve', '-peer', ID_CLIENT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    let serverErr = '';
    server.stdout.on('data', (d) => (serverOut += d));
    server.stderr.on('data', (d) => (serverErr += d));
    const addr = await waitFor('the spiffetls listener', async () => {
      if (server.exitCode !== null) throw new Error(`server exited: ${serverErr}`);
      const line = serverOut.split('\n').find((l) => l.includes('listening'));
      return line ? (JSON.parse(line) as { listening: string }).listening : undefined;
    }, 30_000, 100);
    const [dialed] = run(['-mode', 'dial', '-addr', addr, '-peer', ID_SERVER], CLIENT_UID);
    expect(dialed).toEqual({ received: 'pong', peer: ID_SERVER });
    await new Promise((r) => server.once('exit', r));
    const served = JSON.parse(serverOut.trim().split('\n').pop()!);
    expect(served).toEqual({ received: 'ping', peer: ID_CLIENT });
  }, 90_000);

  it('sees an X509-SVID rotation through WatchX509Context', () => {
    const updates = run(['-mode', 'watch', '-updates', '2', '-timeout', '60s']);
    expect(updates).toHaveLength(2);
    expect(updates[0]!.spiffeId).toBe(ID_SERVER);
    expect(updates[1]!.serial).not.toBe(updates[0]!.serial);
  }, 90_000);
});
