/**
 * The lean issuance path of leaf X509-SVIDs: the parts of the certificate that are the same for every SVID
 * of one CA key (issuer, signature algorithm, basicConstraints, keyUsage, extKeyUsage, AKID) are encoded once
 * by @peculiar/x509, and each SVID only fills in serial, validity, subject, SPKI, URI/DNS SANs and SKID with
 * a few lines of DER, then signs with WebCrypto. Building a leaf with @peculiar/x509 costs ~3 ms, 92% of it
 * ASN.1 encoding (profiled on this project's 2-core machine); this path costs about one signature.
 *
 * The output is the certificate `issueX509Svid` (x509-svid.ts) builds, byte for byte: tests compare both
 * encodings, and `createX509SvidTemplate` checks it again for each CA by issuing a probe SVID both ways
 * (identical TBS bytes required) and running `validateX509Svid` on it, so a template that would differ
 * from the profile is never used (STYLE G9: the validation moves from each SVID to its template).
 * @module
 */
import 'reflect-metadata';
import {
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { bytesEqual, concatBytes } from '../encoding/bytes.js';
import { ascii, contentsOf, derTime, derTlv, derUnsignedInteger, ecdsaDerSize, encodingOf, putDerHeader as putHeader, putEcdsaDer, readChildren, readWhole, tlvSize } from './der.js';
import { parseSpiffeId, pathOf, trustDomainOf, type SpiffeId } from './id.js';
import { dnsNameProblem } from './dns-name.js';
import { buildX509SvidTemplate, validateX509Svid, X509_SVID_BACKDATE_MS, X509_SVID_SUBJECT_ORGANIZATION, type X509SvidParams } from './x509-svid.js';
import { authorityKeyIdentifierOf, MIN_RSA_MODULUS_BITS, randomSerialNumber, toHex, type KeyAlgorithmName, type SigningCa } from './x509.js';

/** What one CA key needs to issue SVIDs without general ASN.1 encoding. Opaque to callers. */
export interface X509SvidTemplate {
  readonly ca: SigningCa;
  readonly caNotBefore: number;
  readonly caNotAfter: number;
  readonly signatureAlgorithm: Uint8Array;
  readonly issuer: Uint8Array;
  /** basicConstraints, keyUsage, extKeyUsage for EC subject keys; the keyUsage differs for RSA */
  readonly fixedExtensionsEc: Uint8Array;
  readonly fixedExtensionsRsa: Uint8Array;
  readonly authorityKeyId: Uint8Array;
  readonly subjectOrganization: Uint8Array;
}

/** An issued SVID certificate and what the CA reports about it. */
export interface IssuedX509Svid {
  der: Uint8Array;
  /** ms since the epoch, whole seconds (as encoded) */
  notAfter: number;
  /** lowercase hex of the serial INTEGER's contents, as @peculiar/x509's `serialNumber` reports it */
  serialNumber: string;
}

const OID_EC_PUBLIC_KEY = hex('2a8648ce3d0201');
const OID_RSA_ENCRYPTION = hex('2a864886f70d010101');
const OID_P256 = hex('2a8648ce3d030107');
const OID_P384 = hex('2b81040022');

/** A subject key as the template needs it: its kind and the bits the SKID hashes. */
export interface SubjectKeyInfo {
  kind: KeyAlgorithmName;
  /** the subjectPublicKey BIT STRING's value, without the unused-bits octet (RFC 5280 §4.2.1.2 method 1) */
  publicKeyBits: Uint8Array;
}

/**
 * Reads a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) and classifies it like `classifyKeyAlgorithm`:
 * EC P-256 / P-384 or RSA of at least 2048 bits. Returns a reason string for anything else.
 */
export function readSubjectKey(spki: Uint8Array): SubjectKeyInfo | string {
  try {
    const seq = readWhole(spki, 0x30);
    const [alg, bits, extra] = readChildren(spki, seq);
    if (!alg || !bits || extra || alg.tag !== 0x30 || bits.tag !== 0x03) return 'not a SubjectPublicKeyInfo';
    const [oid, params, more] = readChildren(spki, alg);
    if (!oid || oid.tag !== 0x06 || more) return 'not a SubjectPublicKeyInfo';
    const bitString = contentsOf(spki, bits);
    if (bitString.length < 2 || bitString[0] !== 0) return 'subjectPublicKey has unused bits';
    const publicKeyBits = bitString.subarray(1);
    // OIDs compared as bytes (this runs up to three times per SVID: no hex strings)
    const algOid = contentsOf(spki, oid);
    if (bytesEqual(algOid, OID_EC_PUBLIC_KEY)) {
      const curve = params?.tag === 0x06 ? contentsOf(spki, params) : undefined;
      const size = curve && bytesEqual(curve, OID_P256) ? 32 : curve && bytesEqual(curve, OID_P384) ? 48 : 0;
      if (size === 0) return 'unsupported EC curve; use P-256 or P-384';
      if (publicKeyBits.length !== 1 + 2 * size || publicKeyBits[0] !== 0x04) return 'EC public key is not an uncompressed point';
      return { kind: size === 32 ? 'EC P-256' : 'EC P-384', publicKeyBits };
    }
    if (bytesEqual(algOid, OID_RSA_ENCRYPTION)) {
      if (!params || params.tag !== 0x05 || params.end !== params.contentStart) return 'RSA key parameters must be NULL';
      const rsa = readWhole(publicKeyBits, 0x30);
      const [n] = readChildren(publicKeyBits, rsa);
      if (!n || n.tag !== 0x02) return 'not an RSA public key';
      if (modulusBits(contentsOf(publicKeyBits, n)) < MIN_RSA_MODULUS_BITS) return `RSA key is too small; at least ${MIN_RSA_MODULUS_BITS} bits required`;
      return { kind: 'RSA', publicKeyBits };
    }
    return 'unsupported public key algorithm; use EC P-256, EC P-384 or RSA';
  } catch {
    return 'not a DER SubjectPublicKeyInfo';
  }
}

function modulusBits(n: Uint8Array): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i) * 8 - Math.clz32(n[i]!) + 24;
}

