// AgentStore, JoinTokenStore and AgentRequestStore over real D1: single use under concurrency, expiry, bans.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../../src/shared/spiffe/id.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createEntryStore } from '../../../src/worker/db/entries.js';
import { createJoinTokenStore, sha256Hex } from '../../../src/worker/db/join-tokens.js';
import { createAgentRequestStore } from '../../../src/worker/db/agent-requests.js';

const NOW = 1_800_000_000;
let seq = 0;
const unique = () => `t${Date.now().toString(36)}${(seq++).toString(36)}`;

describe('JoinTokenStore', () => {
  const tokens = createJoinTokenStore(env.DB);

  it('stores only the SHA-256 of the token', async () => {
    const token = `tok-${unique()}`;
    await tokens.create(token, { expiresAt: NOW + 600 }, NOW);
    const rows = await env.DB.prepare('SELECT token_hash FROM join_tokens WHERE token_hash = ? OR token_hash = ?').bind(token, await sha256Hex(token)).all<{ token_hash: string }>();
    expect(rows.results).toEqual([{ token_hash: await sha256Hex(token) }]);
  });

  it('is consumed once: of concurrent uses exactly one wins', async () => {
    const token = `tok-${unique()}`;
    const agentId = parseSpiffeId(`spiffe://example.org/spire/agent/custom/${unique()}`);
    await tokens.create(token, { spiffeId: agentId, expiresAt: NOW + 600 }, NOW);
    const results = await Promise.all(Array.from({ length: 8 }, () => tokens.consume(token, NOW + 1)));
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toEqual([{ spiffeId: agentId, expiresAt: NOW + 600 }]);
    expect(await tokens.consume(token, NOW + 2)).toBeUndefined();
  });

  it('refuses expired and unknown tokens', async () => {
    const token = `tok-${unique()}`;
    await tokens.create(token, { expiresAt: NOW + 10 }, NOW);
    expect(await tokens.consume(token, NOW + 10)).toBeUndefined();
    expect(await tokens.consume(`tok-${unique()}`, NOW)).toBeUndefined();
  });

  it('prunes expired tokens when creating one', async () => {
    const stale = `tok-${unique()}`;
    await tokens.create(stale, { expiresAt: NOW + 5 }, NOW);
    await tokens.create(`tok-${unique()}`, { expiresAt: NOW + 600 }, NOW + 6);
    const row = await env.DB.prepare('SELECT 1 FROM join_tokens WHERE token_hash = ?').bind(await sha256Hex(stale)).first();
    expect(row).toBeNull();
  });
});

describe('AgentRequestStore', () => {
  const requests = createAgentRequestStore(env.DB);
  const agents = createAgentStore(env.DB);
  const agentId = parseSpiffeId(`spiffe://example.org/spire/agent/join_token/${unique()}`);
  const admit = (jti: string, expiresAt = NOW + 60, now = NOW) => requests.admit({ jti, expiresAt, agentId }, now);

  it('admits a jti once; a replay is refused, also under concurrency', async () => {
    const jti = unique();
    expect((await admit(jti)).fresh).toBe(true);
    expect((await admit(jti)).fresh).toBe(false);
    const other = unique();
    const results = await Promise.all(Array.from({ length: 6 }, () => admit(other)));
    expect(results.filter((r) => r.fresh)).toHaveLength(1);
  });

  it('prunes expired jtis', async () => {
    const jti = unique();
    await admit(jti, NOW + 5);
    await admit(unique(), NOW + 100, NOW + 5);
    expect(await env.DB.prepare('SELECT 1 FROM agent_request_nonces WHERE jti = ?').bind(jti).first()).toBeNull();
  });

  it("reads the agent's record and the current revisions in the same round trip", async () => {
    expect((await admit(unique())).agent).toBeUndefined();
    await agents.upsertAttested({ spiffeId: agentId, attestationType: 'join_token', serialNumber: 'ab01', expiresAt: NOW + 3600, nodeSelectors: [{ type: 'join_token', value: 'r' }] }, NOW);
    const before = await admit(unique());
    expect(before.agent).toMatchObject({ spiffeId: agentId, serialNumber: 'ab01', banned: false, nodeSelectors: [{ type: 'join_token', value: 'r' }] });
    expect(before.registryRevision).toBe(await createEntryStore(env.DB).revision());
    await env.DB.prepare('UPDATE registry_revision SET revision = revision + 1 WHERE id = 1').run();
    await env.DB.prepare('UPDATE federation_revision SET revision = revision + 1 WHERE id = 1').run();
    const after = await admit(unique());
    expect(Number(after.registryRevision)).toBe(Number(before.registryRevision) + 1);
    expect(Number(after.federationRevision)).toBe(Number(before.federationRevision) + 1);
    await agents.renew(agentId, 'ab02', NOW + 7200, NOW + 10);
    await agents.ban(agentId, NOW + 20);
    expect((await admit(unique())).agent).toEqual(await agents.get(agentId));
    expect((await admit(unique())).agent).toMatchObject({ banned: true, serialNumber: 'ab02', previousSerialNumber: 'ab01', expiresAt: NOW + 7200 });
  });
});

describe('AgentStore', () => {
  const agents = createAgentStore(env.DB);
  const agentId = () => parseSpiffeId(`spiffe://example.org/spire/agent/join_token/${unique()}`);
  const attest = (spiffeId: ReturnType<typeof agentId>, serial = 'aa01') =>
    agents.upsertAttested({ spiffeId, attestationType: 'join_token', serialNumber: serial, expiresAt: NOW + 3600, nodeSelectors: [{ type: 'join_token', value: 'x' }] }, NOW);

  it('attests, renews (keeping the previous serial until forgotten) and reads back', async () => {
    const id = agentId();
    expect(await attest(id)).toEqual({
      spiffeId: id,
      attestationType: 'join_token',
      serialNumber: 'aa01',
      expiresAt: NOW + 3600,
      banned: false,
      nodeSelectors: [{ type: 'join_token', value: 'x' }],
      createdAt: NOW,
      updatedAt: NOW,
    });
    await agents.renew(id, 'bb02', NOW + 7200, NOW + 10);
    expect(await agents.get(id)).toMatchObject({ serialNumber: 'bb02', previousSerialNumber: 'aa01', expiresAt: NOW + 7200, updatedAt: NOW + 10 });
    await agents.forgetPreviousSerial(id);
    expect((await agents.get(id))!.previousSerialNumber).toBeUndefined();
  });

  it('bans; a banned agent stays banned through eviction and re-attestation', async () => {
    const id = agentId();
    await attest(id);
    expect(await agents.ban(id, NOW + 1)).toBe(true);
    expect(await agents.evict(id)).toBe(true);
    expect((await agents.get(id))!.banned).toBe(true);
    expect((await attest(id, 'cc03')).banned).toBe(true);
    expect(await agents.ban(agentId(), NOW)).toBe(false);
  });

  it('evicts: the agent is gone and must re-attest', async () => {
    const id = agentId();
    await attest(id);
    expect(await agents.evict(id)).toBe(true);
    expect(await agents.get(id)).toBeUndefined();
    expect(await agents.evict(id)).toBe(false);
  });

  it('lists in pages and counts', async () => {
    const before = await agents.count();
    for (let i = 0; i < 5; i++) await attest(agentId());
    expect(await agents.count()).toBe(before + 5);
    const seen = new Set<string>();
    let pageToken: string | undefined;
    do {
      const page = await agents.list({ pageSize: 2, ...(pageToken ? { pageToken } : {}) });
      for (const a of page.agents) seen.add(a.spiffeId);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen.size).toBe(before + 5);
  });
});
