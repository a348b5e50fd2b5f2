// The agent's notification channel (src/agent/notifications.ts): the whole daemon (runAgent) against the real
// issuer in process, whose WebSocket upgrades go to a notifier the test plays (the in-process app serves no
// channel; test/worker/agent-notifications.test.ts covers the issuer's). The fake is an attacker's notifier
// as well: it answers any upgrade and sends whatever frames the test says. A notice makes the agent sync at
// once (poll 300 s), a burst makes one sync, crafted messages give the agent nothing but a signed sync, and a
// lost notice or a channel that is down is covered by the poll.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runAgent } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { createLogger, silentLogger } from '../../src/agent/log.js';
import { AGENT_PROOF_SCHEME } from '../../src/shared/agent-proof.js';
import { SYNC_NOTICE } from '../../src/shared/agent-notifications.js';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { startAgentTestIssuer, type AgentTestIssuer } from '../helpers/node/agent/test-issuer.js';
import { fakeNotifier as makeFakeNotifier, type FakeNotifier } from '../helpers/node/fake-notifier.js';
import { makeRootCa, makeSvid, toBase64 } from '../helpers/shared/agent-svid.js';

const TD = 'example.org';
const ME = { type: 'unix', value: `uid:${process.getuid!()}` };
const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Running {
  issuer: AgentTestIssuer;
  agentId: string;
  /** the SPIFFE IDs of every response on one open FetchX509SVID stream, in order */
  seen: string[][];
  syncs(): number;
  /** every /sync so far answered (none in flight) */
  settled(): boolean;
}

