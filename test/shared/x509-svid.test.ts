import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { createCaCertificate, validateCaCert } from '../../src/shared/spiffe/ca-cert.js';
import { parseSpiffeId, parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { issueX509Svid, validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { signCertificate, type SigningCa } from '../../src/shared/spiffe/x509.js';
import { generateKeys, spkiOf, type KeyPair } from '../helpers/shared/pki.js';

const TD = parseTrustDomain('example.org');
const ID = parseSpiffeId('spiffe://example.org/ns/prod/sa/web');
const NOW = Date.UTC(2026, 5, 1);
const HOUR = 3600_000;
const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

async function rootCa(keys?: KeyPair, notAfter = NOW + 24 * HOUR): Promise<SigningCa & { keys: KeyPair; der: Uint8Array }> {
  const k = keys ?? (await generateKeys('P-256'));
  const der = await createCaCertificate({ trustDomain: TD, subject: 'O=Wisp,CN=Wisp CA', publicKeySpki: await spkiOf(k), now: NOW, notAfter }, { selfKey: k.privateKey, signAlgorithm: ES256 });
  return { cert: new x509.X509Certificate(der), privateKey: k.privateKey, signAlgorithm: ES256, keys: k, der };
}

describe('CA certificates', () => {
  it('creates a self-signed root that is a valid signing certificate with URI SAN spiffe://td', async () => {
    const ca = await rootCa();
    expect(validateCaCert(ca.der, { trustDomain: TD, now: NOW })).toEqual({ ok: true, value: { notAfter: NOW + 24 * HOUR } });
    expect(await ca.cert.isSelfSigned()).toBe(true);
    expect(ca.cert.subject).toBe('O=Wisp, CN=Wisp CA');
    expect(validateCaCert(ca.der, { trustDomain: parseTrustDomain('other.org'), now: NOW }).ok).toBe(false);
  });

  it('creates an intermediate under an upstream CA, capped at the upstream notAfter', async () => {
    const upstream = await rootCa(undefined, NOW + 2 * HOUR);
    const k = await generateKeys('P-256');
    const der = await createCaCertificate({ trustDomain: TD, subject: 'O=Wisp,CN=Intermediate', publicKeySpki: await spkiOf(k), now: NOW, notAfter: NOW + 24 * HOUR }, { upstream });
    const cert = new x509.X509Certificate(der);
    expect(cert.issuer).toBe(upstream.cert.subject);
    expect(cert.notAfter.getTime()).toBe(NOW + 2 * HOUR);
    expect(await cert.verify({ publicKey: upstream.cert.publicKey, signatureOnly: true })).toBe(true);
    expect(validateCaCert(der, { trustDomain: TD, now: NOW }).ok).toBe(true);
  });
});

describe('X509-SVID issuance', () => {
  it.each(['P-256', 'P-384', 'RSA-2048'] as const)('issues a %s SVID that passes every X509-SVID.md rule', async (kind) => {
    const ca = await rootCa();
    const subject = await generateKeys(kind);
    const der = await issueX509Svid({ spiffeId: ID, publicKeySpki: await spkiOf(subject), dnsNames: ['web.example.org', 'web'], ttlSeconds: 3600, now: NOW }, ca);
    const cert = new x509.X509Certificate(der);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: ID }, { type: 'dns', value: 'web.example.org' }, { type: 'dns', value: 'web' }]);
    expect(cert.subject).toBe('O=Wisp, CN=web.example.org');
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.critical]).toEqual([false, true]);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature | (kind === 'RSA-2048' ? x509.KeyUsageFlags.keyEncipherment : 0));
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).not.toBeNull();
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(cert.serialNumber).toMatch(/^[0-7][0-9a-f]{31}$/);
    expect(cert.notBefore.getTime()).toBe(NOW); // backdate clamped to the CA's notBefore
    expect(cert.notAfter.getTime()).toBe(NOW + HOUR);
    expect(await validateX509Svid([der], { now: NOW + 1, expectedId: ID, roots: [ca.der] })).toEqual({ ok: true, value: { spiffeId: ID, notAfter: NOW + HOUR, serialNumber: cert.serialNumber } });
  });

  it('caps the SVID lifetime at the CA notAfter', async () => {
    const ca = await rootCa(undefined, NOW + HOUR);
    const der = await issueX509Svid({ spiffeId: ID, publicKeySpki: await spkiOf(await generateKeys('P-256')), dnsNames: [], ttlSeconds: 10 * 3600, now: NOW + 1000 }, ca);
    expect(new x509.X509Certificate(der).notAfter.getTime()).toBe(NOW + HOUR);
  });

  it('validates a chain leaf + intermediate against the upstream root', async () => {
    const upstream = await rootCa();
    const k = await generateKeys('P-256');
    const interDer = await createCaCertificate({ trustDomain: TD, subject: 'O=Wisp,CN=Intermediate', publicKeySpki: await spkiOf(k), now: NOW, notAfter: NOW + 12 * HOUR }, { upstream });
    const inter: SigningCa = { cert: new x509.X509Certificate(interDer), privateKey: k.privateKey, signAlgorithm: ES256 };
    const leaf = await issueX509Svid({ spiffeId: ID, publicKeySpki: await spkiOf(await generateKeys('P-256')), dnsNames: [], ttlSeconds: 3600, now: NOW }, inter);
    expect((await validateX509Svid([leaf, interDer], { now: NOW, roots: [upstream.der] })).ok).toBe(true);
    const stranger = await rootCa();
    const r = await validateX509Svid([leaf, interDer], { now: NOW, roots: [stranger.der] });
    expect(r.ok ? '' : r.error.message).toMatch(/trusted X.509 authority/);
    const broken = await validateX509Svid([leaf, stranger.der], { now: NOW });
    expect(broken.ok ? '' : broken.error.message).toMatch(/not signed by certificate 1/);
  });

  it('refuses a root SPIFFE ID, bad DNS names and an expired CA as caller bugs', async () => {
    const ca = await rootCa();
    const spki = await spkiOf(await generateKeys('P-256'));
    await expect(issueX509Svid({ spiffeId: parseSpiffeId('spiffe://example.org'), publicKeySpki: spki, dnsNames: [], ttlSeconds: 60, now: NOW }, ca)).rejects.toThrow(/path/);
    await expect(issueX509Svid({ spiffeId: ID, publicKeySpki: spki, dnsNames: ['bad name'], ttlSeconds: 60, now: NOW }, ca)).rejects.toThrow(/DNS/);
    await expect(issueX509Svid({ spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 60, now: NOW + 25 * HOUR }, ca)).rejects.toThrow(/expired/);
  });
});