function signatureAlgorithmDer(ca: SigningCa): Uint8Array {
  const a = ca.signAlgorithm;
  if (a.name === 'ECDSA') return derTlv(0x30, derTlv(0x06, hex(a.hash === 'SHA-256' ? '2a8648ce3d040302' : '2a8648ce3d040303')));
  return derTlv(0x30, derTlv(0x06, hex('2a864886f70d01010b')), Uint8Array.of(0x05, 0x00));
}

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

const PRINTABLE = /^[A-Za-z0-9 '()+,-./:=?]*$/;
/** @peculiar/x509's choice for a name attribute: PrintableString when it can, else UTF8String. */
function directoryString(value: string): Uint8Array {
  return PRINTABLE.test(value) ? derTlv(0x13, ascii(value)) : derTlv(0x0c, new TextEncoder().encode(value));
}

function rdn(oidHex: string, value: string): Uint8Array {
  return derTlv(0x31, derTlv(0x30, derTlv(0x06, hex(oidHex)), directoryString(value)));
}

const OID_O = '55040a';
const OID_CN = '550403';
const EXT_SAN = hex('551d11');
const EXT_SKID = hex('551d0e');

/**
 * Encodes the per-CA parts once and checks them with a probe SVID (identical TBS to @peculiar/x509's, and
 * accepted by validateX509Svid). Throws when the CA is unusable or the check fails.
 * @example const template = await createX509SvidTemplate({ cert, privateKey, signAlgorithm }, Date.now());
 */
export async function createX509SvidTemplate(ca: SigningCa, now: number): Promise<X509SvidTemplate> {
  const ext = (e: { rawData: ArrayBuffer }) => new Uint8Array(e.rawData);
  const common = (rsa: boolean) =>
    concatBytes([
      ext(new BasicConstraintsExtension(false, undefined, true)),
      ext(new KeyUsagesExtension(KeyUsageFlags.digitalSignature | (rsa ? KeyUsageFlags.keyEncipherment : 0), true)),
      ext(new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth], false)),
    ]);
  const template: X509SvidTemplate = {
    ca,
    caNotBefore: ca.cert.notBefore.getTime(),
    caNotAfter: ca.cert.notAfter.getTime(),
    signatureAlgorithm: signatureAlgorithmDer(ca),
    issuer: new Uint8Array(ca.cert.subjectName.toArrayBuffer()),
    fixedExtensionsEc: common(false),
    fixedExtensionsRsa: common(true),
    authorityKeyId: ext(await authorityKeyIdentifierOf(ca.cert)),
    subjectOrganization: rdn(OID_O, X509_SVID_SUBJECT_ORGANIZATION),
  };
  await checkTemplate(template, now);
  return template;
}

/** The TBSCertificate bytes of a DER certificate (its first element). */
export function tbsOf(certDer: Uint8Array): Uint8Array {
  const cert = readWhole(certDer, 0x30);
  const [tbs] = readChildren(certDer, cert);
  if (!tbs || tbs.tag !== 0x30) throw new RangeError('not a certificate');
  return encodingOf(certDer, tbs);
}

