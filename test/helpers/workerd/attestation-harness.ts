// A harness for cloud node attestation through the real agent routes, D1 stores and error handler, with a
// stand-in CA that counts what it signs (so "nothing issued" is checked) and an injectable fetch for the
// signing-key URLs. Signed agent calls (sync) go through the shared agent-client harness on the same DB/CA.
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { expect } from 'vitest';
import type { AttestResponse } from '../../../src/shared/agent-api.js';
import type { SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createNodeAttestors } from '../../../src/worker/attestation/node-attestor.js';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createEntryStore } from '../../../src/worker/db/entries.js';
import { createJoinTokenStore } from '../../../src/worker/db/join-tokens.js';
import { createAgentRequestStore } from '../../../src/worker/db/agent-requests.js';
import { errorHandler } from '../../../src/worker/middleware/error-handler.js';
import { agentRoutes } from '../../../src/worker/routes/agent.js';
import { createPublishedAuthoritiesCache } from '../../../src/worker/middleware/agent-auth.js';
import { fromBase64, makeCsr, toBase64 } from '../shared/agent-svid.js';
import { createHarness, TD, type Harness, type TestAgent } from './agent-client.js';
import { createFakeCa, type FakeCa } from './fake-ca.js';

export interface CloudHarness {
  ca: FakeCa;
  h: Harness;
  clock: { nowMs: number };
  attestRaw(attestationType: string, payload: unknown): Promise<Response>;
  attest(attestationType: string, payload: unknown): Promise<TestAgent & { selectors: string[] }>;
  /** asserts a refusal with this status/code, a message matching `message`, and that no SVID was signed */
  expectRefused(attestationType: string, payload: unknown, status: number, code: string, message: RegExp): Promise<void>;
}

export async function createCloudHarness(vars: { AWS_IID?: string; GCP_IIT?: string; AZURE_MSI?: string }, fetchImpl?: typeof fetch): Promise<CloudHarness> {
  const clock = { nowMs: Date.now() };
  const ca = await createFakeCa(TD, () => clock.nowMs);
  const config = parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, ...vars });
  const joinTokens = createJoinTokenStore(env.DB);
  const app = new Hono();
  app.onError(errorHandler);
  app.route(
    '/agent/v1',
    agentRoutes({
      config,
      ca: () => ca,
      clock: () => clock.nowMs,
      entries: createEntryStore(env.DB),
      agents: createAgentStore(env.DB),
      joinTokens,
      requests: createAgentRequestStore(env.DB),
      nodeAttestors: createNodeAttestors({ joinTokens, cloud: config.nodeAttestors, fetch: fetchImpl }),
      authorities: createPublishedAuthoritiesCache(),
    }),
  );
  const h = createHarness(() => ca, clock);
  const csrs = new Map<Response, Awaited<ReturnType<typeof makeCsr>>>();
  const attestRaw = async (attestationType: string, payload: unknown) => {
    const csr = await makeCsr();
    const res = await app.request('http://issuer.test/agent/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType, payload, csr: toBase64(csr.der) }) });
    csrs.set(res, csr);
    return res;
  };
  return {
    ca,
    h,
    clock,
    attestRaw,
    async attest(attestationType, payload) {
      const res = await attestRaw(attestationType, payload);
      if (res.status !== 200) throw new Error(`attest failed: ${res.status} ${await res.text()}`);
      const { svid } = (await res.json()) as AttestResponse;
      const agentId = svid.spiffeId as SpiffeId;
      const record = await createAgentStore(env.DB).get(agentId);
      return { agentId, chain: svid.certChain.map(fromBase64), keys: csrs.get(res)!.keys, selectors: (record?.nodeSelectors ?? []).map((s) => `${s.type}:${s.value}`) };
    },
    async expectRefused(attestationType, payload, status, code, message) {
      const signedBefore = ca.signedX509;
      const res = await attestRaw(attestationType, payload);
      const body = (await res.json()) as { error?: { code: string; message: string } };
      expect({ status: res.status, code: body.error?.code }).toEqual({ status, code });
      expect(body.error?.message).toMatch(message);
      expect(ca.signedX509).toBe(signedBefore);
    },
  };
}

/** A fetch serving JWK Sets by URL with the given Cache-Control, counting requests per URL. */
export function jwksServer(sets: Record<string, () => unknown>, cacheControl = 'public, max-age=3600'): { fetch: typeof fetch; count: Map<string, number> } {
  const count = new Map<string, number>();
  const fetchImpl = (async (input: RequestInfo | URL) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    count.set(url, (count.get(url) ?? 0) + 1);
    const body = sets[url];
    if (!body) return new Response('not found', { status: 404 });
    return new Response(JSON.stringify(body()), { headers: { 'content-type': 'application/json', 'cache-control': cacheControl } });
  }) as typeof fetch;
  return { fetch: fetchImpl, count };
}