describe('validateX509Svid rejects non-conforming leaves', async () => {
  const ca = await rootCa();
  const subjectSpki = await spkiOf(await generateKeys('P-256'));
  const skid = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  type Ext = x509.Extension;
  const goodExt = (): Ext[] => [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }]),
    new x509.AuthorityKeyIdentifierExtension(skid),
  ];
  const make = (extensions: Ext[], opts: { subject?: string; notAfter?: number } = {}) =>
    signCertificate(
      { serialNumberHex: '01', subject: new x509.Name(opts.subject ?? 'O=Test'), issuer: ca.cert.subjectName, notBefore: new Date(NOW), notAfter: new Date(opts.notAfter ?? NOW + HOUR), publicKeySpki: subjectSpki, extensions },
      ca.privateKey,
      ES256,
    );
  const replace = (i: number, e?: Ext) => goodExt().flatMap((x, j) => (j === i ? (e ? [e] : []) : [x]));
  it('accepts the well-formed baseline', async () => {
    expect((await validateX509Svid([await make(goodExt())], { now: NOW, roots: [ca.der] })).ok).toBe(true);
  });
  it.each<[string, () => Promise<Uint8Array>, RegExp, object?]>([
    ['two URI SANs', () => make(replace(3, new x509.SubjectAlternativeNameExtension([{ type: 'url', value: ID }, { type: 'url', value: 'spiffe://example.org/other' }]))), /exactly one URI SAN, has 2/],
    ['no URI SAN', () => make(replace(3)), /exactly one URI SAN, has 0/],
    ['a non-SPIFFE URI', () => make(replace(3, new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'https://example.org/x' }]))), /not a SPIFFE ID/],
    ['a root SPIFFE ID', () => make(replace(3, new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://example.org' }]))), /no path/],
    ['an unexpected SPIFFE ID', () => make(goodExt()), /not the expected/, { expectedId: 'spiffe://example.org/other' }],
    ['cA=true', () => make(replace(0, new x509.BasicConstraintsExtension(true, undefined, true))), /cA=true/],
    ['no basicConstraints', () => make(replace(0)), /no basicConstraints/],
    ['no keyUsage', () => make(replace(1)), /no keyUsage/],
    ['a non-critical keyUsage', () => make(replace(1, new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, false))), /not critical/],
    ['keyUsage without digitalSignature', () => make(replace(1, new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment, true))), /lacks digitalSignature/],
    ['keyUsage with keyCertSign', () => make(replace(1, new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true))), /keyCertSign or cRLSign/],
    ['keyUsage with cRLSign', () => make(replace(1, new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign, true))), /keyCertSign or cRLSign/],
    ['extKeyUsage without clientAuth', () => make(replace(2, new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]))), /serverAuth or clientAuth/],
    ['an empty subject with a non-critical SAN', () => make(goodExt(), { subject: '' }), /SAN extension is not critical/],
    ['an expired leaf', () => make(goodExt()), /not valid at this time/, { now: NOW + 2 * HOUR }],
    ['garbage', async () => new Uint8Array([1, 2, 3]), /not a DER certificate/],
  ])('%s', async (_name, build, message, extra) => {
    const r = await validateX509Svid([await build()], { now: NOW, ...(extra ?? {}) });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('ERR_CSR_INVALID');
      expect(r.error.message).toMatch(message);
    }
  });
});
