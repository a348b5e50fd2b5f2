// agent-proof: the request-signing scheme of the agent API, on Node and workerd (STYLE G17).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { base64url, CompactSign } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AGENT_PROOF_MAX_BYTES,
  createAgentProof,
  normalizeSerialNumber,
  randomJti,
  type CreateAgentProofOptions,
} from '../../src/shared/agent-proof.js';
import { verifyAgentProof, type VerifyAgentProofOptions } from '../../src/shared/agent-proof-verify.js';
import { parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { makeIntermediateCa, makeRootCa, makeSvid, toBase64, type KeyPair, type TestCert } from '../helpers/shared/agent-svid.js';

const NOW = 1_800_000_000;
const TD = parseTrustDomain('example.org');
const AGENT_ID = 'spiffe://example.org/spire/agent/join_token/abc';
const BODY = new TextEncoder().encode('{"revision":"7"}');

let root: TestCert;
let otherRoot: TestCert;
let svid: TestCert;

beforeAll(async () => {
  root = await makeRootCa('example.org', NOW);
  otherRoot = await makeRootCa('example.org', NOW, { name: 'Impostor CA' });
  svid = await makeSvid(root, AGENT_ID, NOW, { serialNumber: '00a1b2c3' });
});

function sign(over: Partial<CreateAgentProofOptions> = {}, leaf: TestCert = svid): Promise<string> {
  return createAgentProof({
    method: 'POST',
    pathAndQuery: '/agent/v1/sync',
    body: BODY,
    certChainDer: [leaf.der],
    privateKey: leaf.keys.privateKey,
    now: NOW,
    jti: randomJti(),
    ...over,
  });
}

function check(authorization: string | undefined, over: Partial<VerifyAgentProofOptions> = {}) {
  return verifyAgentProof({
    authorization,
    method: 'POST',
    pathAndQuery: '/agent/v1/sync',
    body: BODY,
    x509Authorities: [root.der],
    trustDomain: TD,
    now: NOW,
    maxSkewSeconds: 60,
    ...over,
  });
}

async function expectFailure(authorization: string | undefined, over: Partial<VerifyAgentProofOptions> = {}, reason?: RegExp) {
  const r = await check(authorization, over);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.error.code).toBe('ERR_AGENT_AUTH_FAILED');
    if (reason) expect(r.error.message).toMatch(reason);
  }
}

function compact(header: object, payload: object, signature = 'c2ln'): string {
  const enc = (o: object) => base64url.encode(new TextEncoder().encode(JSON.stringify(o)));
  return `WispAgentProof ${enc(header)}.${enc(payload)}.${signature}`;
}

describe('verifyAgentProof accepts', () => {
  it('a proof signed by an agent SVID issued by a trust domain authority', async () => {
    const jti = randomJti();
    const r = await check(await sign({ jti }));
    expect(r).toEqual({
      ok: true,
      // svidNotBefore in ms (revocation cutoffs compare it): the test SVID's notBefore is NOW - 60 s
      value: { agentId: AGENT_ID, serialNumber: 'a1b2c3', jti, expiresAt: NOW + 60, svidExpiresAt: NOW + 3600, svidNotBefore: (NOW - 60) * 1000 },
    });
  });

  it('a proof within the skew either side of now', async () => {
    expect((await check(await sign({ now: NOW - 60 }))).ok).toBe(true);
    expect((await check(await sign({ now: NOW + 60 }))).ok).toBe(true);
  });

  it('an ES384 proof by a P-384 SVID', async () => {
    const p384 = await makeSvid(root, AGENT_ID, NOW, { curve: 'P-384' });
    expect((await check(await sign({}, p384))).ok).toBe(true);
  });

  it('a chain through an intermediate, with or without the root in x5c', async () => {
    const mid = await makeIntermediateCa(root, 'example.org', NOW);
    const leaf = await makeSvid(mid, AGENT_ID, NOW);
    expect((await check(await sign({ certChainDer: [leaf.der, mid.der] }, leaf))).ok).toBe(true);
    expect((await check(await sign({ certChainDer: [leaf.der, mid.der, root.der] }, leaf))).ok).toBe(true);
  });

  it('an empty body, a GET with a query, and any of several authorities', async () => {
    const auth = await sign({ method: 'get', pathAndQuery: '/agent/v1/bundle?x=1', body: undefined });
    const r = await check(auth, { method: 'GET', pathAndQuery: '/agent/v1/bundle?x=1', body: new Uint8Array(), x509Authorities: [otherRoot.der, root.der] });
    expect(r.ok).toBe(true);
  });
});

