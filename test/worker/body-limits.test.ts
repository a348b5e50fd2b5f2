// Oversize request bodies, sent chunked (no content-length), to every route group that takes a body: each
// gets 413 with the JSON error, nothing of the body is kept, and the rest of the body is read and dropped up
// to OVERSIZE_DRAIN_MAX_BYTES (so the sender finishes and a proxy passes the 413 on; issue 20), past that
// it is cancelled.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_API_LIMITS } from '../../src/shared/agent-api.js';
import { MAX_BUNDLE_BYTES } from '../../src/shared/spiffe/bundle.js';
import { MAX_JSON_BODY_BYTES, OVERSIZE_DRAIN_MAX_BYTES } from '../../src/worker/http-json.js';
import { ADMIN_BATCH_MAX_BODY_BYTES } from '../../src/worker/routes/admin/params.js';
import { AGENT_SMALL_BODY_MAX_BYTES } from '../../src/worker/routes/agent.js';
import { BASE, createHarness, TD, type Harness } from '../helpers/workerd/agent-client.js';
import { createTestCa } from '../helpers/workerd/test-ca.js';

const ADMIN_TOKEN = (env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN;
const CHUNK = 64 * 1024;
let h: Harness;

beforeAll(async () => {
  const clock = { nowMs: Date.now() };
  const ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
});

/** A body of `total` bytes streamed in 64 KiB chunks, recording how much was pulled and whether it was cancelled. */
function chunkedBody(total: number) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= total) return controller.close();
      const n = Math.min(CHUNK, total - state.pulled);
      state.pulled += n;
      controller.enqueue(new Uint8Array(n).fill(0x20));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

const agentProof = { authorization: 'WispAgentProof x.y.z' };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
/** [method, path, headers, limit of that route (federation routes allow a little more than a bundle; 4 chunks over is over)] */
const routes: [string, string, Record<string, string>, number][] = [
  ['POST', '/agent/v1/attest', {}, AGENT_SMALL_BODY_MAX_BYTES],
  ['POST', '/agent/v1/renew', agentProof, AGENT_SMALL_BODY_MAX_BYTES],
  ['POST', '/agent/v1/sync', agentProof, AGENT_SMALL_BODY_MAX_BYTES],
  ['POST', '/agent/v1/x509-svids', agentProof, AGENT_API_LIMITS.MAX_BODY_BYTES],
  ['POST', '/agent/v1/jwt-svids', agentProof, AGENT_API_LIMITS.MAX_BODY_BYTES],
  ['POST', '/agent/v1/federation/bundles', agentProof, MAX_BUNDLE_BYTES],
  ['POST', '/admin/v1/entries', admin, MAX_JSON_BODY_BYTES],
  ['POST', '/admin/v1/entries/batch-create', admin, ADMIN_BATCH_MAX_BODY_BYTES],
  ['POST', '/admin/v1/join-tokens', admin, MAX_JSON_BODY_BYTES],
  ['POST', '/admin/v1/x509-svids/mint', admin, MAX_JSON_BODY_BYTES],
  ['POST', '/admin/v1/jwt-svids/mint', admin, MAX_JSON_BODY_BYTES],
  ['POST', '/admin/v1/federation', admin, MAX_BUNDLE_BYTES],
  ['PUT', '/admin/v1/bundles/partner.test', admin, MAX_BUNDLE_BYTES],
];

async function send(method: string, path: string, headers: Record<string, string>, total: number) {
  const { stream, state } = chunkedBody(total);
  const req = new Request(`${BASE}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: stream });
  expect(req.headers.get('content-length')).toBeNull();
  const res = await h.app.request(req, undefined, env);
  return { res, state };
}

async function expectJson413(res: Response): Promise<void> {
  expect(res.status).toBe(413);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe('ERR_REQUEST_TOO_LARGE');
  expect(body.error.message).toMatch(/larger than \d+ bytes/);
}

describe('an oversize chunked body', () => {
  it.each(routes)('%s %s: 413 with the JSON error; the rest of the body is read, not kept', async (method, path, headers, limit) => {
    const total = limit + 4 * CHUNK;
    const { res, state } = await send(method, path, headers, total);
    await expectJson413(res);
    expect(state).toEqual({ pulled: total, cancelled: false });
  });

  it(`is cancelled once ${OVERSIZE_DRAIN_MAX_BYTES} bytes past the limit were dropped`, async () => {
    const total = AGENT_SMALL_BODY_MAX_BYTES + OVERSIZE_DRAIN_MAX_BYTES + 64 * CHUNK;
    const { res, state } = await send('POST', '/agent/v1/attest', {}, total);
    await expectJson413(res);
    expect(state.cancelled).toBe(true);
    expect(state.pulled).toBeLessThanOrEqual(AGENT_SMALL_BODY_MAX_BYTES + OVERSIZE_DRAIN_MAX_BYTES + 3 * CHUNK);
  });

  it('a declared content-length over the limit is refused without reading a body that far past it', async () => {
    const { stream, state } = chunkedBody(AGENT_SMALL_BODY_MAX_BYTES + OVERSIZE_DRAIN_MAX_BYTES + 64 * CHUNK);
    const req = new Request(`${BASE}/agent/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(1024 * 1024 * 1024) }, body: stream });
    await expectJson413(await h.app.request(req, undefined, env));
    expect(state.pulled).toBeLessThanOrEqual(2 * CHUNK);
  });
});
