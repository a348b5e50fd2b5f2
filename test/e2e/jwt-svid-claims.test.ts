// Custom JWT-SVID claims end to end: `wrangler dev` (D1 migrated by wrangler, migrations/0009 included), the
// `wisp` CLI sets them with -jwtSVIDClaims, a real wisp-agent process hands a workload the JWT-SVID over the
// Workload API (`wisp-agent api fetch jwt`), and jose verifies it against the issuer's public JWKS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, agentCli, startAgent, startIssuer, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { ONE_LINE_ERROR, runWisp } from '../helpers/node/wisp-cli.js';

const TD = 'claims.example';
let root: string;
let issuer: RunningIssuer;
let agent: RunningAgent | undefined;

const wisp = (args: string[]) => runWisp(args, { env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken } });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-claims-e2e-'));
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('jwtSvidClaims', () => {
  it('set by the CLI reach a workload in a JWT-SVID that verifies against /keys', async () => {
    const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {});
    const parent = `spiffe://${TD}/spire/agent/join_token/${token}`;
    const spiffeId = `spiffe://${TD}/billing`;
    const created = await wisp(['entry', 'create', '-parentID', parent, '-spiffeID', spiffeId, '-selector', `unix:uid:${process.getuid!()}`, '-jwtSVIDClaims', '{"tenant":"acme","groups":["billing","ops"]}']);
    expect(created, created.stderr).toMatchObject({ code: 0, stderr: '' });

    const refused = await wisp(['entry', 'create', '-parentID', parent, '-spiffeID', `spiffe://${TD}/evil`, '-selector', 'unix:uid:0', '-jwtSVIDClaims', '{"iss":"https://evil"}']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(ONE_LINE_ERROR);

    const socketPath = join(root, 'agent.sock');
    agent = await startAgent({ serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent'), socketPath, joinToken: token, syncIntervalSeconds: 1 });
    let svid: string | undefined;
    const deadline = Date.now() + 60_000;
    while (!svid && Date.now() < deadline) {
      const run = await agentCli(['api', 'fetch', 'jwt', '--audience', 'billing-db', '--socketPath', `unix://${socketPath}`, '--output', 'json']);
      if (run.code === 0) svid = (JSON.parse(run.stdout) as { svids: Array<{ svid: string }> }).svids[0]?.svid;
      else await new Promise((r) => setTimeout(r, 500));
    }
    expect(svid, agent.output().slice(-2000)).toBeDefined();
    const { payload } = await jwtVerify(svid!, createRemoteJWKSet(new URL(`${issuer.url}/keys`)), { audience: 'billing-db' });
    expect(payload).toMatchObject({ sub: spiffeId, aud: ['billing-db'], tenant: 'acme', groups: ['billing', 'ops'] });
  }, 180_000);
});
