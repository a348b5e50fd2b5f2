// An entry's jwtSvidClaims through a real agent (runAgent against the real issuer in process,
// test/helpers/node/agent/test-issuer.ts): a workload's FetchJWTSVID carries them, and after the entry's
// claims change the agent drops the JWT-SVID it holds and hands out one with the new claims.
import { describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { fetchJwt, validateJwt, type ApiCommandOptions } from '../../src/agent/cli/api.js';
import { startRunningAgent, until, useStops } from '../helpers/node/agent/running-agent.js';

const stops = useStops();

describe('jwtSvidClaims through the agent', () => {
  it('reach the workload, and a change of them replaces the held JWT-SVID', async () => {
    const selectors = [{ type: 'unix', value: `uid:${process.getuid!()}` }];
    const { issuer, token, socketPath } = await startRunningAgent(stops, { entry: { id: 'e-claims', path: '/claims', extra: { jwtSvidClaims: { tenant: 'acme', groups: ['ops'] } } }, dirPrefix: 'wisp-claims-' });
    const parentId = issuer.agentIdOf(token);
    const lines: string[] = [];
    const api: ApiCommandOptions = { address: socketPath, output: 'json', timeoutMs: 5_000, print: (l) => lines.push(l) };

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
