// x509pop through the agent routes in workerd (real D1, real CA core): the challenge round trip, attestation
// of device certificates under X509POP's CA bundles with SPIRE's agent ID and selectors, re-attestation,
// the refusals with nothing signed (another key, another CSR key, replayed or unknown or expired nonce,
// expired certificate, foreign CA, no digitalSignature), the challenge route's own refusals, X509POP errors.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { toPem } from '../../../src/shared/encoding/pem.js';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { TD } from '../../helpers/workerd/agent-client.js';
import { createCloudHarness, type CloudHarness } from '../../helpers/workerd/attestation-harness.js';
import { makeDeviceCa, makeDeviceLeaf, x509popPayload, type DeviceCert } from '../../helpers/shared/device-pki.js';

let root: DeviceCert;
let inter: DeviceCert;
let foreign: DeviceCert;
let t: CloudHarness;

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const sha1 = async (c: DeviceCert) => hex(await crypto.subtle.digest('SHA-1', c.der.slice()));

async function challenge(attestationType = 'x509pop'): Promise<Response> {
  return t.h.fetch('/agent/v1/attest/challenge', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType }) });
}

async function nonce(): Promise<string> {
  const res = await challenge();
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = (await res.json()) as { nonce: string; expiresAt: number };
  expect(body.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(body.expiresAt).toBe(t.h.nowSeconds() + 60);
  return body.nonce;
}

/** a fresh challenge, signed by `signer` (default the leaf) over the request's CSR key */
const proof = (chain: DeviceCert[], signer?: DeviceCert) => async (spki: Uint8Array) => x509popPayload(chain, await nonce(), spki, signer);

beforeAll(async () => {
  const now = Date.now();
  root = await makeDeviceCa(now, { kind: 'RSA-2048', name: 'CN=Acme Root,O=Acme' });
  inter = await makeDeviceCa(now, { name: 'CN=Acme Devices,O=Acme' }, root);
  foreign = await makeDeviceCa(now, { name: 'CN=Acme Root,O=Acme' });
  t = await createCloudHarness({ X509POP: JSON.stringify({ caBundles: [toPem('CERTIFICATE', root.der)] }) });
});

describe('x509pop attestation', () => {
  it('issues spiffe://<td>/spire/agent/x509pop/<fingerprint> with SPIRE\'s selectors, and lets the node attest again', async () => {
    const leaf = await makeDeviceLeaf(inter, t.clock.nowMs, { name: 'CN=node-1.acme.example', serialNumber: '01f2', uris: [`x509pop://${TD}/rack/r12`] });
    const agent = await t.attest('x509pop', proof([leaf, inter]));
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/x509pop/${await sha1(leaf)}`);
    expect(agent.selectors.sort()).toEqual(
      ['subject:cn:node-1.acme.example', `ca:fingerprint:${await sha1(inter)}`, `ca:fingerprint:${await sha1(root)}`, 'serialnumber:01f2', 'san:rack:r12'].map((s) => `x509pop:${s}`).sort(),
    );
    // SPIRE's CanReattest: the same certificate attests again (a new proof each time)
    expect((await t.attest('x509pop', proof([leaf, inter]))).agentId).toBe(agent.agentId);
    // an RSA device key signs with RSA-PSS
    const rsa = await makeDeviceLeaf(root, t.clock.nowMs, { kind: 'RSA-2048' });
    expect((await t.attest('x509pop', proof([rsa]))).agentId).toBe(`spiffe://${TD}/spire/agent/x509pop/${await sha1(rsa)}`);
  });

  it('refuses another key, another CSR key, an expired certificate, a foreign CA and no digitalSignature, signing nothing', async () => {
    const now = t.clock.nowMs;
    const leaf = await makeDeviceLeaf(inter, now);
    const other = await makeDeviceLeaf(inter, now);
    await t.expectRefused('x509pop', proof([leaf, inter], other), 401, 'ERR_ATTESTATION_FAILED', /^x509pop: challenge response verification failed/);
    // a proof made for another CSR key does not carry over to this request's CSR
    await t.expectRefused('x509pop', async () => x509popPayload([leaf, inter], await nonce(), new Uint8Array(91)), 401, 'ERR_ATTESTATION_FAILED', /challenge response verification failed/);
    const expired = await makeDeviceLeaf(inter, now, { notBefore: -7200_000, notAfter: -60_000 });
    await t.expectRefused('x509pop', proof([expired, inter]), 401, 'ERR_ATTESTATION_FAILED', /certificate verification failed: certificate 0 is not valid at this time/);
    await t.expectRefused('x509pop', proof([await makeDeviceLeaf(foreign, now)]), 401, 'ERR_ATTESTATION_FAILED', /chain does not lead to a trusted X.509 authority/);
    const noSig = await makeDeviceLeaf(inter, now, { keyUsage: x509.KeyUsageFlags.keyEncipherment });
    await t.expectRefused('x509pop', proof([noSig, inter]), 401, 'ERR_ATTESTATION_FAILED', /not intended for digital signature use/);
  });

  it('takes a nonce once: a replayed proof, an unknown nonce and an expired one are refused', async () => {
    const leaf = await makeDeviceLeaf(inter, t.clock.nowMs);
    let first: unknown;
    await t.attest('x509pop', async (spki: Uint8Array) => (first = await x509popPayload([leaf, inter], await nonce(), spki)));
    // the very same payload again (a new CSR: its key differs, but the nonce check comes first)
    await t.expectRefused('x509pop', first, 401, 'ERR_ATTESTATION_FAILED', /nonce is unknown, expired or already used/);
    await t.expectRefused('x509pop', (spki: Uint8Array) => x509popPayload([leaf, inter], 'A'.repeat(43), spki), 401, 'ERR_ATTESTATION_FAILED', /nonce is unknown/);
    const stale = await nonce();
    t.clock.nowMs += 61_000;
    try {
      await t.expectRefused('x509pop', (spki: Uint8Array) => x509popPayload([leaf, inter], stale, spki), 401, 'ERR_ATTESTATION_FAILED', /nonce is unknown, expired/);
    } finally {
      t.clock.nowMs -= 61_000;
    }
    // two concurrent uses of one nonce: exactly one wins
    const n = await nonce();
    const [a, b] = await Promise.all([t.attestRaw('x509pop', (spki: Uint8Array) => x509popPayload([leaf, inter], n, spki)), t.attestRaw('x509pop', (spki: Uint8Array) => x509popPayload([leaf, inter], n, spki))]);
    expect([a.status, b.status].sort()).toEqual([200, 401]);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM x509pop_nonces WHERE nonce = ?').bind(n).first('n')).toBe(0);
  });

  it('refuses malformed payloads with 400 and a challenge for attestors that take none', async () => {
    await t.expectRefused('x509pop', { certificates: [] }, 400, 'ERR_BAD_REQUEST', /x509pop payload must have certificates/);
    const res = await challenge('join_token');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe('attestationType "join_token" takes no challenge');
    expect((await challenge('tpm_devid')).status).toBe(400);
  });
});

describe('X509POP config', () => {
  const parse = (X509POP: string) => () => parseWorkerConfig({ ...env, X509POP });
  it('refuses a missing or unparsable bundle, unknown keys and bad templates with the key named', () => {
    expect(parse('{}')).toThrow(/X509POP\.caBundles/);
    expect(parse(JSON.stringify({ caBundles: 'not pem' }))).toThrow(/X509POP\.caBundles.*no PEM CERTIFICATE block/);
    expect(parse(JSON.stringify({ caBundles: [toPem('CERTIFICATE', root.der)], caBundlePath: '/etc/x' }))).toThrow(/X509POP/);
    expect(parse(JSON.stringify({ caBundles: toPem('CERTIFICATE', root.der), agentPathTemplate: '{{ .Nope }}' }))).toThrow(/X509POP\.agentPathTemplate: unknown field \.Nope/);
    expect(parse(JSON.stringify({ caBundles: toPem('CERTIFICATE', root.der), maxIntermediates: 0 }))).toThrow(/X509POP\.maxIntermediates: must be greater than 0/);
    const ok = parseWorkerConfig({ ...env, X509POP: JSON.stringify({ caBundles: toPem('CERTIFICATE', root.der) + toPem('CERTIFICATE', inter.der) }) });
    expect(ok.nodeAttestors.x509pop?.caBundles.length).toBe(2);
    expect(ok.nodeAttestors.x509pop?.maxRsaKeySize).toBe(8192);
  });
});
