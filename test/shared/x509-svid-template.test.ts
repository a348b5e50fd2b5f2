// The lean issuance path (x509-svid-template.ts) against @peculiar/x509: the same parameters (serial, times,
// keys) must give the very same TBSCertificate bytes, and the result must parse and validate. Runs on Node
// and in workerd (shared-node / shared-workerd).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { createCaCertificate } from '../../src/shared/spiffe/ca-cert.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { derTlv, derUnsignedInteger, ecdsaDerToRaw, ecdsaRawToDer } from '../../src/shared/spiffe/der.js';
import { buildX509SvidTemplate, validateX509Svid, type X509SvidParams } from '../../src/shared/spiffe/x509-svid.js';
import { createX509SvidTemplate, encodeTbs, issueFromTemplate, readSubjectKey, tbsOf } from '../../src/shared/spiffe/x509-svid-template.js';
import { classifyKeyAlgorithm, signCertificate, type KeyAlgorithmInfo, type SigningCa } from '../../src/shared/spiffe/x509.js';
import { generateKeys, spkiOf, type KeyPair } from '../helpers/shared/pki.js';

const TD = parseTrustDomain('example.org');
const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const NOW = Date.UTC(2026, 5, 1, 12, 30, 15, 789);
const HOUR = 3600_000;
const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const SERIAL = Uint8Array.from({ length: 16 }, (_, i) => (i === 0 ? 0x3c : i * 17));

async function rootCa(opts: { notBefore?: number; notAfter?: number; subject?: string } = {}): Promise<SigningCa> {
  const k: KeyPair = await generateKeys('P-256');
  const der = await createCaCertificate(
    { trustDomain: TD, subject: opts.subject ?? 'O=Wisp,CN=Wisp CA', publicKeySpki: await spkiOf(k), now: opts.notBefore ?? NOW - HOUR, notAfter: opts.notAfter ?? NOW + 24 * HOUR },
    { selfKey: k.privateKey, signAlgorithm: ES256 },
  );
  return { cert: new x509.X509Certificate(der), privateKey: k.privateKey, signAlgorithm: ES256 };
}

/** @peculiar/x509's TBS for the same parameters (the reference encoder). */
async function referenceTbs(p: X509SvidParams, ca: SigningCa): Promise<Uint8Array> {
  const t = await buildX509SvidTemplate(p, ca.cert);
  return tbsOf(await signCertificate(t, ca.privateKey, ca.signAlgorithm));
}

