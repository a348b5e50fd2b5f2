// The agents' notification channel in workerd: GET /agent/v1/notifications authenticated as every agent-API
// call and upgraded to a WebSocket held by the real AgentNotifier Durable Object (hibernation API), and the
// admin API's notices: which agents each write concerns, sent only after the write answered 2xx, never
// failing it, and reaching only the sockets of the agents concerned.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it, vi } from 'vitest';
import { HOUR_MS } from '../../src/shared/clock.js';
import { unwrap } from '../../src/shared/result.js';
import { KEEPALIVE_PING, KEEPALIVE_PONG, SYNC_NOTICE, type NoticeTarget } from '../../src/shared/agent-notifications.js';
import { CLOSE_CODE_ENDED } from '../../src/worker/notifier/agent-notifier.js';
import { createDoNotifier, NOTIFIER_AGENT_HEADER, NOTIFIER_CONNECT_URL, type AgentNotifierApi } from '../../src/worker/notifier/notifier-api.js';
import { AGENT_AUTH_FAILED_MESSAGE, PUBLISHED_AUTHORITIES_CACHE_MS } from '../../src/worker/middleware/agent-auth.js';
import { createHarness, expectError, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa } from '../helpers/workerd/test-ca.js';
import { freshCa, setCaClock } from '../helpers/workerd/ca.js';

const ADMIN_TOKEN = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
const ROUTE = '/agent/v1/notifications';

/** A harness whose app talks to a notifier Durable Object of its own (a fresh name per call). */
function harnessWith(notifier?: AgentNotifierApi): Harness {
  const clock = { nowMs: Date.now() };
  const ca = createTestCa(TD, () => clock.nowMs);
  const name = `test-${crypto.randomUUID()}`;
  const own = notifier ?? createDoNotifier(() => env.NOTIFIER.get(env.NOTIFIER.idFromName(name)));
  return createHarness(() => ca, clock, { notifier: own });
}

/** A recording notifier: the targets the admin API asked for, in order. */
function recorder(fail = false): { notifier: AgentNotifierApi; targets: NoticeTarget[] } {
  const targets: NoticeTarget[] = [];
  return {
    targets,
    notifier: {
      connect: async () => new Response(null, { status: 503 }),
      notify: async (t) => {
        targets.push(t);
        if (fail) throw new Error('notifier unreachable');
        return 0;
      },
    },
  };
}

