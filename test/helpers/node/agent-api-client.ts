// The agent API of a running issuer (wrangler dev or in process) spoken as wisp-agent speaks it, for e2e
// tests that send hand-made agent requests: attest with a join token, then proof-signed calls. Raw HTTP over
// node:http so a test controls every header, the framing (content-length or chunked) and the method.
import { request } from 'node:http';
import { createAgentProof, randomJti } from '../../../src/shared/agent-proof.js';
import type { AttestResponse } from '../../../src/shared/agent-api.js';
import { fromBase64, makeCsr, toBase64, type KeyPair } from '../shared/agent-svid.js';

/** An attested agent as the issuer sees it: its SPIFFE ID, SVID chain (leaf first, DER) and the leaf's keys. */
export interface AgentCredential {
  agentId: string;
  chain: Uint8Array[];
  keys: KeyPair;
}

export interface RawAnswer {
  /** HTTP status, or -1 when the connection failed or was reset (then `text` is the error) */
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface RawRequest {
  method: string;
  /** path and query, e.g. `/agent/v1/sync` */
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** send the body with Transfer-Encoding: chunked in 64 KiB writes instead of a content-length */
  chunked?: boolean;
  timeoutMs?: number;
}

/** Sends one request to `baseUrl` (http only); any transport failure is an answer with status -1. */
export function rawRequest(baseUrl: string, r: RawRequest): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  const body = r.body === undefined ? undefined : typeof r.body === 'string' ? Buffer.from(r.body) : Buffer.from(r.body);
  const headers: Record<string, string> = { ...r.headers };
  if (body && r.chunked) headers['transfer-encoding'] = 'chunked';
  else if (body && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve) => {
    const req = request({ host: url.hostname, port: url.port, path: r.path, method: r.method, headers, timeout: r.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? -1, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e) => resolve({ status: -1, headers: {}, text: String(e) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ status: -1, headers: {}, text: String(e) }));
    if (!body) return void req.end();
    if (!r.chunked) return void req.end(body);
    let sent = 0;
    const pump = (): void => {
      while (sent < body.length) {
        const part = body.subarray(sent, sent + 64 * 1024);
        sent += part.length;
        if (!req.write(part)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

/** The Authorization header wisp-agent would send for this request (`over` forges the time or the jti). */
export function agentProof(agent: AgentCredential, method: string, path: string, body: string | Uint8Array, over: { now?: number; jti?: string } = {}): Promise<string> {
  return createAgentProof({
    method,
    pathAndQuery: path,
    body,
    certChainDer: agent.chain,
    privateKey: agent.keys.privateKey,
    now: over.now ?? Date.now() / 1000,
    jti: over.jti ?? randomJti(),
  });
}

/** A proof-signed JSON call; `body` is sent as is when a string, else as JSON. */
export async function agentCall(baseUrl: string, agent: AgentCredential, method: string, path: string, body?: unknown): Promise<RawAnswer> {
  const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { authorization: await agentProof(agent, method, path, raw) };
  if (raw !== '') headers['content-type'] = 'application/json';
  return rawRequest(baseUrl, { method, path, headers, body: raw === '' ? undefined : raw });
}

/** Attests with a join token and a fresh P-256 key, as `wisp-agent run` does first. */
export async function attestWithJoinToken(baseUrl: string, token: string): Promise<AgentCredential> {
  const csr = await makeCsr();
  const res = await rawRequest(baseUrl, {
    method: 'POST',
    path: '/agent/v1/attest',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }),
  });
  if (res.status !== 200) throw new Error(`attest failed: ${res.status} ${res.text}`);
  const { svid } = JSON.parse(res.text) as AttestResponse;
  return { agentId: svid.spiffeId, chain: svid.certChain.map(fromBase64), keys: csr.keys };
}
