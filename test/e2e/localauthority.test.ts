// Authority management end to end: the real issuer (wrangler dev), a real wisp-agent, the `wisp` CLI and
// go-spiffe as the workload. prepare → activate → taint: the workload's SVID is re-signed by the new
// authority within one sync; revoke: go-spiffe receives a bundle without the revoked authority, and the SVID
// the revoked authority signed no longer verifies against the published bundle (openssl verify).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { signerAuthorityIdsOf } from '../../src/shared/ca/authority-id.js';
import { toPem } from '../../src/shared/encoding/pem.js';
import { runWisp } from '../helpers/node/wisp-cli.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';

const TD = 'la.example';
const ID_SERVER = `spiffe://${TD}/svc/server`;

let root: string;
let bin: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let socket: string;

interface GoX509 {
  spiffeId: string;
  leaf: string;
  authorities: number;
}
function goFetch(): GoX509 | undefined {
  const r = spawnSync(bin, ['-socket', `unix://${socket}`, '-mode', 'x509', '-timeout', '5s'], { encoding: 'utf8' });
  return r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n')[0]!) as GoX509) : undefined;
}
const signerOf = (leafB64: string) => signerAuthorityIdsOf([Buffer.from(leafB64, 'base64')])[0];

async function wisp<T>(args: string[]): Promise<T> {
  const run = await runWisp([...args, '-output', 'json'], { env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken } });
  expect(run.stderr, `wisp ${args.join(' ')}`).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-la-'));
  chmodSync(root, 0o755);
  bin = join(root, 'interop');
  execFileSync('go', ['build', '-o', bin, '.'], { cwd: join(REPO_ROOT, 'test', 'interop', 'go'), stdio: 'pipe', env: { ...process.env, CGO_ENABLED: '0' } });
  socket = join(root, 'run', 'agent.sock');
  // a long SVID TTL: nothing rotates on its own during the test, only the taint does it
  ({ issuer, agent } = await startTwoWorkloads({ trustDomain: TD, serverId: ID_SERVER, clientId: `spiffe://${TD}/svc/client`, clientUid: 65534, x509SvidTtl: '30m', issuerStateDir: join(root, 'issuer'), agentDataDir: join(root, 'agent'), socketPath: socket }));
  await waitFor('an SVID for go-spiffe', async () => goFetch(), 60_000, 500);
}, 240_000);

afterAll(async () => {
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('wisp localauthority x509 with a real agent and go-spiffe', () => {
  it('taint rotates the workload SVID within one sync; revoke removes the authority and its SVIDs stop validating', async () => {
    type S = { authorityId: string; tainted: boolean };
    const before = goFetch()!;
    expect(before).toMatchObject({ spiffeId: ID_SERVER, authorities: 1 });
    const first = (await wisp<{ active: S }>(['localauthority', 'x509', 'show'])).active.authorityId;
    expect(signerOf(before.leaf)).toBe(first);

    const next = (await wisp<{ preparedAuthority: S }>(['localauthority', 'x509', 'prepare'])).preparedAuthority.authorityId;
    await wisp(['localauthority', 'x509', 'activate', '-authorityID', next]);
    expect((await wisp<{ taintedAuthority: S }>(['localauthority', 'x509', 'taint', '-authorityID', first])).taintedAuthority).toMatchObject({ authorityId: first, tainted: true });
    expect((await wisp<{ old: S }>(['localauthority', 'x509', 'show'])).old).toMatchObject({ authorityId: first, tainted: true });

    // the agent syncs every second: within a few syncs the workload holds an SVID from the new authority
    const t0 = Date.now();
    const rotated = await waitFor('an SVID from the new authority', async () => {
      const got = goFetch();
      return got && signerOf(got.leaf) === next ? got : undefined;
    }, 15_000, 250);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(rotated.leaf).not.toBe(before.leaf);
    expect(rotated.authorities).toBe(2); // the tainted one is still trusted until revoked

    await wisp(['localauthority', 'x509', 'revoke', '-authorityID', first]);
    const after = await waitFor('a bundle without the revoked authority', async () => {
      const got = goFetch();
      return got && got.authorities === 1 ? got : undefined;
    }, 15_000, 250);
    expect(signerOf(after.leaf)).toBe(next); // go-spiffe verified it against the new bundle (x509svid.Verify)

    // the published bundle verifies the new SVID and no longer the one the revoked authority signed
    const bundle = (await (await fetch(`${issuer.url}/bundle`)).json()) as { keys: Array<{ use: string; x5c?: string[] }> };
    const roots = bundle.keys.filter((k) => k.use === 'x509-svid').map((k) => toPem('CERTIFICATE', Buffer.from(k.x5c![0]!, 'base64'))).join('');
    writeFileSync(join(root, 'roots.pem'), roots);
    const verify = (leafB64: string, name: string) => {
      writeFileSync(join(root, name), toPem('CERTIFICATE', Buffer.from(leafB64, 'base64')));
      return spawnSync('openssl', ['verify', '-CAfile', join(root, 'roots.pem'), join(root, name)], { encoding: 'utf8' });
    };
    expect(verify(after.leaf, 'new.pem').status).toBe(0);
    const old = verify(before.leaf, 'old.pem');
    expect(old.status).not.toBe(0);
    expect(old.stdout + old.stderr).toMatch(/unable to get local issuer certificate/);
  });
});
