// A harness for cloud node attestation through the real app (agent-client.ts: createApp over createAppDeps,
// real D1 stores and error handler) with the cloud attestor vars and an injectable fetch for the signing-key
// URLs, and the real CA core (test-ca.ts), which counts what it signs (so "nothing issued" is checked).
import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import type { AttestResponse } from '../../../src/shared/agent-api.js';
import type { SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { fromBase64, makeCsr, toBase64 } from '../shared/agent-svid.js';
import { createHarness, TD, type Harness, type TestAgent } from './agent-client.js';
import { createTestCa, type TestCa } from './test-ca.js';

export interface CloudHarness {
  ca: TestCa;
  h: Harness;
  clock: { nowMs: number };
  attestRaw(attestationType: string, payload: Payload): Promise<Response>;
  attest(attestationType: string, payload: Payload): Promise<TestAgent & { selectors: string[] }>;
  /** asserts a refusal with this status/code, a message matching `message`, and that no SVID was signed */
  expectRefused(attestationType: string, payload: Payload, status: number, code: string, message: RegExp): Promise<void>;
}

/** The payload, or a function of the attest request's CSR public key (x509pop signs over it). */
export type Payload = unknown | ((csrPublicKeySpki: Uint8Array) => Promise<unknown>);

export async function createCloudHarness(vars: { AWS_IID?: string; GCP_IIT?: string; AZURE_MSI?: string; K8S_PSAT?: string; X509POP?: string }, fetchImpl?: typeof fetch): Promise<CloudHarness> {
  const clock = { nowMs: Date.now() };
  const ca = createTestCa(TD, () => clock.nowMs);
  const h = createHarness(() => ca, clock, { vars, fetch: fetchImpl });
  const csrs = new Map<Response, Awaited<ReturnType<typeof makeCsr>>>();
  const attestRaw = async (attestationType: string, payload: Payload) => {
    const csr = await makeCsr();
    const spki = new Uint8Array((await crypto.subtle.exportKey('spki', csr.keys.publicKey)) as ArrayBuffer);
    const body = typeof payload === 'function' ? await (payload as (s: Uint8Array) => Promise<unknown>)(spki) : payload;
    const res = await h.attestRaw({ attestationType, payload: body, csr: toBase64(csr.der) });
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
