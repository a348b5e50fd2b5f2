// x509pop's pure part on both runtimes: proofs by device certificates of a generated PKI (ECDSA P-256/P-384,
// RSA-PSS) verified under the configured CAs, and every refusal (another key, another CSR or nonce, expired,
// foreign CA, no digitalSignature, a non-CA or path-length-breaking intermediate, RSA size, too many
// intermediates); SPIRE's fingerprint, agent ID, template fields and selectors; the pki path profile.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { parseAgentPathTemplate } from '../../../src/shared/attestation/agent-path-template.js';
import {
  parseX509popPayload,
  verifyX509popProof,
  X509POP_DEFAULT_PATH_TEMPLATE,
  X509POP_TEMPLATE_FIELDS,
  x509popAgentId,
  x509popSelectors,
} from '../../../src/shared/attestation/x509pop.js';
import { toBase64Url } from '../../../src/shared/encoding/base64.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';
import { validateX509Path } from '../../../src/shared/spiffe/x509-path.js';
import { makeDeviceCa, makeDeviceLeaf, x509popPayload, type DeviceCert } from '../../helpers/shared/device-pki.js';
import { generateKeys, spkiOf } from '../../helpers/shared/pki.js';

const TD = parseTrustDomain('example.org');
const now = Date.now();
const nonce = () => toBase64Url(crypto.getRandomValues(new Uint8Array(32)));
const csrSpki = async () => spkiOf(await generateKeys('P-256'));
const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');
const sha1 = async (c: DeviceCert) => hex(await crypto.subtle.digest('SHA-1', c.der.slice()));

async function check(chain: DeviceCert[], roots: DeviceCert[], o: { signer?: DeviceCert; verifyWithSpki?: Uint8Array; maxIntermediates?: number; at?: number } = {}) {
  const spki = await csrSpki();
  const payload = await x509popPayload(chain, nonce(), spki, o.signer);
  const parsed = parseX509popPayload(payload, o.maxIntermediates ?? 4);
  return verifyX509popProof(parsed, { roots: roots.map((r) => r.cert), now: o.at ?? now, csrPublicKeySpki: o.verifyWithSpki ?? spki, maxRsaKeyBits: 8192 });
}

describe('x509pop proof', () => {
  it('accepts a device certificate of each key type under a root, directly or through an intermediate', async () => {
    const root = await makeDeviceCa(now, { kind: 'RSA-2048', name: 'CN=Acme Root,O=Acme' });
    const inter = await makeDeviceCa(now, { name: 'CN=Acme Devices,O=Acme', pathLength: 0 }, root);
    for (const kind of ['P-256', 'P-384', 'RSA-2048'] as const) {
      const leaf = await makeDeviceLeaf(inter, now, { kind });
      const above = await check([leaf, inter], [root]);
      expect(above.map((c) => c.subject)).toEqual(['CN=Acme Devices, O=Acme', 'CN=Acme Root, O=Acme']);
    }
    const direct = await makeDeviceLeaf(root, now);
    expect((await check([direct], [root])).map((c) => c.subject)).toEqual(['CN=Acme Root, O=Acme']);
    // a chain that carries the root itself: not counted twice
    expect((await check([direct, root], [root])).length).toBe(1);
  });

  it('refuses a signature by another key, or over another CSR key', async () => {
    const root = await makeDeviceCa(now);
    const leaf = await makeDeviceLeaf(root, now);
    const other = await makeDeviceLeaf(root, now);
    await expect(check([leaf], [root], { signer: other })).rejects.toThrow(/x509pop: challenge response verification failed/);
    await expect(check([leaf], [root], { verifyWithSpki: await csrSpki() })).rejects.toThrow(/challenge response verification failed/);
  });

  it('refuses an expired or not yet valid certificate, a foreign CA, and a certificate without digitalSignature', async () => {
    const root = await makeDeviceCa(now);
    const foreign = await makeDeviceCa(now, { name: 'CN=Evil CA' });
    await expect(check([await makeDeviceLeaf(root, now, { notBefore: -7200_000, notAfter: -3600_000 })], [root])).rejects.toThrow(/certificate verification failed: certificate 0 is not valid at this time/);
    await expect(check([await makeDeviceLeaf(root, now, { notBefore: 3600_000 })], [root])).rejects.toThrow(/certificate 0 is not valid/);
    await expect(check([await makeDeviceLeaf(foreign, now)], [root])).rejects.toThrow(/chain does not lead to a trusted X.509 authority/);
    await expect(check([await makeDeviceLeaf(root, now, { keyUsage: x509.KeyUsageFlags.keyEncipherment })], [root])).rejects.toThrow(/not intended for digital signature use/);
    await expect(check([await makeDeviceLeaf(root, now, { keyUsage: null })], [root])).rejects.toThrow(/not intended for digital signature use/);
    // an expired root is no anchor
    const old = await makeDeviceCa(now, { notBefore: -7200_000, notAfter: -3600_000 });
    await expect(check([await makeDeviceLeaf(old, now)], [old], { at: now })).rejects.toThrow(/chain does not lead/);
  });

  it('refuses intermediates that may not sign, too many of them, and RSA keys out of range', async () => {
    const root = await makeDeviceCa(now);
    const notCa = await makeDeviceCa(now, { ca: false }, root);
    await expect(check([await makeDeviceLeaf(notCa, now), notCa], [root])).rejects.toThrow(/certificate 1 is not a CA.*basicConstraints/);
    const noSign = await makeDeviceCa(now, { keyUsage: x509.KeyUsageFlags.digitalSignature }, root);
    await expect(check([await makeDeviceLeaf(noSign, now), noSign], [root])).rejects.toThrow(/keyCertSign/);
    const top = await makeDeviceCa(now, { pathLength: 0 }, root);
    const below = await makeDeviceCa(now, {}, top);
    await expect(check([await makeDeviceLeaf(below, now), below, top], [root])).rejects.toThrow(/pathLenConstraint 0/);
    const leaf = await makeDeviceLeaf(root, now);
    await expect(check([leaf, root, root], [root], { maxIntermediates: 1 })).rejects.toThrow(/too many intermediate certificates \(at most 1\)/);
    await expect(check([await makeDeviceLeaf(root, now, { kind: 'RSA-1024' })], [root])).rejects.toThrow(/certificate 0 has an RSA key of 1024 bits \(allowed: 2048 to 8192\)/);
  });

  it('refuses malformed payloads with ERR_BAD_REQUEST', () => {
    for (const bad of [{}, { certificates: [] }, { certificates: ['!!'], nonce: nonce(), signature: 'AA==' }, { certificates: ['AAAA'], nonce: nonce(), signature: 'AA==' }]) {
      expect(() => parseX509popPayload(bad, 4)).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }));
    }
  });
});

