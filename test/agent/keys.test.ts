// The agent's keys and CSRs (src/agent/keys.ts): node:crypto keys, CSRs encoded by the narrow template
// (src/shared/spiffe/csr-template.ts) and signed by node:crypto, checked by the issuer's own CSR parser, by
// `openssl req -verify` / `-text` and against @peculiar/x509's generator for the same key.
import 'reflect-metadata';
import { createPrivateKey, createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Pkcs10CertificateRequest, Pkcs10CertificateRequestGenerator, SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';
import { afterAll, describe, expect, it } from 'vitest';
import { certificateInfo, certificateInfoForSpki, certificateMatchesKey, createCsr, exportPkcs8, exportSpki, generateKeyPair, importPkcs8, matchingCertificateInfo, newKeyAndCsr } from '../../src/agent/keys.js';
import { contentsOf, ecdsaDerToRaw, readChildren, readWhole } from '../../src/shared/spiffe/der.js';
import { parseCsr } from '../../src/shared/spiffe/csr.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { issueX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { createOpensslKit, newTestCa, openssl } from '../helpers/node/agent/openssl-kit.js';

/** subjectAltName (by OID: the extension class may come from @peculiar/x509's other build) */
const SAN_OID = '2.5.29.17';

/** The same reading by @peculiar/x509 (what the agent used before). */
function peculiarInfo(der: Uint8Array) {
  const cert = new X509Certificate(der.slice());
  const san = cert.getExtension(SAN_OID) as SubjectAlternativeNameExtension | null;
  return { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), spiffeId: san?.names.items.find((n) => n.type === 'url')?.value };
}

const kit = createOpensslKit('wisp-agent-keys-');
afterAll(kit.cleanup);