async function start(o: { syncIntervalSeconds: number; notifier?: FakeNotifier; notifications?: boolean }): Promise<Running> {
  const issuer = await startAgentTestIssuer({ trustDomain: TD, clock: Date.now, ...(o.notifier ? { onUpgrade: (req, socket) => o.notifier!.onUpgrade(req, socket) } : {}) });
  stops.push(() => issuer.close());
  const token = await issuer.createJoinToken();
  const agentId = issuer.agentIdOf(token);
  issuer.defaultParentId = agentId;
  await issuer.addEntry('e-me', '/me', [ME]);
  const dir = mkdtempSync(join(tmpdir(), 'wisp-push-'));
  const socketPath = join(dir, 'api.sock');
  const content = { serverUrl: issuer.url, trustDomain: TD, dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: o.syncIntervalSeconds, ...(o.notifications === undefined ? {} : { notifications: o.notifications }) };
  const config = parseAgentConfig({ path: 'test', content }, {}, { joinToken: token });
  const controller = new AbortController();
  const done = runAgent(config, { log: process.env.PUSH_DEBUG ? createLogger('debug') : silentLogger(), signal: controller.signal });
  done.catch((e) => console.error('agent failed', e));
  stops.push(async () => {
    controller.abort();
    await done;
  });
  const seen: string[][] = [];
  const streamStop = new AbortController();
  await until('the agent socket', () => existsSync(socketPath));
  const client = createWorkloadApiClient(`unix://${socketPath}`);
  // the stream answers PermissionDenied until the agent holds an SVID for the caller: open it again until then
  void (async () => {
    while (!streamStop.signal.aborted && seen.length === 0) {
      try {
        for await (const res of client.fetchX509SVID({ signal: streamStop.signal })) seen.push(res.svids.map((s) => s.spiffeId).sort());
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  stops.push(() => {
    streamStop.abort();
    client.close();
  });
  await until('the first SVID on the stream', () => seen.some((ids) => ids.includes(`spiffe://${TD}/me`)));
  const syncs = () => issuer.callsTo('/sync').length;
  return { issuer, agentId, seen, syncs, settled: () => issuer.callsTo('/sync').every((c) => c.status !== undefined) };
}

const has = (r: Running, path: string) => r.seen.some((ids) => ids.includes(`spiffe://${TD}${path}`));

/** A fake notifier whose sockets the test's clean-up closes. */
function fakeNotifier(): FakeNotifier {
  const f = makeFakeNotifier();
  stops.push(() => f.close());
  return f;
}

describe('a notice', () => {
  it('makes the agent sync at once: with a 300 s poll, a new entry reaches the open stream; a burst makes one sync', async () => {
    const notifier = fakeNotifier();
    const r = await start({ syncIntervalSeconds: 300, notifier });
    await until('the channel', () => notifier.sockets.length === 1);
    // the upgrade carried an agent proof (the issuer checks it; test/worker/agent-notifications.test.ts)
    expect(notifier.upgrades[0]!.url).toBe('/agent/v1/notifications');
    expect(notifier.upgrades[0]!.headers.authorization?.startsWith(`${AGENT_PROOF_SCHEME} `)).toBe(true);
    // the first round and the sync the channel's opening asks for (notices may have been missed before)
    await until('the opening syncs', () => r.syncs() >= 2 && r.settled());

    await r.issuer.addEntry('e-new', '/new', [ME]);
    const before = r.syncs();
    notifier.send(SYNC_NOTICE);
    await until('the new SVID on the stream', () => has(r, '/new'));
    expect(r.syncs()).toBeGreaterThan(before);

    // 20 notices at once, then one more after a new entry: a few syncs, not 21
    const burst = r.syncs();
    for (let i = 0; i < 20; i++) notifier.send(SYNC_NOTICE);
    await r.issuer.addEntry('e-after', '/after', [ME]);
    notifier.send(SYNC_NOTICE);
    await until('the entry after the burst', () => has(r, '/after'));
    await until('the syncs to settle', r.settled);
    expect(r.syncs() - burst).toBeLessThanOrEqual(4);
  });

  it('from a forged notifier gives the agent nothing but a signed sync: crafted entries, SVIDs and agent IDs are ignored', async () => {
    const notifier = fakeNotifier();
    const r = await start({ syncIntervalSeconds: 300, notifier });
    await until('the channel', () => notifier.sockets.length === 1);
    await until('the opening syncs', () => r.syncs() >= 2 && r.settled());
    const now = Math.floor(Date.now() / 1000);
    const root = await makeRootCa(TD, now);
    const forged = await makeSvid(root, `spiffe://${TD}/evil`, now);
    const evilEntry = { id: 'e-evil', spiffeId: `spiffe://${TD}/evil`, parentId: r.agentId, selectors: [ME] };
    notifier.send(JSON.stringify({ type: 'sync', entries: [evilEntry], revision: '999.0.0-0' }));
    notifier.send(JSON.stringify({ type: 'svids', svids: [{ entryId: 'e-evil', svid: { spiffeId: `spiffe://${TD}/evil`, certChain: [toBase64(forged.der)], expiresAt: 4_000_000_000 } }] }));
    notifier.send(JSON.stringify({ type: 'sync', agentId: `spiffe://${TD}/spire/agent/join_token/someone-else`, bundle: { keys: [] } }));
    notifier.send(Buffer.from(JSON.stringify({ entries: [evilEntry] })));
    notifier.send('not json at all');
    // a legitimate change after them: once it is on the stream, every message before it was handled
    await r.issuer.addEntry('e-legit', '/legit', [ME]);
    notifier.send(SYNC_NOTICE);
    await until('the legitimate SVID', () => has(r, '/legit'));
    await until('the syncs to settle', r.settled);

    expect(has(r, '/evil')).toBe(false);
    expect(r.seen.at(-1)).toEqual([`spiffe://${TD}/legit`, `spiffe://${TD}/me`]);
    // every sync was the signed agent API, as this agent; nothing asked for the crafted entry
    for (const call of r.issuer.callsTo('/sync')) expect(call).toMatchObject({ status: 200, agentId: r.agentId });
    expect(JSON.stringify(r.issuer.callsTo('/x509-svids').map((c) => c.body))).not.toContain('e-evil');
  });
});

describe('the poll covers', () => {
  it('a notice that never comes (the channel is open, the message is dropped)', async () => {
    const notifier = fakeNotifier();
    const r = await start({ syncIntervalSeconds: 1, notifier });
    await until('the channel', () => notifier.sockets.length === 1);
    await r.issuer.addEntry('e-new', '/new', [ME]);
    await until('the new SVID by poll', () => has(r, '/new'));
  });

  it('a notifier that is unreachable (every upgrade refused)', async () => {
    const r = await start({ syncIntervalSeconds: 1 });
    await r.issuer.addEntry('e-new', '/new', [ME]);
    await until('the new SVID by poll', () => has(r, '/new'));
  });

  it('an agent with notifications off, which opens no channel', async () => {
    const notifier = fakeNotifier();
    const r = await start({ syncIntervalSeconds: 1, notifier, notifications: false });
    await r.issuer.addEntry('e-new', '/new', [ME]);
    await until('the new SVID by poll', () => has(r, '/new'));
    expect(notifier.upgrades).toHaveLength(0);
  });
});