function admin(h: Harness, method: string, path: string, body?: unknown): Promise<Response> {
  return h.fetch(`/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

const entryBody = (parentId: string, path = crypto.randomUUID()) => ({ spiffeId: `spiffe://${TD}/w/${path}`, parentId, selectors: [{ type: 'unix', value: 'uid:1000' }] });

interface Channel {
  ws: WebSocket;
  messages: string[];
  /** resolves with the nth message (1-based) */
  message(n: number): Promise<string>;
  closed: Promise<number>;
}

async function open(h: Harness, agent: TestAgent): Promise<Channel> {
  const req = await h.signedRequest(agent, 'GET', ROUTE);
  req.headers.set('upgrade', 'websocket');
  const res = await h.app.request(req, undefined, env);
  expect(res.status).toBe(101);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const ws = (res as Response & { webSocket: WebSocket }).webSocket;
  ws.accept();
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  ws.addEventListener('message', (e) => {
    messages.push(String(e.data));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
  return {
    ws,
    messages,
    closed,
    message: (n) =>
      new Promise((resolve) => {
        const check = () => (messages.length >= n ? resolve(messages[n - 1]!) : waiters.push(check));
        check();
      }),
  };
}

describe('GET /agent/v1/notifications', () => {
  it('is refused before any upgrade as sync refuses: no proof, a replayed proof, a proof for another path', async () => {
    const h = harnessWith();
    const agent = await h.attestFresh();
    const upgrade = { upgrade: 'websocket' };
    const none = await h.fetch(ROUTE, { headers: upgrade });
    expect((await expectError(none, 401, 'ERR_AGENT_AUTH_FAILED')).message).toBe(AGENT_AUTH_FAILED_MESSAGE);

    const first = await h.signedRequest(agent, 'GET', ROUTE);
    const replay = new Request(first.url, { headers: { ...upgrade, authorization: first.headers.get('authorization')! } });
    first.headers.set('upgrade', 'websocket');
    expect((await h.app.request(first, undefined, env)).status).toBe(101);
    await expectError(await h.app.request(replay, undefined, env), 401, 'ERR_AGENT_AUTH_FAILED');

    const forSync = await h.signedRequest(agent, 'GET', '/agent/v1/sync');
    const moved = new Request(`http://issuer.test${ROUTE}`, { headers: { ...upgrade, authorization: forSync.headers.get('authorization')! } });
    await expectError(await h.app.request(moved, undefined, env), 401, 'ERR_AGENT_AUTH_FAILED');
  });

  it('refuses a banned agent (403) and an evicted one (401), and a request that is no upgrade (400)', async () => {
    const h = harnessWith();
    const banned = await h.attestFresh();
    const evicted = await h.attestFresh();
    const plain = await h.attestFresh();
    expect((await admin(h, 'POST', `/agents/${encodeURIComponent(banned.agentId)}/ban`)).status).toBe(200);
    expect((await admin(h, 'DELETE', `/agents/${encodeURIComponent(evicted.agentId)}`)).status).toBe(204);
    const signed = async (a: TestAgent) => {
      const req = await h.signedRequest(a, 'GET', ROUTE);
      req.headers.set('upgrade', 'websocket');
      return h.app.request(req, undefined, env);
    };
    await expectError(await signed(banned), 403, 'ERR_AGENT_BANNED');
    await expectError(await signed(evicted), 401, 'ERR_AGENT_AUTH_FAILED');
    await expectError(await h.call(plain, 'GET', ROUTE), 400, 'ERR_BAD_REQUEST');
  });

  it('answers 503 where no notifier is wired (agents then poll)', async () => {
    const clock = { nowMs: Date.now() };
    const ca = createTestCa(TD, () => clock.nowMs);
    const h = createHarness(() => ca, clock);
    const agent = await h.attestFresh();
    const req = await h.signedRequest(agent, 'GET', ROUTE);
    req.headers.set('upgrade', 'websocket');
    await expectError(await h.app.request(req, undefined, env), 503, 'ERR_UNAVAILABLE');
  });
});

describe('notices through the real notifier', () => {
  it("an entry for agent A reaches A's socket only; a bundle change reaches both", async () => {
    const h = harnessWith();
    const [a, b] = [await h.attestFresh(), await h.attestFresh()];
    const [chA, chB] = [await open(h, a), await open(h, b)];
    expect((await admin(h, 'POST', '/entries', entryBody(a.agentId))).status).toBe(201);
    expect(await chA.message(1)).toBe(SYNC_NOTICE);
    // every agent: the notifier sends notices in order on each socket, so B's first is this one
    expect((await admin(h, 'POST', '/localauthority/x509/prepare')).status).toBe(200);
    expect(await chB.message(1)).toBe(SYNC_NOTICE);
    expect(await chA.message(2)).toBe(SYNC_NOTICE);
    expect(chB.messages).toEqual([SYNC_NOTICE]);
  });

  it('answers the keepalive ping without a notice, and a ban ends the banned agent\'s channel after its notice', async () => {
    const h = harnessWith();
    const agent = await h.attestFresh();
    const ch = await open(h, agent);
    ch.ws.send(KEEPALIVE_PING);
    expect(await ch.message(1)).toBe(KEEPALIVE_PONG);
    expect((await admin(h, 'POST', `/agents/${encodeURIComponent(agent.agentId)}/ban`)).status).toBe(200);
    expect(await ch.message(2)).toBe(SYNC_NOTICE);
    expect(await ch.closed).toBe(CLOSE_CODE_ENDED);
  });
});

describe('which agents an admin write notifies', () => {
  it('the parent agent of a created, updated (old and new parent) or deleted entry', async () => {
    const rec = recorder();
    const h = harnessWith(rec.notifier);
    const [a, b] = [await h.attestFresh(), await h.attestFresh()];
    const created = await admin(h, 'POST', '/entries', entryBody(a.agentId));
    const { entry } = (await created.json()) as { entry: { id: string } };
    expect(rec.targets).toEqual([{ agents: [a.agentId] }]);
    expect((await admin(h, 'PUT', `/entries/${entry.id}`, { ...entryBody(b.agentId), id: entry.id })).status).toBe(200);
    expect(rec.targets[1]).toEqual({ agents: [b.agentId, a.agentId] });
    expect((await admin(h, 'POST', '/entries/batch-delete', { ids: [entry.id] })).status).toBe(200);
    expect(rec.targets[2]).toEqual({ agents: [b.agentId] });
  });

  it('every agent for an entry under a node alias; nobody for a write that failed', async () => {
    const rec = recorder();
    const h = harnessWith(rec.notifier);
    const res = await admin(h, 'POST', '/entries/batch-create', { entries: [entryBody(`spiffe://${TD}/node-alias/${crypto.randomUUID()}`)] });
    expect(res.status).toBe(200);
    expect(rec.targets).toEqual([{ all: true }]);
    await expectError(await admin(h, 'DELETE', `/entries/${crypto.randomUUID()}`), 404, 'ERR_ENTRY_NOT_FOUND');
    expect((await admin(h, 'POST', '/entries', { spiffeId: 'nope' })).status).toBe(400);
    expect(rec.targets).toHaveLength(1);
  });

  it('a notifier that fails does not fail the write', async () => {
    const rec = recorder(true);
    const h = harnessWith(rec.notifier);
    const agent = await h.attestFresh();
    const res = await admin(h, 'POST', '/entries', entryBody(agent.agentId));
    expect(res.status).toBe(201);
    expect(rec.targets).toEqual([{ agents: [agent.agentId] }]);
  });
});

describe('an authority step and the other isolates\' published-keys caches', () => {
  it('tells every agent again once no isolate can answer from keys read before the step (where waitUntil keeps it)', async () => {
    const rec = recorder();
    const h = harnessWith(rec.notifier);
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => void pending.push(p), passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    try {
      const res = await h.app.request('http://issuer.test/admin/v1/localauthority/x509/prepare', { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, env, ctx);
      expect(res.status).toBe(200);
      await Promise.resolve();
      expect(rec.targets).toEqual([{ all: true }]);
      await vi.advanceTimersByTimeAsync(PUBLISHED_AUTHORITIES_CACHE_MS - 1);
      expect(rec.targets).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(1);
      await Promise.all(pending);
      expect(rec.targets).toEqual([{ all: true }, { all: true }]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("the CA's own rotation", () => {
  it('tells every agent when an alarm changed the published keys', async () => {
    // a socket on the trust domain's notifier, as the Worker opens it after agentAuth
    const notifier = env.NOTIFIER.get(env.NOTIFIER.idFromName(TD));
    const res = await notifier.fetch(new Request(NOTIFIER_CONNECT_URL, { headers: { upgrade: 'websocket', [NOTIFIER_AGENT_HEADER]: `spiffe://${TD}/spire/agent/test/${crypto.randomUUID()}` } }));
    const ws = (res as unknown as { webSocket: WebSocket }).webSocket;
    ws.accept();
    const got: string[] = [];
    ws.addEventListener('message', (e) => got.push(String(e.data)));

    const { stub, api } = freshCa();
    const t0 = Date.now();
    let now = t0;
    await setCaClock(stub, () => now);
    expect(await api.status()).toEqual({ ready: true });
    const first = unwrap(await api.getPublishedKeys()).sequence;
    // hour by hour until an alarm prepares the next key (within one CA lifetime, 24 h here); the keys' creation
    // by status() above told agents too, long before the last alarm
    let before = 0;
    for (now = t0 + HOUR_MS; unwrap(await api.getPublishedKeys()).sequence === first && now < t0 + 48 * HOUR_MS; now += HOUR_MS) {
      before = got.length;
      await runDurableObjectAlarm(stub);
    }
    expect(unwrap(await api.getPublishedKeys()).sequence).toBeGreaterThan(first);
    await new Promise<void>((resolve) => (got.length > before ? resolve() : ws.addEventListener('message', () => resolve(), { once: true })));
    expect(got.at(-1)).toBe(SYNC_NOTICE);
    ws.close(1000);
  });
});
