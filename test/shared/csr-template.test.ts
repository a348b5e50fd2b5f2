// The agent's narrow CSR template (src/shared/spiffe/csr-template.ts) against @peculiar/x509's generator,
// the encoder the agent used before: for the same key and signature the bytes must be identical, and the
// result must pass the issuer's parseCsr. Runs on Node and in workerd (shared-node / shared-workerd); the
// openssl checks are in test/agent/keys.test.ts.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { parseCsr } from '../../src/shared/spiffe/csr.js';
import { p256Csr, p256CsrInfo, p256SpkiFromPkcs8 } from '../../src/shared/spiffe/csr-template.js';
import { contentsOf, ecdsaRawToDer, encodingOf, readChildren, readWhole } from '../../src/shared/spiffe/der.js';
import { WispError } from '../../src/shared/errors.js';
import { generateKeys, spkiOf, type KeyPair } from '../helpers/shared/pki.js';

const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
/** 200+ bytes: multi-byte DER lengths in every element around the URI */
const LONG_ID = `spiffe://example.org/${Array.from({ length: 24 }, (_, i) => `segment-${i}`).join('/')}`;

/** What the agent's CSR was: @peculiar/x509's generator, no subject, the SPIFFE ID as a URI SAN when given. */
async function referenceCsr(keys: KeyPair, spiffeId?: string): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ES256,
    ...(spiffeId ? { extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])] } : {}),
  });
  return new Uint8Array(csr.rawData);
}

/** certificationRequestInfo and the DER signature of a CSR */
function split(csr: Uint8Array): { info: Uint8Array; signature: Uint8Array } {
  const [info, , sig] = readChildren(csr, readWhole(csr, 0x30));
  return { info: encodingOf(csr, info!), signature: contentsOf(csr, sig!).subarray(1) };
}

async function pkcs8Of(keys: KeyPair): Promise<Uint8Array> {
  return new Uint8Array((await crypto.subtle.exportKey('pkcs8', keys.privateKey)) as ArrayBuffer);
}

describe('the agent CSR template', () => {
  it.each([
    ['no SAN (first attestation)', undefined],
    ['a SPIFFE ID', 'spiffe://example.org/ns/prod/sa/web'],
    ['a long SPIFFE ID', LONG_ID],
  ])('encodes a CSR with %s byte for byte like @peculiar/x509 for the same key and signature', async (_name, spiffeId) => {
    for (let i = 0; i < 4; i++) {
      const keys = await generateKeys('P-256');
      const reference = await referenceCsr(keys, spiffeId);
      const { info, signature } = split(reference);
      const lean = p256CsrInfo(await spkiOf(keys), spiffeId);
      expect(hex(lean)).toBe(hex(info));
      expect(hex(p256Csr(lean, signature))).toBe(hex(reference));
    }
  });

  it('signed by WebCrypto, passes the issuer parser and reads back in @peculiar/x509 with its SAN', async () => {
    const keys = await generateKeys('P-256');
    const spki = await spkiOf(keys);
    const info = p256CsrInfo(spki, LONG_ID);
    const der = p256Csr(info, ecdsaRawToDer(new Uint8Array(await crypto.subtle.sign(ES256, keys.privateKey, info.slice()))));
    const parsed = await parseCsr(der);
    expect(parsed.keyAlgorithm).toBe('EC P-256');
    expect(hex(parsed.publicKeySpki)).toBe(hex(spki));
    const csr = new x509.Pkcs10CertificateRequest(der.slice());
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('');
    const san = csr.getExtension('2.5.29.17') as x509.SubjectAlternativeNameExtension | null;
    expect(san?.critical).toBe(false);
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['url', LONG_ID]]);
    // another key's signature is no proof of possession
    const other = await generateKeys('P-256');
    const forged = p256Csr(info, ecdsaRawToDer(new Uint8Array(await crypto.subtle.sign(ES256, other.privateKey, info.slice()))));
    await expect(parseCsr(forged)).rejects.toMatchObject({ code: 'ERR_CSR_INVALID' });
  });

  it('reads the SubjectPublicKeyInfo of a P-256 PKCS#8 key, and nothing else', async () => {
    for (let i = 0; i < 4; i++) {
      const keys = await generateKeys('P-256');
      expect(hex(p256SpkiFromPkcs8(await pkcs8Of(keys)))).toBe(hex(await spkiOf(keys)));
    }
    const p384 = await pkcs8Of(await generateKeys('P-384'));
    expect(() => p256SpkiFromPkcs8(p384)).toThrow(RangeError);
    const pkcs8 = await pkcs8Of(await generateKeys('P-256'));
    expect(() => p256SpkiFromPkcs8(pkcs8.subarray(0, pkcs8.length - 1))).toThrow(RangeError);
    expect(() => p256SpkiFromPkcs8(Uint8Array.of(...pkcs8, 0))).toThrow(RangeError);
    expect(() => p256SpkiFromPkcs8(Uint8Array.of(0x30, 0x00))).toThrow(RangeError);
  });

  it('refuses a key that is not P-256, an invalid SPIFFE ID and a signature that is not DER', async () => {
    const p384 = await spkiOf(await generateKeys('P-384'));
    expect(() => p256CsrInfo(p384)).toThrow(RangeError);
    const spki = await spkiOf(await generateKeys('P-256'));
    expect(() => p256CsrInfo(spki.subarray(0, 90))).toThrow(RangeError);
    for (const bad of ['spiffe://Example.org/w', 'https://example.org/w', 'spiffe://example.org/a b', 'spiffe://example.org/é']) {
      expect(() => p256CsrInfo(spki, bad)).toThrow(WispError);
    }
    const info = p256CsrInfo(spki);
    expect(() => p256Csr(info, new Uint8Array(64))).toThrow(RangeError);
  });
});