describe('agent keys and CSRs', () => {
  it('makes a P-256 CSR with the SPIFFE ID in a URI SAN that the issuer and openssl verify', async () => {
    const keys = generateKeyPair();
    const der = createCsr(keys, 'spiffe://example.org/workload/a');
    const parsed = await parseCsr(der);
    expect(parsed.keyAlgorithm).toBe('EC P-256');
    expect(Buffer.from(parsed.publicKeySpki)).toEqual(keys.publicKey.export({ type: 'spki', format: 'der' }));
    const csr = new Pkcs10CertificateRequest(der.slice());
    expect(await csr.verify()).toBe(true);
    expect(csr.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    const san = csr.getExtension(SAN_OID) as SubjectAlternativeNameExtension | null;
    expect(san?.names.items.map((n) => [n.type, n.value])).toEqual([['url', 'spiffe://example.org/workload/a']]);
    expect(openssl('req', '-in', kit.writePem(der, 'CERTIFICATE REQUEST'), '-verify', '-noout')).toBe('');
  });

  it('makes a new workload key and its CSR: openssl verifies and reads it, the issuer parses it, the key is the PKCS#8 one', async () => {
    const id = 'spiffe://example.org/ns/prod/sa/web';
    const { pkcs8, spki, csr } = newKeyAndCsr(id);
    const publicSpki = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
    expect(Buffer.from(spki)).toEqual(publicSpki);
    expect(importPkcs8(pkcs8).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const parsed = await parseCsr(csr);
    expect(parsed.keyAlgorithm).toBe('EC P-256');
    expect(Buffer.from(parsed.publicKeySpki)).toEqual(publicSpki);
    const pem = kit.writePem(csr, 'CERTIFICATE REQUEST');
    expect(openssl('req', '-in', pem, '-verify', '-noout')).toBe('');
    const text = openssl('req', '-in', pem, '-noout', '-text');
    expect(text).toMatch(/Version: 1 \(0x0\)/);
    expect(text).toMatch(/Subject: *\n/);
    expect(text).toMatch(/NIST CURVE: P-256/);
    expect(text).toMatch(/X509v3 Subject Alternative Name: *\n\s*URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/web\n/);
    expect(text).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    // openssl's decode and re-encode of the request is the same DER
    const out = `${pem}.der`;
    openssl('req', '-in', pem, '-outform', 'DER', '-out', out);
    expect(readFileSync(out).toString('hex')).toBe(Buffer.from(csr).toString('hex'));
  });

  it.each([undefined, 'spiffe://example.org/spire/agent/join_token/abc'])('encodes the CSR (SAN %s) byte for byte like @peculiar/x509 for the same node:crypto key and signature', async (spiffeId) => {
    const keys = generateKeyPair();
    const der = createCsr(keys, spiffeId);
    const [, , sig] = readChildren(der, readWhole(der, 0x30));
    const subtle = webcrypto.subtle;
    const alg = { name: 'ECDSA', namedCurve: 'P-256' } as const;
    const reference = await Pkcs10CertificateRequestGenerator.create(
      {
        keys: { privateKey: await subtle.importKey('pkcs8', exportPkcs8(keys.privateKey), alg, true, ['sign']), publicKey: await subtle.importKey('spki', exportSpki(keys.publicKey), alg, true, ['verify']) },
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        ...(spiffeId ? { extensions: [new SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])] } : {}),
      },
      // @peculiar/x509 signs with this provider: answer with our signature (r‖s), so both encodings carry the same one
      { subtle: { exportKey: subtle.exportKey.bind(subtle), sign: () => Promise.resolve(ecdsaDerToRaw(contentsOf(der, sig!).subarray(1), 32).slice().buffer) } } as unknown as Parameters<typeof Pkcs10CertificateRequestGenerator.create>[1],
    );
    expect(Buffer.from(reference.rawData).toString('hex')).toBe(Buffer.from(der).toString('hex'));
    await expect(parseCsr(der)).resolves.toMatchObject({ keyAlgorithm: 'EC P-256' });
  });

  it('makes a CSR without a SAN for the first attestation', async () => {
    const der = createCsr(generateKeyPair());
    expect(new Pkcs10CertificateRequest(der.slice()).getExtension(SAN_OID)).toBeNull();
    await expect(parseCsr(der)).resolves.toMatchObject({ keyAlgorithm: 'EC P-256' });
  });

  it('round-trips PKCS#8, refuses keys that are not P-256, and matches certificates to their key', async () => {
    const now = Date.now();
    const ca = await newTestCa(parseTrustDomain('example.org'), now - 60_000);
    const keys = generateKeyPair();
    const { publicKeySpki } = await parseCsr(createCsr(keys));
    const leaf = await issueX509Svid({ spiffeId: parseSpiffeId('spiffe://example.org/w'), publicKeySpki, dnsNames: [], ttlSeconds: 600, now }, ca);

    const again = importPkcs8(exportPkcs8(keys.privateKey));
    expect(certificateMatchesKey(leaf, again)).toBe(true);
    expect(certificateMatchesKey(leaf, generateKeyPair().privateKey)).toBe(false);
    expect(certificateMatchesKey(new Uint8Array([0x30, 0x00]), again)).toBe(false);
    expect(certificateInfo(leaf)).toEqual({ notBefore: expect.any(Number), notAfter: Math.floor(now / 1000) * 1000 + 600_000, spiffeId: 'spiffe://example.org/w' });

    expect(certificateInfoForSpki(leaf, exportSpki(keys.publicKey))).toEqual(certificateInfo(leaf));
    expect(certificateInfoForSpki(leaf, exportSpki(generateKeyPair().publicKey))).toBeUndefined();
    expect(certificateInfoForSpki(leaf, new Uint8Array([1, 2]))).toBeUndefined();
    expect(matchingCertificateInfo(leaf, again)).toEqual(certificateInfo(leaf));
    expect(matchingCertificateInfo(leaf, generateKeyPair().privateKey)).toBeUndefined();

    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    expect(() => importPkcs8(new Uint8Array(p384))).toThrow(/P-256/);
    expect(() => importPkcs8(new Uint8Array([1, 2, 3]))).toThrow();
  });

  it.each([
    ['UTCTime, two-digit day', Date.UTC(2026, 10, 23, 21, 35, 7)],
    ['UTCTime, one-digit day', Date.UTC(2027, 1, 3, 4, 5, 6)],
    ['GeneralizedTime (2050 and later)', Date.UTC(2051, 0, 9, 23, 59, 59)],
  ])('reads validity and the URI SAN as @peculiar/x509 does: %s', async (_name, now) => {
    const ca = await newTestCa(parseTrustDomain('example.org'), now - 1000);
    const { publicKeySpki } = await parseCsr(createCsr(generateKeyPair()));
    const leaf = await issueX509Svid({ spiffeId: parseSpiffeId('spiffe://example.org/ns/a-b_c.d'), publicKeySpki, dnsNames: ['x.example.org'], ttlSeconds: 3600, now }, ca);
    expect(certificateInfo(leaf)).toEqual(peculiarInfo(leaf));
    expect(certificateInfo(leaf).spiffeId).toBe('spiffe://example.org/ns/a-b_c.d');
    expect(certificateInfo(ca.der)).toEqual(peculiarInfo(ca.der));
    expect(certificateInfo(ca.der).spiffeId).toBe('spiffe://example.org');
  });

  it('reads an openssl-made certificate, with or without a URI SAN', () => {
    const key = kit.writePem(exportPkcs8(generateKeyPair().privateKey), 'PRIVATE KEY');
    const make = (...ext: string[]) => {
      const out = kit.writePem(new Uint8Array(0), 'CERTIFICATE');
      openssl('req', '-x509', '-key', key, '-subj', '/CN=t', '-days', '2', ...ext, '-outform', 'DER', '-out', out);
      return new Uint8Array(readFileSync(out));
    };
    const withSan = make('-addext', 'subjectAltName=DNS:a.example.org,URI:spiffe://example.org/first,URI:spiffe://example.org/second');
    const info = certificateInfo(withSan);
    expect(info).toEqual(peculiarInfo(withSan));
    expect(info.spiffeId).toBe('spiffe://example.org/first');
    expect(info.notAfter - info.notBefore).toBe(2 * 86400_000);
    expect(certificateInfo(make()).spiffeId).toBeUndefined();
    expect(() => certificateInfo(new Uint8Array([0x30, 0x00]))).toThrow();
  });
});