describe('x509pop agent ID and selectors', () => {
  it('gives spiffe://<td>/spire/agent/x509pop/<sha1 of the leaf DER> and SPIRE\'s selectors', async () => {
    const root = await makeDeviceCa(now);
    const inter = await makeDeviceCa(now, { name: 'CN=Acme Devices' }, root);
    const leaf = await makeDeviceLeaf(inter, now, {
      name: 'CN=node-7.acme.example,O=Acme',
      serialNumber: '0a1b2c',
      uris: [`x509pop://${TD}/datacenter/us-east-1`, 'x509pop://other.org/datacenter/nope', `x509pop://${TD}/noslash`, 'https://acme.example/x'],
      dnsNames: ['node-7.acme.example'],
    });
    const template = parseAgentPathTemplate(X509POP_DEFAULT_PATH_TEMPLATE, X509POP_TEMPLATE_FIELDS);
    expect(await x509popAgentId(TD, template, leaf.cert)).toBe(`spiffe://example.org/spire/agent/x509pop/${await sha1(leaf)}`);
    expect((await x509popSelectors(TD, leaf.cert, [inter.cert, root.cert])).map((s) => `${s.type}:${s.value}`)).toEqual([
      'x509pop:subject:cn:node-7.acme.example',
      `x509pop:ca:fingerprint:${await sha1(inter)}`,
      `x509pop:ca:fingerprint:${await sha1(root)}`,
      'x509pop:serialnumber:0a1b2c',
      'x509pop:san:datacenter:us-east-1',
    ]);
  });

  it('renders SPIRE\'s template fields, .Subject.CommonName and .SerialNumberHex included, and refuses unknown ones', async () => {
    const root = await makeDeviceCa(now);
    const leaf = await makeDeviceLeaf(root, now, { name: 'CN=node-7', serialNumber: '0abc' });
    const t = parseAgentPathTemplate('{{ .PluginName }}/cn/{{ .Subject.CommonName }}/{{ .SerialNumberHex }}', X509POP_TEMPLATE_FIELDS);
    expect(await x509popAgentId(TD, t, leaf.cert)).toBe('spiffe://example.org/spire/agent/x509pop/cn/node-7/0abc');
    expect(() => parseAgentPathTemplate('x/{{ .Subject.Organization }}', X509POP_TEMPLATE_FIELDS)).toThrow(/only \{\{ \.Field \}\} references/);
    const slash = await makeDeviceLeaf(root, now, { name: 'CN=a/b' });
    await expect(x509popAgentId(TD, t, slash.cert)).rejects.toThrow(/Subject.CommonName cannot be used in an agent ID/);
  });
});

describe('validateX509Path pki profile', () => {
  it('accepts a CA with a non-critical keyUsage and a non-SPIFFE URI SAN that the spiffe profile refuses', async () => {
    const root = await makeDeviceCa(now, { uris: ['https://pki.acme.example/root'] });
    const leaf = await makeDeviceLeaf(root, now);
    expect((await validateX509Path([leaf.cert], { now, roots: [root.cert], profile: 'pki' })).ok).toBe(true);
    expect(await validateX509Path([leaf.cert], { now, roots: [root.cert] })).toEqual({ ok: false, error: 'chain does not lead to a trusted X.509 authority' });
  });
});