describe('verifyAgentProof rejects', () => {
  it('a missing, oversized, wrongly-schemed or non-JWS header', async () => {
    await expectFailure(undefined, {}, /no Authorization/);
    await expectFailure('', {}, /no Authorization/);
    await expectFailure(`WispAgentProof ${'a'.repeat(AGENT_PROOF_MAX_BYTES)}`, {}, /too large/);
    await expectFailure((await sign()).replace('WispAgentProof', 'Bearer'), {}, /scheme/);
    await expectFailure('WispAgentProof not-a-jws', {}, /compact JWS/);
    await expectFailure('WispAgentProof a.b.c', {});
  });

  it('a request whose method, path, query or body differs from the signed one', async () => {
    const auth = await sign();
    await expectFailure(auth, { method: 'PUT' }, /htm/);
    await expectFailure(auth, { pathAndQuery: '/agent/v1/renew' }, /htu/);
    await expectFailure(auth, { pathAndQuery: '/agent/v1/sync?a=1' }, /htu/);
    await expectFailure(auth, { body: new TextEncoder().encode('{"revision":"8"}') }, /bdh/);
  });

  it('a stale or future proof', async () => {
    await expectFailure(await sign({ now: NOW - 61 }), {}, /skew/);
    await expectFailure(await sign({ now: NOW + 61 }), {}, /skew/);
  });

  it('an SVID from another CA (forged chain)', async () => {
    const forged = await makeSvid(otherRoot, AGENT_ID, NOW);
    await expectFailure(await sign({}, forged), {}, /authority/);
  });

  it('a leaf carrying the right issuer name but signed by another key', async () => {
    const forged = await makeSvid(root, AGENT_ID, NOW, { signingKey: otherRoot.keys.privateKey });
    await expectFailure(await sign({}, forged), {}, /authority/);
  });

  it('a JWS signed by a key other than the leaf key', async () => {
    const other = await makeSvid(root, AGENT_ID, NOW);
    await expectFailure(await sign({ certChainDer: [svid.der], privateKey: other.keys.privateKey }), {}, /signature/);
  });

  it('a tampered payload', async () => {
    const [h, , s] = (await sign()).slice('WispAgentProof '.length).split('.');
    const payload = base64url.encode(new TextEncoder().encode(JSON.stringify({ htm: 'POST', htu: '/agent/v1/sync', bdh: 'x', iat: NOW, jti: randomJti() })));
    await expectFailure(`WispAgentProof ${h}.${payload}.${s}`, {}, /signature/);
  });

  it('an expired or not-yet-valid SVID, and an expired authority', async () => {
    const expired = await makeSvid(root, AGENT_ID, NOW - 7200, { ttl: 3600 });
    await expectFailure(await sign({}, expired), {}, /not valid at this time/);
    const future = await makeSvid(root, AGENT_ID, NOW, { notBeforeOffset: 600 });
    await expectFailure(await sign({}, future), {}, /not valid at this time/);
    const shortRoot = await makeRootCa('example.org', NOW - 7200, { ttl: 3600 });
    const leaf = await makeSvid(shortRoot, AGENT_ID, NOW);
    await expectFailure(await sign({}, leaf), { x509Authorities: [shortRoot.der] }, /authority/);
  });

  it('a leaf that is not an agent X509-SVID of the trust domain', async () => {
    const workload = await makeSvid(root, 'spiffe://example.org/ns/prod/sa/web', NOW);
    await expectFailure(await sign({}, workload), {}, /not an agent ID/);
    const foreign = await makeSvid(root, 'spiffe://other.org/spire/agent/x', NOW);
    await expectFailure(await sign({}, foreign), {}, /outside the trust domain/);
    const twoUris = await makeSvid(root, AGENT_ID, NOW, { uris: [AGENT_ID, 'spiffe://example.org/spire/agent/y'] });
    await expectFailure(await sign({}, twoUris), {}, /exactly one URI SAN/);
    const notSpiffe = await makeSvid(root, 'https://example.org/spire/agent/x', NOW);
    await expectFailure(await sign({}, notSpiffe), {}, /not a SPIFFE ID/);
    const ca = await makeSvid(root, AGENT_ID, NOW, { ca: true, keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign });
    await expectFailure(await sign({}, ca), {}, /CA/);
  });

  it('a chain whose middle certificate is not a CA', async () => {
    const middle = await makeSvid(root, 'spiffe://example.org/spire/agent/mid', NOW);
    const leaf = await makeSvid(middle, AGENT_ID, NOW);
    await expectFailure(await sign({ certChainDer: [leaf.der, middle.der] }, leaf), {}, /not a CA/);
  });

  it('algorithms outside the allow-list, a wrong typ, and malformed x5c', async () => {
    const payload = { htm: 'POST', htu: '/agent/v1/sync', bdh: 'x', iat: NOW, jti: randomJti() };
    const x5c = [toBase64(svid.der)];
    await expectFailure(compact({ alg: 'none', typ: 'wisp-agent-proof+jwt', x5c }, payload, ''), {});
    await expectFailure(compact({ alg: 'HS256', typ: 'wisp-agent-proof+jwt', x5c }, payload), {}, /alg HS256/);
    await expectFailure(compact({ alg: 'RS256', typ: 'wisp-agent-proof+jwt', x5c }, payload), {}, /alg RS256/);
    await expectFailure(compact({ alg: 'ES256', typ: 'JWT', x5c }, payload), {}, /typ/);
    await expectFailure(compact({ alg: 'ES256', typ: 'wisp-agent-proof+jwt' }, payload), {}, /x5c/);
    await expectFailure(compact({ alg: 'ES256', typ: 'wisp-agent-proof+jwt', x5c: ['!!'] }, payload), {}, /base64/);
    await expectFailure(compact({ alg: 'ES256', typ: 'wisp-agent-proof+jwt', x5c: ['AAAA'] }, payload), {}, /could not be processed/);
    await expectFailure(compact({ alg: 'ES256', typ: 'wisp-agent-proof+jwt', x5c: Array(5).fill(x5c[0]) }, payload), {}, /x5c/);
  });

  it('an ES384 header over a P-256 key', async () => {
    const payload = new TextEncoder().encode(JSON.stringify({ htm: 'POST', htu: '/agent/v1/sync', bdh: 'x', iat: NOW, jti: randomJti() }));
    const header = { alg: 'ES384', typ: 'wisp-agent-proof+jwt', x5c: [toBase64(svid.der)] };
    const p384 = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign'])) as unknown as KeyPair;
    const jws = await new CompactSign(payload).setProtectedHeader(header).sign(p384.privateKey);
    await expectFailure(`WispAgentProof ${jws}`, {}, /does not fit/);
  });

  it('a missing or short jti', async () => {
    const payload = (jti: unknown) => new TextEncoder().encode(JSON.stringify({ htm: 'POST', htu: '/agent/v1/sync', bdh: 'HnsKsO3cjhRSXJPd6fYsh7WmVtTlSL0TQJe1xBKL6Xk', iat: NOW, jti }));
    for (const jti of [undefined, 'short', 'x'.repeat(200), 'has spaces in it and is long enough']) {
      const jws = await new CompactSign(payload(jti)).setProtectedHeader({ alg: 'ES256', typ: 'wisp-agent-proof+jwt', x5c: [toBase64(svid.der)] }).sign(svid.keys.privateKey);
      await expectFailure(`WispAgentProof ${jws}`, {});
    }
  });
});