const hex = (b: Uint8Array | ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

describe('X509-SVID template', () => {
  it.each([
    ['P-256', []],
    ['P-256', ['web.example.org', 'web']],
    ['P-384', ['*.example.org']],
    ['RSA-2048', ['api.example.org']],
  ] as const)('encodes a %s SVID with DNS names %j byte for byte like @peculiar/x509', async (kind, dnsNames) => {
    const ca = await rootCa();
    const template = await createX509SvidTemplate(ca, NOW);
    const params: X509SvidParams = { spiffeId: ID, publicKeySpki: await spkiOf(await generateKeys(kind)), dnsNames, ttlSeconds: 3600, now: NOW, serialNumber: SERIAL };
    const lean = await encodeTbs(template, params);
    expect(hex(lean.der)).toBe(hex(await referenceTbs(params, ca)));

    const issued = await issueFromTemplate(template, params);
    const cert = new x509.X509Certificate(issued.der.slice());
    expect(hex(tbsOf(issued.der))).toBe(hex(lean.der));
    expect(await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true })).toBe(true);
    expect(issued.serialNumber).toBe(cert.serialNumber);
    expect(issued.notAfter).toBe(cert.notAfter.getTime());
    const valid = await validateX509Svid([issued.der], { now: NOW, expectedId: ID, roots: [ca.cert] });
    expect(valid).toEqual({ ok: true, value: { spiffeId: ID, notAfter: Math.floor((NOW + HOUR) / 1000) * 1000, serialNumber: cert.serialNumber } });
  });

  it('caps notAfter at the CA notAfter and notBefore at the CA notBefore, like the reference', async () => {
    const ca = await rootCa({ notBefore: NOW - 5_000, notAfter: NOW + 10 * 60_000 });
    const template = await createX509SvidTemplate(ca, NOW);
    const params: X509SvidParams = { spiffeId: ID, publicKeySpki: await spkiOf(await generateKeys('P-256')), dnsNames: [], ttlSeconds: 3600, now: NOW, serialNumber: SERIAL };
    expect(hex((await encodeTbs(template, params)).der)).toBe(hex(await referenceTbs(params, ca)));
    const cert = new x509.X509Certificate((await issueFromTemplate(template, params)).der.slice());
    expect(cert.notAfter.getTime()).toBe(ca.cert.notAfter.getTime());
    expect(cert.notBefore.getTime()).toBe(ca.cert.notBefore.getTime());
  });

  it('uses GeneralizedTime from 2050 on, like the reference', async () => {
    const later = Date.UTC(2049, 11, 31, 23, 30, 0);
    const ca = await rootCa({ notBefore: later - HOUR, notAfter: later + 48 * HOUR });
    const template = await createX509SvidTemplate(ca, later);
    const params: X509SvidParams = { spiffeId: ID, publicKeySpki: await spkiOf(await generateKeys('P-256')), dnsNames: [], ttlSeconds: 7200, now: later, serialNumber: SERIAL };
    expect(hex((await encodeTbs(template, params)).der)).toBe(hex(await referenceTbs(params, ca)));
  });

  it('matches the reference for random serials and a long SPIFFE ID (multi-byte lengths)', async () => {
    const ca = await rootCa({ subject: 'O=Wisp,CN=Wisp CA with a rather longer common name' });
    const template = await createX509SvidTemplate(ca, NOW);
    const long = parseSpiffeId(`spiffe://example.org/${'segment/'.repeat(30)}end`);
    for (let i = 0; i < 5; i++) {
      const params: X509SvidParams = { spiffeId: long, publicKeySpki: await spkiOf(await generateKeys('P-256')), dnsNames: ['a.example.org'], ttlSeconds: 60 + i, now: NOW + i * 1000, serialNumber: crypto.getRandomValues(new Uint8Array(16)).map((b, j) => (j === 0 ? (b & 0x7f) || 1 : b)) };
      expect(hex((await encodeTbs(template, params)).der)).toBe(hex(await referenceTbs(params, ca)));
    }
  });

  it('refuses what issueX509Svid refuses', async () => {
    const ca = await rootCa();
    const template = await createX509SvidTemplate(ca, NOW);
    const spki = await spkiOf(await generateKeys('P-256'));
    const base: X509SvidParams = { spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 60, now: NOW };
    await expect(issueFromTemplate(template, { ...base, spiffeId: parseSpiffeId('spiffe://example.org') })).rejects.toThrow(TypeError);
    await expect(issueFromTemplate(template, { ...base, dnsNames: ['bad name'] })).rejects.toThrow(TypeError);
    await expect(issueFromTemplate(template, { ...base, ttlSeconds: 0 })).rejects.toThrow(TypeError);
    await expect(issueFromTemplate(template, { ...base, now: NOW + 48 * HOUR })).rejects.toThrow('expired');
    await expect(issueFromTemplate(template, { ...base, publicKeySpki: spki.subarray(0, 20) })).rejects.toThrow(TypeError);
  });

  it('classifies subject keys like classifyKeyAlgorithm', async () => {
    for (const kind of ['P-256', 'P-384', 'RSA-2048'] as const) {
      const spki = await spkiOf(await generateKeys(kind));
      const info = readSubjectKey(spki);
      expect(typeof info === 'string' ? info : info.kind).toBe(classifyKeyAlgorithm(new x509.PublicKey(spki.slice()).algorithm as KeyAlgorithmInfo));
    }
    const rsa1024 = (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as unknown as KeyPair;
    expect(readSubjectKey(await spkiOf(rsa1024))).toMatch(/too small/);
    expect(readSubjectKey(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))).toBeTypeOf('string');
  });

  it('converts ECDSA signatures between raw and DER both ways', () => {
    const raw = Uint8Array.from({ length: 64 }, (_, i) => (i === 0 ? 0x80 : i === 32 ? 0 : i));
    const der = ecdsaRawToDer(raw);
    expect(ecdsaDerToRaw(der, 32)).toEqual(raw);
    expect(() => ecdsaDerToRaw(der.subarray(0, der.length - 1), 32)).toThrow(RangeError);
  });

  it('writes ECDSA signatures in place as the nested INTEGER encoding does (leading zeros, high bits, P-384)', () => {
    const cases = [
      Uint8Array.from({ length: 64 }, (_, i) => (i < 3 ? 0 : i === 32 ? 0x80 : i)),
      Uint8Array.from({ length: 64 }, (_, i) => (i === 0 || i === 32 ? 0xff : 1)),
      new Uint8Array(64),
      Uint8Array.from({ length: 64 }, (_, i) => (i < 31 || (i >= 32 && i < 63) ? 0 : 0x81)),
      Uint8Array.from({ length: 96 }, (_, i) => (i * 37) & 0xff),
    ];
    for (const raw of cases) {
      const half = raw.length / 2;
      const reference = derTlv(0x30, derUnsignedInteger(raw.subarray(0, half)), derUnsignedInteger(raw.subarray(half)));
      expect(hex(ecdsaRawToDer(raw))).toBe(hex(reference));
      expect(ecdsaDerToRaw(ecdsaRawToDer(raw), half)).toEqual(raw);
    }
  });

  it('issues SVIDs whose signatures verify, over many signatures (every shape of r and s)', async () => {
    const ca = await rootCa();
    const template = await createX509SvidTemplate(ca, NOW);
    const spki = await spkiOf(await generateKeys('P-256'));
    for (let i = 0; i < 200; i++) {
      const issued = await issueFromTemplate(template, { spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 3600, now: NOW });
      const cert = new x509.X509Certificate(issued.der.slice());
      expect(await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true })).toBe(true);
    }
  });
});
