// Independent checks of issued X509-SVIDs (X509-SVID.md) with OpenSSL and node:crypto, on Node only.
// The certificates come from the same shared code the CA Durable Object runs (ca-cert.ts, x509-svid.ts),
// and the CSRs from `openssl req`, so parseCsr is exercised on a foreign encoder too.
import 'reflect-metadata';
import { X509Certificate as NodeX509 } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createOpensslKit, newTestCa, openssl } from '../helpers/node/agent/openssl-kit.js';
import { WispError } from '../../src/shared/errors.js';
import { parseCsr } from '../../src/shared/spiffe/csr.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { issueX509Svid, validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import type { SigningCa } from '../../src/shared/spiffe/x509.js';

const kit = createOpensslKit('wisp-x509-');
afterAll(kit.cleanup);
const { writePem, opensslCsr } = kit;

const TD = parseTrustDomain('example.org');
const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const newCa = (now: number, upstream?: SigningCa) => newTestCa(TD, now, upstream);

describe('issued X509-SVIDs under OpenSSL and node:crypto', () => {
  it.each([
    ['EC P-256', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['EC P-384', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ['RSA 2048', ['-newkey', 'rsa:2048']],
  ])('an SVID for an openssl %s CSR meets every X509-SVID.md rule', async (name, keyArgs) => {
    const now = Date.now();
    const ca = await newCa(now - 60_000);
    const { publicKeySpki } = await parseCsr(opensslCsr(keyArgs));
    const leaf = await issueX509Svid({ spiffeId: ID, publicKeySpki, dnsNames: ['web.example.org'], ttlSeconds: 3600, now }, ca);
    const leafPath = writePem(leaf);
    const caPath = writePem(ca.der);

    const text = openssl('x509', '-in', leafPath, '-text', '-noout');
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(name === 'RSA 2048' ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/X509v3 Subject Alternative Name:\s+URI:spiffe:\/\/example\.org\/ns\/prod\/sa\/web, DNS:web\.example\.org\n/);
    expect(text).toMatch(/X509v3 Subject Key Identifier/);
    expect(text).toMatch(/X509v3 Authority Key Identifier/);
    expect(text).toMatch(/Version: 3 \(0x2\)/);
    expect(text).toMatch(/Subject: O ?= ?Wisp, CN ?= ?web\.example\.org/);

    const nodeLeaf = new NodeX509(leaf);
    const nodeCa = new NodeX509(ca.der);
    expect(nodeLeaf.ca).toBe(false);
    expect(nodeCa.ca).toBe(true);
    expect(nodeLeaf.subjectAltName).toBe('URI:spiffe://example.org/ns/prod/sa/web, DNS:web.example.org');
    expect(nodeCa.subjectAltName).toBe('URI:spiffe://example.org');
    expect(nodeLeaf.verify(nodeCa.publicKey)).toBe(true);
    expect(nodeLeaf.checkIssued(nodeCa)).toBe(true);
    expect(nodeLeaf.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(new Date(nodeLeaf.validTo).getTime()).toBe(Math.floor((now + 3600_000) / 1000) * 1000);
    expect(nodeLeaf.publicKey.export({ type: 'spki', format: 'der' })).toEqual(Buffer.from(publicKeySpki));

    for (const purpose of ['sslclient', 'sslserver']) {
      expect(openssl('verify', '-purpose', purpose, '-CAfile', caPath, leafPath).trim()).toBe(`${leafPath}: OK`);
    }
    const caText = openssl('x509', '-in', caPath, '-text', '-noout');
    expect(caText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(caText).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
  });

  it('a leaf + intermediate chain verifies against the upstream root with openssl', async () => {
    const now = Date.now();
    const root = await newCa(now - 120_000);
    const inter = await newCa(now - 60_000, root);
    const { publicKeySpki } = await parseCsr(opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']));
    const leaf = await issueX509Svid({ spiffeId: ID, publicKeySpki, dnsNames: [], ttlSeconds: 600, now }, inter);
    const out = openssl('verify', '-purpose', 'sslclient', '-CAfile', writePem(root.der), '-untrusted', writePem(inter.der), writePem(leaf));
    expect(out.trim()).toMatch(/: OK$/);
    expect((await validateX509Svid([leaf, inter.der], { now, expectedId: ID, roots: [root.der] })).ok).toBe(true);
    // openssl refuses the chain without the intermediate, as our validator does.
    expect(() => openssl('verify', '-CAfile', writePem(root.der), writePem(leaf))).toThrow();
    expect((await validateX509Svid([leaf], { now, roots: [root.der] })).ok).toBe(false);
  });

  it.each([
    ['RSA 1024', ['-newkey', 'rsa:1024'], /too small/],
    ['Ed25519', ['-newkey', 'ed25519'], /unsupported public key algorithm/],
    ['EC P-521', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], /unsupported EC curve/],
  ])('rejects an openssl %s CSR', async (_name, keyArgs, message) => {
    const p = parseCsr(opensslCsr(keyArgs));
    await expect(p).rejects.toBeInstanceOf(WispError);
    await expect(p).rejects.toThrow(message);
  });
});
