// Agent API: bad input for every endpoint gets a clear 4xx {"error":{"code","message"}} and changes nothing.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_API_LIMITS } from '../../src/shared/agent-api.js';
import { concatBytes } from '../../src/shared/encoding/bytes.js';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { createHarness, expectError, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

let ca: TestCa;
let h: Harness;
let agent: TestAgent;
let entryId: string;
let goodCsr: string;
const badCsrs: Record<string, string> = {};

beforeAll(async () => {
  const clock = { nowMs: Date.now() };
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
  agent = await h.attestFresh();
  entryId = (await h.createEntry({ spiffeId: `spiffe://example.org/w-${crypto.randomUUID()}` as never, parentId: agent.agentId })).id;
  const csr = await makeCsr();
  goodCsr = toBase64(csr.der);
  const tampered = csr.der.slice();
  const last = tampered.length - 2;
  tampered[last] = tampered[last]! ^ 0x01;
  const rsaKeys = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, false, ['sign', 'verify'])) as never;
  const weak = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'O=SPIRE', keys: rsaKeys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } });
  Object.assign(badCsrs, {
    'not base64': '%%%',
    'not a CSR': toBase64(new TextEncoder().encode('hello, world')),
    'wrongly signed': toBase64(tampered),
    'RSA-1024 (unsupported key)': toBase64(new Uint8Array(weak.rawData)),
    'too large': 'A'.repeat(12 * 1024),
    'followed by 00 00 00': toBase64(concatBytes([csr.der, new Uint8Array(3)])),
    'followed by a second CSR': toBase64(concatBytes([csr.der, (await makeCsr()).der])),
    'followed by 2 KB of junk': toBase64(concatBytes([csr.der, crypto.getRandomValues(new Uint8Array(2048))])),
  });
});

const signedPosts = () => [
  { path: '/agent/v1/renew', body: { csr: goodCsr } },
  { path: '/agent/v1/sync', body: {} },
  { path: '/agent/v1/x509-svids', body: { requests: [{ entryId, csr: goodCsr }] } },
  { path: '/agent/v1/jwt-svids', body: { requests: [{ entryId, audience: ['a'] }] } },
];

