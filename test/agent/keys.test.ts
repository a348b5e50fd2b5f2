// The agent's keys and CSRs (src/agent/keys.ts): node:crypto keys, CSRs encoded by @peculiar/x509 and signed
// by node:crypto, checked by the issuer's own CSR parser and by `openssl req -verify`.
import 'reflect-metadata';
import { generateKeyPairSync } from 'node:crypto';
import { Pkcs10CertificateRequest, type SubjectAlternativeNameExtension } from '@peculiar/x509';
import { afterAll, describe, expect, it } from 'vitest';
import { certificateInfo, certificateMatchesKey, createCsr, exportPkcs8, generateKeyPair, importPkcs8 } from '../../src/agent/keys.js';
import { parseCsr } from '../../src/shared/spiffe/csr.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { issueX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { createOpensslKit, newTestCa, openssl } from './helpers/openssl-kit.js';

/** subjectAltName (by OID: the extension class may come from @peculiar/x509's other build) */
const SAN_OID = '2.5.29.17';

const kit = createOpensslKit('wisp-agent-keys-');
afterAll(kit.cleanup);

describe('agent keys and CSRs', () => {
  it('makes a P-256 CSR with the SPIFFE ID in a URI SAN that the issuer and openssl verify', async () => {
    const keys = generateKeyPair();
    const der = await createCsr(keys, 'spiffe://example.org/workload/a');
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

  it('makes a CSR without a SAN for the first attestation', async () => {
    const der = await createCsr(generateKeyPair());
    expect(new Pkcs10CertificateRequest(der.slice()).getExtension(SAN_OID)).toBeNull();
    await expect(parseCsr(der)).resolves.toMatchObject({ keyAlgorithm: 'EC P-256' });
  });

  it('round-trips PKCS#8, refuses keys that are not P-256, and matches certificates to their key', async () => {
    const now = Date.now();
    const ca = await newTestCa(parseTrustDomain('example.org'), now - 60_000);
    const keys = generateKeyPair();
    const { publicKeySpki } = await parseCsr(await createCsr(keys));
    const leaf = await issueX509Svid({ spiffeId: parseSpiffeId('spiffe://example.org/w'), publicKeySpki, dnsNames: [], ttlSeconds: 600, now }, ca);

    const again = importPkcs8(exportPkcs8(keys.privateKey));
    expect(certificateMatchesKey(leaf, again)).toBe(true);
    expect(certificateMatchesKey(leaf, generateKeyPair().privateKey)).toBe(false);
    expect(certificateMatchesKey(new Uint8Array([0x30, 0x00]), again)).toBe(false);
    expect(certificateInfo(leaf)).toEqual({ notBefore: expect.any(Number), notAfter: Math.floor(now / 1000) * 1000 + 600_000, spiffeId: 'spiffe://example.org/w' });

    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    expect(() => importPkcs8(new Uint8Array(p384))).toThrow(/P-256/);
    expect(() => importPkcs8(new Uint8Array([1, 2, 3]))).toThrow();
  });
});