async function checkTemplate(t: X509SvidTemplate, now: number): Promise<void> {
  const san = t.ca.cert.getExtension(SubjectAlternativeNameExtension);
  const caId = san?.names.items.find((n) => n.type === 'url')?.value;
  if (!caId) throw new Error('X509-SVID template: the CA certificate has no SPIFFE ID');
  const params: X509SvidParams = {
    spiffeId: `spiffe://${trustDomainOf(parseSpiffeId(caId))}/wisp/template-probe` as SpiffeId,
    publicKeySpki: new Uint8Array(t.ca.cert.publicKey.rawData),
    dnsNames: ['probe.wisp.invalid'],
    ttlSeconds: 60,
    now,
    serialNumber: randomSerialNumber(),
  };
  const issued = await issueFromTemplate(t, params);
  const reference = await buildX509SvidTemplate(params, t.ca.cert);
  // same fields through @peculiar/x509's encoder, signed by a throwaway key: only the TBS is compared
  const expected = await X509CertificateGenerator.create({
    serialNumber: reference.serialNumberHex,
    subject: reference.subject,
    issuer: reference.issuer,
    notBefore: reference.notBefore,
    notAfter: reference.notAfter,
    publicKey: reference.publicKeySpki.slice(),
    signingKey: t.ca.privateKey,
    signingAlgorithm: t.ca.signAlgorithm,
    extensions: reference.extensions,
  });
  if (!bytesEqual(tbsOf(issued.der), tbsOf(new Uint8Array(expected.rawData)))) throw new Error('X509-SVID template: encoding differs from @peculiar/x509');
  const valid = await validateX509Svid([issued.der], { now, expectedId: params.spiffeId, roots: [t.ca.cert] });
  if (!valid.ok) throw new Error(`X509-SVID template: probe SVID rejected: ${valid.error.message}`);
}

/**
 * Issues a leaf X509-SVID from a template: the same checks and the same certificate as `issueX509Svid`.
 * Throws TypeError on a caller bug (root SPIFFE ID, bad DNS name, non-positive TTL, unsupported key, expired CA).
 * @example const { der, notAfter, serialNumber } = await issueFromTemplate(template, { spiffeId, publicKeySpki, dnsNames: [], ttlSeconds: 3600, now });
 */
export async function issueFromTemplate(t: X509SvidTemplate, p: X509SvidParams): Promise<IssuedX509Svid> {
  const tbs = await encodeTbs(t, p);
  const raw = new Uint8Array(await crypto.subtle.sign(t.ca.signAlgorithm, t.ca.privateKey, tbs.der));
  // ECDSA: the DER ECDSA-Sig-Value (ecdsaRawToDer's encoding), written in place
  const ecdsa = t.ca.signAlgorithm.name === 'ECDSA';
  const signatureLength = ecdsa ? ecdsaDerSize(raw) : raw.length;
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }, in one buffer
  const bitString = 1 + signatureLength;
  const content = tbs.der.length + t.signatureAlgorithm.length + tlvSize(bitString);
  const der = new Uint8Array(tlvSize(content));
  let at = putHeader(der, 0, 0x30, content);
  der.set(tbs.der, at);
  at += tbs.der.length;
  der.set(t.signatureAlgorithm, at);
  at += t.signatureAlgorithm.length;
  at = putHeader(der, at, 0x03, bitString);
  der[at++] = 0;
  if (ecdsa) {
    at = putEcdsaDer(der, at, raw);
  } else {
    at = put(der, at, raw);
  }
  if (at !== der.length) throw new Error('X509-SVID template: certificate size mismatch');
  return { der, notAfter: tbs.notAfter, serialNumber: tbs.serialNumber };
}

/** Writes ASCII `s` at `at` (ascii()'s 7-bit mapping, without the intermediate array); returns the offset after it. */
function putAscii(out: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i) & 0x7f;
  return at;
}

/** Leaf SPIFFE IDs already checked to have a path (a CA signs for the same entries over and over). */
const leafIds = new Set<string>();
const LEAF_IDS_MAX = 10_000;

function checkLeafId(spiffeId: string): void {
  if (leafIds.has(spiffeId)) return;
  // X509-SVID.md §2: leaf SPIFFE IDs have a non-root path.
  if (pathOf(parseSpiffeId(spiffeId)) === '') throw new TypeError('a leaf X509-SVID needs a SPIFFE ID with a path');
  if (leafIds.size >= LEAF_IDS_MAX) leafIds.clear();
  leafIds.add(spiffeId);
}

/** Writes `bytes` at `at`; returns the offset after them. */
function put(out: Uint8Array, at: number, bytes: Uint8Array): number {
  out.set(bytes, at);
  return at + bytes.length;
}

/** The version field of a v3 certificate: [0] EXPLICIT INTEGER 2. */
const VERSION_V3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);
/** OBJECT IDENTIFIER elements of the two per-SVID extensions. */
const EXT_SAN_OID = derTlv(0x06, EXT_SAN);
const EXT_SKID_OID = derTlv(0x06, EXT_SKID);
/** SHA-1 digest size: the SKID (RFC 5280 §4.2.1.2 method 1). */
const SKID_BYTES = 20;