describe('every endpoint', () => {
  it('rejects malformed JSON, a non-object body, and the wrong content type', async () => {
    const attest = (body: string, ct = 'application/json') => h.attestRaw(body, { 'content-type': ct });
    await expectError(await attest('{"attestationType":'), 400, 'ERR_BAD_REQUEST');
    await expectError(await attest('[1,2]'), 400, 'ERR_BAD_REQUEST');
    await expectError(await attest('{}', 'text/plain'), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    for (const { path, body } of signedPosts()) {
      await expectError(await h.call(agent, 'POST', path, undefined, { rawBody: '{"oops"' }), 400, 'ERR_BAD_REQUEST');
      await expectError(await h.call(agent, 'POST', path, undefined, { rawBody: '"str"' }), 400, 'ERR_BAD_REQUEST');
      await expectError(await h.call(agent, 'POST', path, undefined, { rawBody: JSON.stringify(body), contentType: 'application/x-www-form-urlencoded' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('rejects a body over the limit with 413', async () => {
    const big = (n: number) => JSON.stringify({ pad: 'x'.repeat(n) });
    await expectError(await h.attestRaw(big(70 * 1024)), 413, 'ERR_REQUEST_TOO_LARGE');
    await expectError(await h.call(agent, 'POST', '/agent/v1/sync', undefined, { rawBody: big(70 * 1024) }), 413, 'ERR_REQUEST_TOO_LARGE');
    await expectError(await h.call(agent, 'POST', '/agent/v1/x509-svids', undefined, { rawBody: big(AGENT_API_LIMITS.MAX_BODY_BYTES) }), 413, 'ERR_REQUEST_TOO_LARGE');
  });

  it('rejects unknown methods and paths with JSON errors', async () => {
    await expectError(await h.fetch('/agent/v1/nope', { method: 'POST' }), 404, 'ERR_NOT_FOUND');
  });
});

describe('CSRs', () => {
  it('are refused when garbage, wrongly signed, of an unsupported key or too large: attest, renew, x509-svids', async () => {
    for (const [what, csr] of Object.entries(badCsrs)) {
      const token = crypto.randomUUID();
      await h.createToken(token);
      const a = await h.attestRaw({ attestationType: 'join_token', payload: { token }, csr });
      expect(a.status, what).toBe(400);
      expect(((await a.json()) as { error: { code: string } }).error.code, what).toBe('ERR_CSR_INVALID');
      await expectError(await h.call(agent, 'POST', '/agent/v1/renew', { csr }), 400, 'ERR_CSR_INVALID');
      const before = ca.signedX509;
      await expectError(await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId, csr: goodCsr }, { entryId, csr }] }), 400, 'ERR_CSR_INVALID');
      expect(ca.signedX509, what).toBe(before);
    }
  });

  it('must be present and strings', async () => {
    await expectError(await h.attestRaw({ attestationType: 'join_token', payload: { token: 'x' } }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.call(agent, 'POST', '/agent/v1/renew', { csr: 42 }), 400, 'ERR_BAD_REQUEST');
  });
});

describe('attest', () => {
  it('rejects a missing or unknown attestation type and a non-object payload', async () => {
    await expectError(await h.attestRaw({ payload: {}, csr: goodCsr }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.attestRaw({ attestationType: 'aws_iid', payload: {}, csr: goodCsr }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.attestRaw({ attestationType: '__proto__', payload: {}, csr: goodCsr }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.attestRaw({ attestationType: 'join_token', payload: 'tok', csr: goodCsr }), 400, 'ERR_BAD_REQUEST');
  });
});

describe('sync', () => {
  it('rejects a mistyped revision or bundle sequence', async () => {
    await expectError(await h.call(agent, 'POST', '/agent/v1/sync', { revision: 7 }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.call(agent, 'POST', '/agent/v1/sync', { revision: 'x'.repeat(500) }), 400, 'ERR_BAD_REQUEST');
    await expectError(await h.call(agent, 'POST', '/agent/v1/sync', { bundleSequence: '1' }), 400, 'ERR_BAD_REQUEST');
  });
});

describe('batches', () => {
  it('reject an empty, missing, oversized or malformed request list', async () => {
    for (const path of ['/agent/v1/x509-svids', '/agent/v1/jwt-svids']) {
      await expectError(await h.call(agent, 'POST', path, {}), 400, 'ERR_BAD_REQUEST');
      await expectError(await h.call(agent, 'POST', path, { requests: [] }), 400, 'ERR_BAD_REQUEST');
      await expectError(await h.call(agent, 'POST', path, { requests: [42] }), 400, 'ERR_BAD_REQUEST');
      await expectError(await h.call(agent, 'POST', path, { requests: [{ csr: goodCsr, audience: ['a'] }] }), 400, 'ERR_BAD_REQUEST');
    }
    const many = Array.from({ length: AGENT_API_LIMITS.MAX_BATCH_CSRS + 1 }, () => ({ entryId, csr: goodCsr }));
    await expectError(await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: many }), 413, 'ERR_REQUEST_TOO_LARGE');
    const jwts = Array.from({ length: AGENT_API_LIMITS.MAX_BATCH_JWTS + 1 }, () => ({ entryId, audience: ['a'] }));
    await expectError(await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: jwts }), 413, 'ERR_REQUEST_TOO_LARGE');
  });

  it('jwt-svids: audience must be a bounded, non-empty array of non-empty strings', async () => {
    const before = ca.signedJwt;
    for (const audience of [undefined, 'a', [], [''], [1], Array(AGENT_API_LIMITS.MAX_AUDIENCES + 1).fill('a'), ['x'.repeat(AGENT_API_LIMITS.MAX_AUDIENCE_BYTES + 1)], ['é'.repeat(Math.floor(AGENT_API_LIMITS.MAX_AUDIENCE_BYTES / 2) + 1)]]) {
      await expectError(await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId, audience }] }), 400, 'ERR_BAD_REQUEST');
    }
    expect(ca.signedJwt).toBe(before);
    // the limit is in UTF-8 bytes: 256 two-byte characters are exactly at it
    const atLimit = await h.call(agent, 'POST', '/agent/v1/jwt-svids', { requests: [{ entryId, audience: ['é'.repeat(AGENT_API_LIMITS.MAX_AUDIENCE_BYTES / 2)] }] });
    expect(atLimit.status).toBe(200);
  });
});
