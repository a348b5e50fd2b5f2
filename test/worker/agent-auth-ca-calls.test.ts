// How often agent authentication asks the CA for its published authorities (middleware/agent-auth.ts):
// once per PUBLISHED_AUTHORITIES_CACHE_MS for good proofs, and bad proofs add at most one forced re-read per
// FORCED_REFRESH_MIN_INTERVAL_MS, so a stream of them does not become a stream of DO calls.
import { describe, expect, it } from 'vitest';
import { FORCED_REFRESH_MIN_INTERVAL_MS, PUBLISHED_AUTHORITIES_CACHE_MS } from '../../src/worker/middleware/agent-auth.js';
import { makeRootCa, makeSvid } from '../helpers/shared/agent-svid.js';
import { createHarness, TD } from '../helpers/workerd/agent-client.js';
import { createTestCa } from '../helpers/workerd/test-ca.js';

describe('agent authentication and the CA', () => {
  it('reads the published authorities once per cache period, bad proofs included', async () => {
    const clock = { nowMs: Date.now() };
    const real = createTestCa(TD, () => clock.nowMs);
    let reads = 0;
    const ca = { ...real, getPublishedKeys: () => (reads++, real.getPublishedKeys()) };
    const h = createHarness(() => ca, clock);
    const agent = await h.attestFresh();
    reads = 0;
    for (let i = 0; i < 5; i++) expect((await h.call(agent, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    // the federation routes share the app's cache
    expect((await h.call(agent, 'GET', '/agent/v1/federation/refresh-tasks')).status).toBe(200);
    expect(reads).toBe(1); // auth read them once; /sync takes the bundle sequence from the same cache

    const stranger = await makeRootCa(TD, Math.floor(clock.nowMs / 1000) - 60);
    const svid = await makeSvid(stranger, agent.agentId, Math.floor(clock.nowMs / 1000) - 60);
    const forged = { agentId: agent.agentId, chain: [svid.der], keys: svid.keys };
    reads = 0;
    for (let i = 0; i < 10; i++) expect((await h.call(forged, 'GET', '/agent/v1/bundle')).status).toBe(401);
    expect(reads).toBe(1); // one forced re-read, then the bound
    clock.nowMs += FORCED_REFRESH_MIN_INTERVAL_MS;
    for (let i = 0; i < 10; i++) expect((await h.call(forged, 'GET', '/agent/v1/bundle')).status).toBe(401);
    expect(reads).toBe(2);
    clock.nowMs += PUBLISHED_AUTHORITIES_CACHE_MS;
    expect((await h.call(agent, 'GET', '/agent/v1/bundle')).status).toBe(200);
    expect(reads).toBe(4); // the expired cache, and /bundle's own read
  });
});
