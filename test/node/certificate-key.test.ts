// The agent's certificate key reader (node:crypto, src/node/certificate-key.ts) against the issuer's
// (@peculiar/x509, shared/spiffe/x509.ts certificateKeyOf): the same SPKI bytes, the same verdict of the one
// algorithm rule (classifyKeyAlgorithm), the same public JWK, for each key kind a bundle may hold or refuse.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certificateKey } from '../../src/node/certificate-key.js';
import { parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { classifyKeyAlgorithm, publicJwkOf } from '../../src/shared/spiffe/key-algorithm.js';
import { certificateKeyOf } from '../../src/shared/spiffe/x509.js';

const KINDS = [
  { name: 'EC P-256', alg: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } },
  { name: 'EC P-384', alg: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } },
  { name: 'EC P-521 (refused)', alg: { name: 'ECDSA', namedCurve: 'P-521' }, sign: { name: 'ECDSA', hash: 'SHA-512' } },
  { name: 'RSA 2048', alg: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } },
  { name: 'RSA 1024 (refused)', alg: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } },
  { name: 'Ed25519 (refused)', alg: { name: 'Ed25519' } },
] as const;

async function selfSigned(kind: (typeof KINDS)[number]): Promise<Uint8Array> {
  const keys = (await webcrypto.subtle.generateKey(kind.alg as never, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=test',
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2027-01-01T00:00:00Z'),
    keys,
    signingAlgorithm: 'sign' in kind ? kind.sign : kind.alg,
  });
  return new Uint8Array(cert.rawData);
}

const jwkOrReason = (key: Parameters<typeof publicJwkOf>[0]) => publicJwkOf(key).catch((e: Error) => `refused: ${e.message}`);

describe('certificateKey (node:crypto) reads what certificateKeyOf (@peculiar/x509) reads', () => {
  it.each(KINDS.map((k) => [k.name, k] as const))('%s', async (_name, kind) => {
    const der = await selfSigned(kind);
    const mine = certificateKey(der);
    const theirs = certificateKeyOf(der);
    expect(Buffer.from(mine.spki).equals(Buffer.from(theirs.spki))).toBe(true);
    expect(classifyKeyAlgorithm(mine.algorithm)).toBe(classifyKeyAlgorithm(theirs.algorithm));
    expect(await jwkOrReason(mine)).toEqual(await jwkOrReason(theirs));
  });

  it('throws on bytes that are not a certificate, as the other does', () => {
    for (const der of [new Uint8Array(), new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), new TextEncoder().encode('not a certificate')]) {
      expect(() => certificateKey(der)).toThrow();
      expect(() => certificateKeyOf(der)).toThrow();
    }
  });

  it('parses a bundle to the same result with either reader, and refuses the same bad one', async () => {
    const p256 = await selfSigned(KINDS[0]);
    const rsa1024 = await selfSigned(KINDS[4]);
    const b64 = (der: Uint8Array) => Buffer.from(der).toString('base64');
    const good = { keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64(p256)] }] };
    expect(await parseBundleJson(good, 'example.org', certificateKey)).toEqual(await parseBundleJson(good, 'example.org'));
    for (const bad of [
      { keys: [{ use: 'x509-svid', kty: 'RSA', x5c: [b64(rsa1024)] }] },
      { keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64(new Uint8Array([1, 2, 3]))] }] },
      { keys: [{ use: 'x509-svid', ...(await publicJwkOf(certificateKey(p256))), x: 'AAAA', x5c: [b64(p256)] }] },
    ]) {
      const mine = await parseBundleJson(bad, 'example.org', certificateKey).catch((e: Error) => e.message);
      expect(mine).toMatch(/bundle of "example.org"|not a DER X.509 certificate/);
      expect(mine).toBe(await parseBundleJson(bad, 'example.org').catch((e: Error) => e.message));
    }
  });
});
