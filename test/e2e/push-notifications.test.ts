// Entry changes pushed, not polled, end to end: the real issuer (wrangler dev: workerd, the AgentNotifier
// Durable Object, local D1), a real wisp-agent whose poll is 300 s, and a FetchX509SVID stream on its socket.
// An entry created through the admin API reaches the open stream, and a deleted one leaves it, long before
// the poll could have run; the channel itself refuses an upgrade without an agent proof.
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { rawRequest } from '../helpers/node/agent-api-client.js';
import { adminCall, startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';

const TD = 'example.org';
const POLL_SECONDS = 300;
const selector = { type: 'unix', value: `uid:${process.getuid?.() ?? 0}` };

let root: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let agentId: string;
let client: WorkloadApiClient;
const seen: string[][] = [];
const stream = new AbortController();

const has = (spiffeId: string) => seen.at(-1)?.includes(spiffeId) ?? false;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-push-e2e-'));
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
  const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 300 });
  agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
  await adminCall(issuer, 'POST', '/entries', { spiffeId: `spiffe://${TD}/first`, parentId: agentId, selectors: [selector] });
  const socketPath = join(root, 'agent.sock');
  agent = await startAgent({ serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent'), socketPath, joinToken: token, syncIntervalSeconds: POLL_SECONDS });
  client = createWorkloadApiClient(`unix://${socketPath}`);
  // PermissionDenied until the agent holds the first SVID: reopen until the stream answers, then keep it open
  void (async () => {
    while (!stream.signal.aborted && seen.length === 0) {
      try {
        for await (const res of client.fetchX509SVID({ signal: stream.signal })) seen.push(res.svids.map((s) => s.spiffeId).sort());
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  })();
  await waitFor('the first SVID on the stream', async () => (has(`spiffe://${TD}/first`) ? true : undefined), 60_000, 100);
  await waitFor('the notification channel', async () => (/notification channel open/.test(agent.output()) ? true : undefined), 30_000, 100);
}, 180_000);

afterAll(async () => {
  stream.abort();
  client?.close();
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('with a 300 s poll', () => {
  it('an entry created through the admin API reaches the open stream, and a deleted one leaves it', async () => {
    const spiffeId = `spiffe://${TD}/pushed`;
    const { entry } = await adminCall<{ entry: { id: string } }>(issuer, 'POST', '/entries', { spiffeId, parentId: agentId, selectors: [selector] });
    const t0 = Date.now();
    await waitFor('the pushed SVID on the stream', async () => (has(spiffeId) ? true : undefined), 30_000, 20);
    const created = Date.now() - t0;
    await adminCall(issuer, 'DELETE', `/entries/${entry.id}`);
    const t1 = Date.now();
    await waitFor('the SVID gone from the stream', async () => (!has(spiffeId) ? true : undefined), 30_000, 20);
    // far below the poll: only the notice can have made the agent sync
    expect(created).toBeLessThan(POLL_SECONDS * 1000 / 10);
    expect(Date.now() - t1).toBeLessThan(POLL_SECONDS * 1000 / 10);
    expect(seen.at(-1)).toEqual([`spiffe://${TD}/first`]);
  });

  it('the channel refuses an upgrade without an agent proof, before upgrading', async () => {
    const headers = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const res = await rawRequest(issuer.url, { method: 'GET', path: '/agent/v1/notifications', headers });
    expect(res.status).toBe(401);
    expect((JSON.parse(res.text) as { error: { code: string } }).error.code).toBe('ERR_AGENT_AUTH_FAILED');
    const refused = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`${issuer.url.replace(/^http/, 'ws')}/agent/v1/notifications`);
      ws.addEventListener('open', () => resolve(false));
      ws.addEventListener('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});
