// An entry's jwtSvidClaims through a real agent (runAgent against the real issuer in process,
// test/helpers/node/agent/test-issuer.ts): a workload's FetchJWTSVID carries them, and after the entry's
// claims change the agent drops the JWT-SVID it holds and hands out one with the new claims.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { runAgent } from '../../src/agent/agent.js';
import { fetchJwt, healthcheck, validateJwt, type ApiCommandOptions } from '../../src/agent/cli/api.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { silentLogger } from '../../src/agent/log.js';
import { startAgentTestIssuer } from '../helpers/node/agent/test-issuer.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function until(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('jwtSvidClaims through the agent', () => {
  it('reach the workload, and a change of them replaces the held JWT-SVID', async () => {
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    const selectors = [{ type: 'unix', value: `uid:${process.getuid!()}` }];
    const parentId = issuer.agentIdOf(token);
    await issuer.addEntry('e-claims', '/claims', selectors, { parentId, jwtSvidClaims: { tenant: 'acme', groups: ['ops'] } });
    const dir = mkdtempSync(join(tmpdir(), 'wisp-claims-'));
    const socketPath = join(dir, 'api.sock');
    const config = parseAgentConfig(
      { path: 'test', content: { serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1 } },
      {},
      { joinToken: token },
    );
    const controller = new AbortController();
    const done = runAgent(config, { log: silentLogger(), signal: controller.signal });
    stops.push(async () => {
      controller.abort();
      await done;
    });
    const lines: string[] = [];
    const api: ApiCommandOptions = { address: socketPath, output: 'json', timeoutMs: 5_000, print: (l) => lines.push(l) };
    await until(async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy);

    const fetchClaims = async () => {
      await fetchJwt({ ...api, audience: ['aud-x'] });
      const svid = (JSON.parse(lines.pop()!) as { svids: Array<{ svid: string }> }).svids[0]!.svid;
      return { svid, claims: decodeJwt(svid) };
    };
    const first = await fetchClaims();
    expect(first.claims).toMatchObject({ tenant: 'acme', groups: ['ops'], sub: 'spiffe://example.org/claims', aud: ['aud-x'] });
    await validateJwt({ ...api, audience: 'aud-x', svid: first.svid });
    expect(JSON.parse(lines.pop()!)).toMatchObject({ spiffeId: 'spiffe://example.org/claims' });
    // the agent holds it: the same token again
    expect((await fetchClaims()).svid).toBe(first.svid);

    await issuer.updateEntry('e-claims', '/claims', selectors, { parentId, jwtSvidClaims: { tenant: 'globex' } });
    await until(async () => (await fetchClaims()).claims.tenant === 'globex');
    expect((await fetchClaims()).claims).not.toHaveProperty('groups');
  });
});
