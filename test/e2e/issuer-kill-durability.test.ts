// Acknowledged admin writes survive the issuer being killed mid-burst (issue 20, "Done when"): wrangler dev
// on a persist dir, a burst of entry creates (single and batch), join-token creates and entry deletes with
// many in flight, SIGKILL (then, separately, SIGTERM) of wrangler's whole process group (wrangler and
// workerd), a restart on the same dir; every write answered 2xx before the kill is there afterwards, every
// acknowledged delete stays deleted, and the CA keys are the same (bundle authorities, an agent SVID issued
// before the kill verifies against the bundle after it, and that agent still authenticates).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { adminCall, signalIssuer, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { agentCall, attestWithJoinToken, rawRequest, type AgentCredential } from '../helpers/node/agent-api-client.js';

const TD = 'durable.test';
const VARS = { ADMIN_TOKEN: `durable-admin-${randomBytes(16).toString('hex')}`, KEY_ENCRYPTION_SECRET: `durable-kek-${randomBytes(16).toString('hex')}` };
const IN_FLIGHT = 12;
const PARENT = `spiffe://${TD}/spire/agent/burst`;

let root: string;
let stateDir: string;
let issuer: RunningIssuer | undefined;
let agent: AgentCredential;

const start = () => startIssuer({ stateDir, trustDomain: TD, vars: VARS, detached: true });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-kill-'));
  stateDir = join(root, 'issuer');
  issuer = await start();
  const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {});
  agent = await attestWithJoinToken(issuer.url, token);
}, 180_000);

afterAll(async () => {
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Acks {
  /** entry IDs whose create was answered 2xx */
  created: Set<string>;
  /** entry IDs a delete was sent for (answered or not) */
  deleteTried: Set<string>;
  /** entry IDs whose delete was answered 2xx */
  deleted: Set<string>;
  /** join tokens answered 201 */
  tokens: string[];
  failedCalls: number;
}

const entryBody = () => ({ spiffeId: `spiffe://${TD}/burst/${randomBytes(8).toString('hex')}`, parentId: PARENT, selectors: [{ type: 'unix', value: 'uid:1000' }] });

/** Runs IN_FLIGHT writers until `stop` is set; a call that fails (the issuer died under it) acknowledges nothing. */
async function burst(target: RunningIssuer, acks: Acks, stop: { now: boolean }): Promise<void> {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T | undefined> => {
    try {
      return await adminCall<T>(target, method, path, body);
    } catch {
      acks.failedCalls++;
      return undefined;
    }
  };
  const writer = async (w: number) => {
    for (let i = 0; !stop.now; i++) {
      const kind = (w + i) % 4;
      if (kind === 0) {
        const r = await call<{ entry: { id: string } }>('POST', '/entries', entryBody());
        if (r) acks.created.add(r.entry.id);
      } else if (kind === 1) {
        const r = await call<{ results: { status: { code: string }; entry?: { id: string } }[] }>('POST', '/entries/batch-create', { entries: Array.from({ length: 5 }, entryBody) });
        for (const item of r?.results ?? []) if (item.status.code === 'OK' && item.entry) acks.created.add(item.entry.id);
      } else if (kind === 2) {
        const r = await call<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 3600 });
        if (r) acks.tokens.push(r.token);
      } else {
        const victim = [...acks.created].find((id) => !acks.deleteTried.has(id));
        if (!victim) continue;
        acks.deleteTried.add(victim);
        try {
          const res = await fetch(`${target.url}/admin/v1/entries/${victim}`, { method: 'DELETE', headers: { authorization: `Bearer ${target.adminToken}` }, signal: AbortSignal.timeout(10_000) });
          if (res.status === 204) acks.deleted.add(victim);
        } catch {
          acks.failedCalls++;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => writer(w)));
}

async function allEntryIds(target: RunningIssuer): Promise<Set<string>> {
  const ids = new Set<string>();
  let pageToken: string | undefined;
  do {
    const page = await adminCall<{ entries: { id: string }[]; nextPageToken?: string }>(target, 'GET', `/entries?pageSize=1000${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`);
    for (const e of page.entries) ids.add(e.id);
    pageToken = page.nextPageToken || undefined;
  } while (pageToken);
  return ids;
}

async function bundleOf(target: RunningIssuer) {
  return JSON.parse((await rawRequest(target.url, { method: 'GET', path: '/bundle' })).text) as { keys: { use: string; kid?: string; x5c?: string[] }[] };
}

const authorityKey = (b: { keys: { use: string; kid?: string; x5c?: string[] }[] }) => b.keys.map((k) => `${k.use}:${k.kid ?? ''}:${k.x5c?.join(',') ?? ''}`).sort();

describe.each(['SIGKILL', 'SIGTERM'] as const)('the issuer killed with %s mid-burst', (signal) => {
  it('keeps every acknowledged write, every acknowledged delete and its CA keys', async () => {
    const before = issuer!;
    const bundleBefore = await bundleOf(before);
    const acks: Acks = { created: new Set(), deleteTried: new Set(), deleted: new Set(), tokens: [], failedCalls: 0 };
    const stop = { now: false };
    const running = burst(before, acks, stop);
    // kill while writes are in flight: after enough acknowledgements, without waiting for the writers
    const deadline = Date.now() + 60_000;
    while (acks.created.size + acks.tokens.length < 120 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await signalIssuer(before, signal);
    stop.now = true;
    await running;
    issuer = undefined;
    expect(acks.created.size, 'entries acknowledged before the kill').toBeGreaterThan(50);
    expect(acks.deleted.size, 'deletes acknowledged before the kill').toBeGreaterThan(5);

    issuer = await start();
    const after = issuer;
    const present = await allEntryIds(after);
    const lost = [...acks.created].filter((id) => !acks.deleteTried.has(id) && !present.has(id));
    const resurrected = [...acks.deleted].filter((id) => present.has(id));
    expect(lost, 'acknowledged creates missing after the restart').toEqual([]);
    expect(resurrected, 'acknowledged deletes undone by the restart').toEqual([]);

    // every acknowledged join token still attests (and is spent by it)
    const attests = await Promise.all(acks.tokens.map(async (token) => (await attestWithJoinToken(after.url, token).then(() => 'ok', (e: Error) => e.message.slice(0, 120)))));
    expect(attests.filter((a) => a !== 'ok'), 'acknowledged join tokens that no longer attest').toEqual([]);

    // the CA keys survived: same authorities, the pre-kill agent SVID verifies and still authenticates
    const bundleAfter = await bundleOf(after);
    expect(authorityKey(bundleAfter)).toEqual(authorityKey(bundleBefore));
    const roots = (await parseBundleJson(bundleAfter, TD)).x509Authorities;
    const checked = await validateX509Svid(agent.chain, { now: Date.now(), roots, expectedId: agent.agentId });
    expect(checked.ok, JSON.stringify(checked)).toBe(true);
    const sync = await agentCall(after.url, agent, 'POST', '/agent/v1/sync', {});
    expect(sync.status, sync.text).toBe(200);
    console.log(`${signal}: ${acks.created.size} creates, ${acks.deleted.size} deletes, ${acks.tokens.length} join tokens acknowledged; ${acks.failedCalls} calls cut by the kill; 0 lost`);
  });
});
