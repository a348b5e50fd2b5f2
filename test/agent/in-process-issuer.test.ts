// The real issuer in this Node process (test/helpers/node/in-process-issuer.ts): admin API, node attestation
// with a real CSR, a proof-signed agent call, and the public bundle, over HTTP on 127.0.0.1.
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgentProof, randomJti } from '../../src/shared/agent-proof.js';
import type { AttestResponse, BundleResponse } from '../../src/shared/agent-api.js';
import { parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { startInProcessIssuer, type InProcessIssuer } from '../helpers/node/in-process-issuer.js';
import { fromBase64, makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';

let now = Date.now();
let issuer: InProcessIssuer;

beforeAll(async () => {
  issuer = await startInProcessIssuer({ trustDomain: 'inproc.example', clock: () => now, config: { X509_SVID_TTL: '30m' } });
});
afterAll(() => issuer?.close());

describe('the in-process issuer', () => {
  it('attests an agent with a join token and serves it the bundle its SVID chains to', async () => {
    const { token } = await issuer.admin<{ token: string }>('POST', '/join-tokens', {});
    const csr = await makeCsr();
    const res = await fetch(`${issuer.url}/agent/v1/attest`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const { svid } = (await res.json()) as AttestResponse;
    const agentId = `spiffe://inproc.example/spire/agent/join_token/${token}`;
    expect(svid.spiffeId).toBe(agentId);
    const leaf = new X509Certificate(fromBase64(svid.certChain[0]!));
    expect(leaf.notAfter.getTime() - now).toBeLessThanOrEqual(30 * 60_000 + 1000);

    now += 1000;
    const path = '/agent/v1/bundle';
    const authorization = await createAgentProof({ method: 'GET', pathAndQuery: path, body: '', certChainDer: svid.certChain.map(fromBase64), privateKey: csr.keys.privateKey, now: now / 1000, jti: randomJti() });
    const agentBundle = await fetch(`${issuer.url}${path}`, { headers: { authorization } });
    expect(agentBundle.status, await agentBundle.clone().text()).toBe(200);
    const { bundle } = (await agentBundle.json()) as BundleResponse;

    const publicBundle = await fetch(`${issuer.url}/bundle`);
    expect(publicBundle.status).toBe(200);
    const published = await publicBundle.json();
    expect(published).toEqual(bundle);
    const roots = (await parseBundleJson(published, 'inproc.example')).x509Authorities;
    const checked = await validateX509Svid(svid.certChain.map(fromBase64), { now, expectedId: agentId, roots });
    expect(checked.ok, JSON.stringify(checked)).toBe(true);
  });
});

describe("the in-process issuer's time", () => {
  // Years away from the system clock: a check that read Date.now() instead of deps.clock would fail here.
  it('comes from its clock alone: join-token expiry, proof freshness and SVID validity', async () => {
    now = Date.UTC(2036, 5, 1, 12, 0, 0);
    const attest = async (token: string) => {
      const csr = await makeCsr();
      const res = await fetch(`${issuer.url}/agent/v1/attest`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: toBase64(csr.der) }),
      });
      return { res, csr };
    };
    // a token made at `now` expires ttlSeconds after `now`
    const expired = (await issuer.admin<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 60 })).token;
    now += 61_000;
    expect((await (await attest(expired)).res.json()) as unknown).toMatchObject({ error: { code: 'ERR_JOIN_TOKEN_INVALID' } });

    const { token } = await issuer.admin<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 60 });
    const { res, csr } = await attest(token);
    expect(res.status, await res.clone().text()).toBe(200);
    const { svid } = (await res.json()) as AttestResponse;
    const leaf = new X509Certificate(fromBase64(svid.certChain[0]!));
    expect(leaf.notBefore.getTime()).toBeLessThanOrEqual(now);
    expect(leaf.notAfter.getTime()).toBeGreaterThan(now);

    const path = '/agent/v1/bundle';
    const signedAt = async (at: number) =>
      fetch(`${issuer.url}${path}`, {
        headers: { authorization: await createAgentProof({ method: 'GET', pathAndQuery: path, body: '', certChainDer: svid.certChain.map(fromBase64), privateKey: csr.keys.privateKey, now: at / 1000, jti: randomJti() }) },
      });
    expect((await signedAt(now)).status).toBe(200);
    // a proof made at the system time is years outside AGENT_REQUEST_MAX_SKEW of the issuer's clock
    expect((await signedAt(Date.now())).status).toBe(401);
  });
});

/** Every relative import reachable from `entry`, by path. */
function importGraph(entry: string, seen = new Map<string, string[]>()): Map<string, string[]> {
  if (seen.has(entry)) return seen;
  const specs = [...readFileSync(entry, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1]!);
  seen.set(entry, specs);
  for (const spec of specs.filter((x) => x.startsWith('.'))) {
    const file = resolve(dirname(entry), spec.replace(/\.js$/, '.ts'));
    if (existsSync(file)) importGraph(file, seen);
  }
  return seen;
}

it('builds the app, the wiring and the CA core with no cloudflare:* import on their path', () => {
  const roots = ['app.ts', 'wiring.ts', 'ca/ca-core.ts', 'ca/ca-storage.ts', 'config.ts'].map((f) => resolve('src/worker', f));
  const graph = new Map<string, string[]>();
  for (const root of roots) importGraph(root, graph);
  expect(graph.size).toBeGreaterThan(20);
  for (const [file, specs] of graph) for (const spec of specs) expect(spec, file).not.toMatch(/^cloudflare:/);
  expect([...graph.keys()].some((f) => f.endsWith('trust-domain-ca.ts'))).toBe(false);
});