/** The TBSCertificate (RFC 5280 §4.1) of the SVID, in @peculiar/x509's field and extension order. */
export async function encodeTbs(t: X509SvidTemplate, p: X509SvidParams): Promise<{ der: Uint8Array; notAfter: number; serialNumber: string }> {
  checkLeafId(p.spiffeId);
  if (!(p.ttlSeconds > 0)) throw new TypeError('ttlSeconds must be positive');
  for (const d of p.dnsNames) {
    const problem = dnsNameProblem(d);
    if (problem) throw new TypeError(problem);
  }
  const key = readSubjectKey(p.publicKeySpki);
  if (typeof key === 'string') throw new TypeError(key);
  const notAfter = Math.min(p.now + p.ttlSeconds * 1000, t.caNotAfter);
  const notBefore = Math.max(p.now - X509_SVID_BACKDATE_MS, t.caNotBefore);
  if (notAfter <= p.now) throw new TypeError('the signing CA has expired');
  const serialInteger = derUnsignedInteger(p.serialNumber ?? randomSerialNumber());
  const cn = p.dnsNames[0] ? rdn(OID_CN, p.dnsNames[0]) : undefined;
  const id = p.spiffeId;
  const dns = p.dnsNames;
  const skid = new Uint8Array(await crypto.subtle.digest('SHA-1', key.publicKeyBits));
  if (skid.length !== SKID_BYTES) throw new Error('SHA-1 digest of unexpected size');
  const validity = derTime(notBefore);
  const validityEnd = derTime(notAfter);
  const fixed = key.kind === 'RSA' ? t.fixedExtensionsRsa : t.fixedExtensionsEc;

  // sizes, inside out (the encoding is the nested derTlv one, written once into a single buffer)
  let namesContent = tlvSize(id.length);
  for (const d of dns) namesContent += tlvSize(d.length);
  const sanOctets = tlvSize(namesContent);
  const sanContent = EXT_SAN_OID.length + tlvSize(sanOctets);
  const skidOctets = tlvSize(SKID_BYTES);
  const skidContent = EXT_SKID_OID.length + tlvSize(skidOctets);
  const extensionsContent = fixed.length + tlvSize(sanContent) + tlvSize(skidContent) + t.authorityKeyId.length;
  const extensionsWrapped = tlvSize(extensionsContent);
  const validityContent = validity.length + validityEnd.length;
  const subjectContent = t.subjectOrganization.length + (cn?.length ?? 0);
  const tbsContent =
    VERSION_V3.length +
    serialInteger.length +
    t.signatureAlgorithm.length +
    t.issuer.length +
    tlvSize(validityContent) +
    tlvSize(subjectContent) +
    p.publicKeySpki.length +
    tlvSize(extensionsWrapped);

  const der = new Uint8Array(tlvSize(tbsContent));
  let at = putHeader(der, 0, 0x30, tbsContent);
  at = put(der, at, VERSION_V3);
  at = put(der, at, serialInteger);
  at = put(der, at, t.signatureAlgorithm);
  at = put(der, at, t.issuer);
  at = putHeader(der, at, 0x30, validityContent);
  at = put(der, at, validity);
  at = put(der, at, validityEnd);
  at = putHeader(der, at, 0x30, subjectContent);
  at = put(der, at, t.subjectOrganization);
  if (cn) at = put(der, at, cn);
  at = put(der, at, p.publicKeySpki);
  at = putHeader(der, at, 0xa3, extensionsWrapped);
  at = putHeader(der, at, 0x30, extensionsContent);
  at = put(der, at, fixed);
  // subjectAltName: URI SAN (the SPIFFE ID), then DNS SANs
  at = putHeader(der, at, 0x30, sanContent);
  at = put(der, at, EXT_SAN_OID);
  at = putHeader(der, at, 0x04, sanOctets);
  at = putHeader(der, at, 0x30, namesContent);
  at = putHeader(der, at, 0x86, id.length);
  at = putAscii(der, at, id);
  for (const d of dns) {
    at = putHeader(der, at, 0x82, d.length);
    at = putAscii(der, at, d);
  }
  // subjectKeyIdentifier
  at = putHeader(der, at, 0x30, skidContent);
  at = put(der, at, EXT_SKID_OID);
  at = putHeader(der, at, 0x04, skidOctets);
  at = putHeader(der, at, 0x04, SKID_BYTES);
  at = put(der, at, skid);
  at = put(der, at, t.authorityKeyId);
  if (at !== der.length) throw new Error('X509-SVID template: TBS size mismatch');
  return { der, notAfter: Math.floor(notAfter / 1000) * 1000, serialNumber: toHex(serialInteger.subarray(2)) };
}
