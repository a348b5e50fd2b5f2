// Admin endpoints for agents (list, count, get, ban, evict; URL-encoded SPIFFE IDs) and join tokens.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId } from '../../../src/shared/spiffe/id.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createJoinTokenStore, sha256Hex } from '../../../src/worker/db/join-tokens.js';
import { errorCode, makeAdmin, NOW_MS, sid, unique } from '../../helpers/workerd/admin.js';

const admin = makeAdmin();
const NOW = NOW_MS / 1000;
const agents = createAgentStore(env.DB);

async function attested() {
  const spiffeId = parseSpiffeId(sid(`/spire/agent/join_token/${unique()}`));
  await agents.upsertAttested({ spiffeId, attestationType: 'join_token', serialNumber: '01', expiresAt: NOW + 3600, nodeSelectors: [] }, NOW);
  return spiffeId;
}

describe('agents', () => {
  it('gets an agent by its URL-encoded SPIFFE ID', async () => {
    const id = await attested();
    const res = await admin.call('GET', `/agents/${encodeURIComponent(id)}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ agent: { spiffeId: id, attestationType: 'join_token', banned: false } });
  });

  it('lists in pages and counts', async () => {
    await attested();
    await attested();
    const { count } = (await (await admin.call('GET', '/agents/count')).json()) as { count: number };
    expect(count).toBeGreaterThanOrEqual(2);
    const page = (await (await admin.call('GET', '/agents?pageSize=1')).json()) as { agents: unknown[]; nextPageToken?: string };
    expect(page.agents).toHaveLength(1);
    expect(page.nextPageToken).toBeTypeOf('string');
  });

  it('bans and evicts', async () => {
    const id = await attested();
    const ban = await admin.call('POST', `/agents/${encodeURIComponent(id)}/ban`);
    expect(ban.status).toBe(200);
    expect(await ban.json()).toMatchObject({ agent: { spiffeId: id, banned: true } });
    const other = await attested();
    expect((await admin.call('DELETE', `/agents/${encodeURIComponent(other)}`)).status).toBe(204);
    expect((await admin.call('GET', `/agents/${encodeURIComponent(other)}`)).status).toBe(404);
  });

  it.each([
    ['GET', 'ERR_AGENT_NOT_FOUND', 404],
    ['DELETE', 'ERR_AGENT_NOT_FOUND', 404],
  ])('%s of an unknown agent answers %s', async (method, code, status) => {
    const res = await admin.call(method, `/agents/${encodeURIComponent(sid(`/spire/agent/x/${unique()}`))}`);
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
  });

  it('rejects a malformed or foreign agent ID', async () => {
    const bad = await admin.call('GET', `/agents/${encodeURIComponent('spiffe://example.org/a/../b')}`);
    expect(await errorCode(bad)).toBe('ERR_SPIFFE_ID_INVALID');
    const foreign = await admin.call('POST', `/agents/${encodeURIComponent('spiffe://other.test/spire/agent/x')}/ban`);
    expect(await errorCode(foreign)).toBe('ERR_TRUST_DOMAIN_MISMATCH');
    expect((await admin.call('POST', `/agents/${encodeURIComponent(sid(`/spire/agent/${unique()}`))}/ban`)).status).toBe(404);
  });
});

describe('POST /join-tokens', () => {
  const tokens = createJoinTokenStore(env.DB);

  it('creates a 32-byte token with the default TTL, stored hashed and usable once', async () => {
    const res = await admin.call('POST', '/join-tokens', {});
    expect(res.status).toBe(201);
    const body = (await res.json()) as { token: string; expiresAt: number; spiffeId?: string };
    expect(body.token).toMatch(/^[0-9a-f]{64}$/);
    expect(body.expiresAt).toBe(NOW + 600);
    expect(body.spiffeId).toBeUndefined();
    expect(await env.DB.prepare('SELECT 1 FROM join_tokens WHERE token_hash = ?').bind(body.token).first()).toBeNull();
    expect(await env.DB.prepare('SELECT 1 FROM join_tokens WHERE token_hash = ?').bind(await sha256Hex(body.token)).first()).not.toBeNull();
    expect(await tokens.consume(body.token, NOW)).toEqual({ expiresAt: NOW + 600 });
    expect(await tokens.consume(body.token, NOW)).toBeUndefined();
  });

  it('takes a TTL and an agent SPIFFE ID', async () => {
    const spiffeId = sid(`/spire/agent/custom/${unique()}`);
    const res = await admin.call('POST', '/join-tokens', { ttlSeconds: 60, spiffeId });
    const body = (await res.json()) as { token: string; expiresAt: number; spiffeId: string };
    expect(body).toMatchObject({ expiresAt: NOW + 60, spiffeId });
    expect(await tokens.consume(body.token, NOW)).toEqual({ spiffeId, expiresAt: NOW + 60 });
  });

  it.each([
    [{ ttlSeconds: 0 }, 'ERR_BAD_REQUEST'],
    [{ ttlSeconds: 8 * 86400 }, 'ERR_BAD_REQUEST'],
    [{ ttlSeconds: '60' }, 'ERR_BAD_REQUEST'],
    [{ spiffeId: sid('/workload') }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://other.test/spire/agent/x' }, 'ERR_TRUST_DOMAIN_MISMATCH'],
    [{ ttl: 60 }, 'ERR_BAD_REQUEST'],
  ])('rejects %j', async (body, code) => {
    const res = await admin.call('POST', '/join-tokens', body);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
  });

  it('needs a JSON body', async () => {
    const res = await admin.call('POST', '/join-tokens');
    expect(res.status).toBe(415);
  });
});
