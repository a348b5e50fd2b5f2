// Admin agent list/count filters (SPIRE's ListAgents: selector + match, attestationType, banned,
// expiresBefore) and POST /agents/purge (SPIRE's `agent purge`), over real D1.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { parseSpiffeId, type SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { errorCode, makeAdmin, NOW_MS, sid, unique } from '../../helpers/workerd/admin.js';

const admin = makeAdmin();
const NOW = NOW_MS / 1000;
const DAY = 86_400;
const agents = createAgentStore(env.DB);

async function attested(type: string, name: string, expiresAt: number, selectors: string[] = []): Promise<SpiffeId> {
  const spiffeId = parseSpiffeId(sid(`/spire/agent/${type}/${name}`));
  const nodeSelectors = selectors.map((s) => ({ type: s.split(':')[0]!, value: s.split(':').slice(1).join(':') }));
  await agents.upsertAttested({ spiffeId, attestationType: type, serialNumber: '01', expiresAt, nodeSelectors }, NOW);
  return spiffeId;
}

const names = async (query: string) => {
  const res = await admin.call('GET', `/agents?${query}`);
  expect(res.status).toBe(200);
  const listed = ((await res.json()) as { agents: { spiffeId: string }[] }).agents.map((a) => a.spiffeId.split('/').pop()!).sort();
  const count = await admin.call('GET', `/agents/count?${query}`);
  expect(await count.json()).toEqual({ count: listed.length });
  return listed;
};

describe('GET /agents filters', () => {
  it('by attestation type, selectors (match modes), banned and expiry', async () => {
    const type = `t_${unique()}`;
    await attested(type, 'ab', NOW + DAY, ['aws_iid:tag:a', 'aws_iid:tag:b']);
    await attested(type, 'a', NOW + 2 * DAY, ['aws_iid:tag:a']);
    const banned = await attested(type, 'c', NOW - DAY, ['aws_iid:tag:c']);
    await agents.ban(banned, NOW);
    const t = `attestationType=${type}`;
    expect(await names(t)).toEqual(['a', 'ab', 'c']);
    expect(await names(`${t}&selector=aws_iid:tag:a`)).toEqual(['a', 'ab']); // default superset
    expect(await names(`${t}&selector=aws_iid:tag:a&match=exact`)).toEqual(['a']);
    expect(await names(`${t}&selector=aws_iid:tag:a&selector=aws_iid:tag:c&match=subset`)).toEqual(['a', 'c']);
    expect(await names(`${t}&selector=aws_iid:tag:b&selector=aws_iid:tag:c&match=any`)).toEqual(['ab', 'c']);
    expect(await names(`${t}&banned=true`)).toEqual(['c']);
    expect(await names(`${t}&banned=false`)).toEqual(['a', 'ab']);
    expect(await names(`${t}&expiresBefore=${NOW + DAY + 1}`)).toEqual(['ab', 'c']);
    expect(await names(`${t}&expiresBefore=${encodeURIComponent(new Date((NOW + 1) * 1000).toISOString())}`)).toEqual(['c']);
    expect(await names(`attestationType=other_${unique()}`)).toEqual([]);
  });

  it.each([
    ['banned=yes', 'ERR_BAD_REQUEST'],
    ['expiresBefore=tomorrow', 'ERR_BAD_REQUEST'],
    ['attestationType=a%20b', 'ERR_BAD_REQUEST'],
    ['selector=aws_iid:tag:a&match=all', 'ERR_BAD_REQUEST'],
    ['selector=novalue', 'ERR_SELECTOR_INVALID'],
  ])('rejects ?%s', async (query, code) => {
    const res = await admin.call('GET', `/agents?${query}`);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
  });
});

describe('POST /agents/purge', () => {
  it('deletes agents expired longer than expiredFor, keeps banned ones and claims in flight; dryRun only lists', async () => {
    const type = `p_${unique()}`;
    const old = await attested(type, 'old', NOW - 40 * DAY);
    const recent = await attested(type, 'recent', NOW - 10 * DAY);
    const live = await attested(type, 'live', NOW + DAY);
    const bannedOld = await attested(type, 'banned', NOW - 40 * DAY);
    await agents.ban(bannedOld, NOW);
    // a first attestation in flight: its row has expires_at 0 until the SVID is signed
    const claimed = parseSpiffeId(sid(`/spire/agent/${type}/claiming`));
    expect(await agents.claimAttestation({ spiffeId: claimed, attestationType: type, allowReattestation: false }, NOW)).toMatchObject({ claimed: true });

    const dry = await admin.call('POST', '/agents/purge', { expiredFor: 30 * DAY, dryRun: true });
    expect(dry.status).toBe(200);
    const dryBody = (await dry.json()) as { agents: { spiffeId: string }[]; dryRun: boolean };
    expect(dryBody.dryRun).toBe(true);
    expect(dryBody.agents.map((a) => a.spiffeId)).toContain(old);
    // a dry run deletes nothing it lists, and is not audited as a deletion
    for (const a of dryBody.agents) expect(await agents.get(a.spiffeId as SpiffeId)).toBeDefined();

    const res = await admin.call('POST', '/agents/purge', { expiredFor: 30 * DAY });
    const purged = ((await res.json()) as { agents: { spiffeId: string }[] }).agents.map((a) => a.spiffeId);
    expect(purged).toContain(old);
    expect(purged).not.toContain(recent);
    expect(await agents.get(old)).toBeUndefined();
    for (const kept of [recent, live, bannedOld, claimed]) expect(await agents.get(kept)).toBeDefined();

    const again = await admin.call('POST', '/agents/purge', { expiredFor: 0 });
    const second = ((await again.json()) as { agents: { spiffeId: string }[] }).agents.map((a) => a.spiffeId);
    expect(second).toContain(recent);
    expect(second).not.toContain(live);
    expect(second).not.toContain(claimed);

    const audit = (await (await admin.call('GET', '/audit?action=agent.purge')).json()) as { events: { objectIds: string[]; detail: Record<string, unknown> }[] };
    expect(audit.events.some((e) => e.objectIds.includes(old))).toBe(true);
    const dryEvents = audit.events.filter((e) => e.detail['dryRun'] === true);
    expect(dryEvents.length).toBeGreaterThan(0);
    for (const e of dryEvents) expect(e).toMatchObject({ objectIds: [], detail: { purged: 0 } });
  });

  it.each([
    [{}, 'ERR_BAD_REQUEST'],
    [{ expiredFor: -1 }, 'ERR_BAD_REQUEST'],
    [{ expiredFor: 1.5 }, 'ERR_BAD_REQUEST'],
    [{ expiredFor: '30d' }, 'ERR_BAD_REQUEST'],
    [{ expiredFor: 60, dryRun: 'yes' }, 'ERR_BAD_REQUEST'],
    [{ expiredFor: 60, force: true }, 'ERR_BAD_REQUEST'],
  ])('rejects %j', async (body, code) => {
    const res = await admin.call('POST', '/agents/purge', body);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
  });
});
