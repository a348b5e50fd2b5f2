// Calls to the real Worker entry point (exports.default: the wiring, the real TrustDomainCa Durable Object,
// real D1): the admin API with the test run's ADMIN_TOKEN, agent attestation with an admin-made join token,
// and proof-signed agent API calls, as a wisp-agent makes them.
import { env, exports } from 'cloudflare:workers';
import { expect } from 'vitest';
import { createAgentProof, randomJti } from '../../../src/shared/agent-proof.js';
import type { AttestResponse } from '../../../src/shared/agent-api.js';
import { fromBase64, makeCsr, toBase64, type KeyPair } from '../shared/agent-svid.js';

export const BASE = 'http://issuer.test';
export const ADMIN = { authorization: `Bearer ${(env as unknown as { ADMIN_TOKEN: string }).ADMIN_TOKEN}`, 'content-type': 'application/json' };

export interface Agent {
  agentId: string;
  chain: Uint8Array[];
  keys: KeyPair;
}

export const fetchWorker = (path: string, init?: RequestInit) => exports.default.fetch(new Request(`${BASE}${path}`, init));

/** POST to the admin API; expects a 2xx and returns its JSON. */
export async function admin(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetchWorker(`/admin/v1${path}`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return (await res.json()) as Record<string, unknown>;
}

/** A proof-signed agent API call. */
export async function call(agent: Agent, method: string, path: string, body?: unknown): Promise<Response> {
  const raw = body === undefined ? '' : JSON.stringify(body);
  const authorization = await createAgentProof({ method, pathAndQuery: path, body: raw, certChainDer: agent.chain, privateKey: agent.keys.privateKey, now: Date.now() / 1000, jti: randomJti() });
  return fetchWorker(path, { method, headers: { authorization, ...(raw ? { 'content-type': 'application/json' } : {}) }, body: raw || undefined });
}

/** An agent attested with a new join token from the admin API. */
export async function attestNew(): Promise<Agent> {
  const { token } = (await admin('/join-tokens', {})) as { token: string };
  const csr = await makeCsr();
  const r = await fetchWorker('/agent/v1/attest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }) });
  expect(r.status, await r.clone().text()).toBe(200);
  const { svid } = (await r.json()) as AttestResponse;
  return { agentId: svid.spiffeId, chain: svid.certChain.map(fromBase64), keys: csr.keys };
}
