// The lean issuance path (x509-svid-template.ts) checked by OpenSSL and node:crypto, on Node only: SVIDs for
// openssl-made CSRs (read by parseCsr's lean reader) must print, parse and verify like the reference path's,
// and be byte-identical to them apart from the signature.
import 'reflect-metadata';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createOpensslKit, newTestCa, openssl } from '../helpers/node/agent/openssl-kit.js';
import { parseCsr } from '../../src/shared/spiffe/csr.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { issueX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { createX509SvidTemplate, issueFromTemplate, tbsOf } from '../../src/shared/spiffe/x509-svid-template.js';
import type { SigningCa } from '../../src/shared/spiffe/x509.js';

const kit = createOpensslKit('wisp-x509t-');
afterAll(kit.cleanup);
const { writePem, opensslCsr } = kit;

const TD = parseTrustDomain('example.org');
const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const newCa = (now: number, upstream?: SigningCa) => newTestCa(TD, now, upstream);

describe('template-issued X509-SVIDs under OpenSSL and node:crypto', () => {
  it.each([
    ['EC P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['EC P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['RSA 2048', ['-newkey', 'rsa:2048']],
  ])('an SVID for an openssl %s CSR is the reference certificate and verifies', async (name, keyArgs) => {
    const now = Date.now();
    const ca = await newCa(now - 60_000);
    const { publicKeySpki } = await parseCsr(opensslCsr(keyArgs));
    const template = await createX509SvidTemplate(ca, now);
    const serialNumber = crypto.getRandomValues(new Uint8Array(16)).map((b, i) => (i === 0 ? (b & 0x7f) || 1 : b));
    const params = { spiffeId: ID, publicKeySpki, dnsNames: ['web.example.org'], ttlSeconds: 3600, now, serialNumber };
    const { der: leaf } = await issueFromTemplate(template, params);
    const reference = await issueX509Svid(params, ca);
    expect(Buffer.from(tbsOf(leaf)).toString('hex')).toBe(Buffer.from(tbsOf(reference)).toString('hex'));

    const leafPath = writePem(leaf);
    const caPath = writePem(ca.der);
    const text = openssl('x509', '-in', leafPath, '-text', '-noout');
    const referenceText = openssl('x509', '-in', writePem(reference), '-text', '-noout');
    // everything but the signature value prints the same
    const withoutSignature = (t: string) => t.replace(/Signature Value:[\s\S]*$/, '');
    expect(withoutSignature(text)).toBe(withoutSignature(referenceText));
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(name === 'RSA 2048' ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/web, DNS:web\.example\.org\n/);
    for (const purpose of ['sslclient', 'sslserver']) {
      expect(openssl('verify', '-purpose', purpose, '-CAfile', caPath, leafPath).trim()).toBe(`${leafPath}: OK`);
    }

    const nodeLeaf = new NodeX509(leaf);
    const nodeCa = new NodeX509(ca.der);
    expect(nodeLeaf.ca).toBe(false);
    expect(nodeLeaf.subjectAltName).toBe('URI:spiffe://example.org/ns/prod/sa/web, DNS:web.example.org');
    expect(nodeLeaf.verify(nodeCa.publicKey)).toBe(true);
    expect(nodeLeaf.checkIssued(nodeCa)).toBe(true);
    expect(nodeLeaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(Buffer.from(publicKeySpki));
  });

  it('parseCsr refuses an openssl CSR whose signature was altered (lean reader, no proof of possession)', async () => {
    const csr = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']);
    const tampered = csr.slice();
    tampered[tampered.length - 5]! ^= 0x01;
    await expect(parseCsr(tampered)).rejects.toThrow(/does not verify|cannot be verified|not a DER/);
    const body = csr.slice();
    body[40]! ^= 0x01; // inside the subject: the signed bytes change
    await expect(parseCsr(body)).rejects.toThrow();
  });
});