describe('createAgentProof', () => {
  it('refuses a short jti, an empty chain and a non-EC key', async () => {
    await expect(sign({ jti: 'abc' })).rejects.toThrow(TypeError);
    await expect(sign({ certChainDer: [] })).rejects.toThrow(TypeError);
    const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    await expect(sign({ privateKey: hmac as unknown as KeyPair['privateKey'] })).rejects.toThrow(TypeError);
  });

  it('binds htm, htu, bdh, iat and jti in the payload with x5c in the header', async () => {
    const jti = randomJti();
    const [h, p] = (await sign({ jti, now: NOW + 0.7 })).slice('WispAgentProof '.length).split('.');
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(h!)));
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(p!)));
    expect(header).toEqual({ alg: 'ES256', typ: 'wisp-agent-proof+jwt', x5c: [toBase64(svid.der)] });
    const digest = base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', BODY)));
    expect(payload).toEqual({ htm: 'POST', htu: '/agent/v1/sync', bdh: digest, iat: NOW, jti });
  });
});

it('normalizeSerialNumber gives lowercase hex without leading zeros', () => {
  expect(normalizeSerialNumber('00A1B2')).toBe('a1b2');
  expect(normalizeSerialNumber('0f')).toBe('f');
  expect(normalizeSerialNumber('00')).toBe('0');
});
