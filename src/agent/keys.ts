/**
 * Key pairs and CSRs the agent makes: ECDSA P-256 keys from node:crypto, CSRs encoded by the narrow template
 * (shared/spiffe/csr-template.ts) and signed by node:crypto. Workload keys are generated here, on the node,
 * and only ever handed to the workload (as PKCS#8); the issuer sees CSRs.
 *
 * Everything runs synchronously on the main thread. WebCrypto's generateKey, sign and exportKey run as jobs
 * on libuv's thread pool: each of its 4 threads then kept its own glibc malloc arena (~1 MB each, in use),
 * and the jobs' own objects came on top; with 1,000 SVIDs that was 3–4 MB of the agent's RSS. A P-256 key
 * pair and one signature take ~0.1 ms, so a batch of 100 CSRs holds the event loop for ~10 ms.
 * Only the agent's own key becomes a WebCrypto CryptoKey (`toSigningCryptoKey`): jose signs agent request
 * proofs with it, once per issuer call.
 *
 * Never export a generated key as JWK (nor read its asymmetricKeyDetails): Node 20 holds the key's mutex
 * while it builds the JWK on the V8 heap, and a GC that finalizes the key-generation job then waits on the
 * same mutex, a deadlock (seen with about one key in ten thousand). The DER exports, sign and
 * X509Certificate checks used here take no such lock.
 * @module
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { normalizeSerialNumber } from '../shared/agent-proof.js';
import { p256Csr, p256CsrInfo, p256SpkiFromPkcs8 } from '../shared/spiffe/csr-template.js';

export type { KeyObject };
export type CryptoKey = webcrypto.CryptoKey;

/** A P-256 key pair (node:crypto). */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
/** OpenSSL's name of P-256 (KeyObject.asymmetricKeyDetails.namedCurve) */
const P256 = 'prime256v1';

export function generateKeyPair(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: P256 });
}

export function exportPkcs8(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));
}

/** Imports a P-256 PKCS#8 private key; throws on anything else. */
export function importPkcs8(der: Uint8Array): KeyObject {
  const key = createPrivateKey({ key: Buffer.from(der.buffer, der.byteOffset, der.byteLength), format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== P256) throw new TypeError('not an ECDSA P-256 private key');
  return key;
}

/** The agent's key as a non-extractable WebCrypto key, for jose (agent request proofs). */
export async function toSigningCryptoKey(key: KeyObject): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', exportPkcs8(key), EC_KEY, false, ['sign']);
}

/** True when `certDer`'s subject public key is the public half of `privateKey`. */
export function certificateMatchesKey(certDer: Uint8Array, privateKey: KeyObject): boolean {
  return matchingCertificateInfo(certDer, privateKey) !== undefined;
}

/** What the agent reads from a certificate. */
export interface CertificateInfo {
  /** ms since the epoch */
  notBefore: number;
  notAfter: number;
  /** the (first) URI SAN */
  spiffeId: string | undefined;
}

/** `CertificateInfo` and the serial, of an SVID the agent holds (revocation by serial). */
export interface SvidCertificateInfo extends CertificateInfo {
  /** lowercase hex without leading zeros (`normalizeSerialNumber`), as revocations name it */
  serialNumber: string;
}

/**
 * Validity and URI SAN of a DER certificate, read by node:crypto (OpenSSL). @peculiar/x509's parser took
 * ~1 ms and a few hundred objects per certificate, the larger part of issuing 1,000 SVIDs. Throws on a
 * certificate OpenSSL cannot read.
 */
export function certificateInfo(der: Uint8Array): CertificateInfo {
  return infoOf(new X509Certificate(der));
}

/** A public key as DER SubjectPublicKeyInfo. */
export function exportSpki(publicKey: KeyObject): Uint8Array {
  return new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
}

/**
 * `certificateInfo(der)` when the certificate's public key is the key `spki` encodes, else undefined (also
 * when unreadable). Lets a caller hold a generated key as bytes while its CSR is at the issuer: a KeyObject
 * holds an OpenSSL EVP_PKEY of a few KB outside the V8 heap until its wrapper is collected.
 */
export function certificateInfoForSpki(der: Uint8Array, spki: Uint8Array): CertificateInfo | undefined {
  return infoIfKeyMatches(der, spkiMatches(spki), infoOf);
}

/** `certificateInfoForSpki` with the serial (one parse), for an SVID the agent will hold. */
export function svidInfoForSpki(der: Uint8Array, spki: Uint8Array): SvidCertificateInfo | undefined {
  return infoIfKeyMatches(der, spkiMatches(spki), svidInfoOf);
}

/** `certificateInfo(der)` when the certificate's public key is the public half of `privateKey`, else undefined (also when unreadable). */
export function matchingCertificateInfo(der: Uint8Array, privateKey: KeyObject): CertificateInfo | undefined {
  return infoIfKeyMatches(der, (cert) => cert.checkPrivateKey(privateKey), infoOf);
}

/** `matchingCertificateInfo` with the serial (one parse), for an SVID the agent will hold. */
export function matchingSvidInfo(der: Uint8Array, privateKey: KeyObject): SvidCertificateInfo | undefined {
  return infoIfKeyMatches(der, (cert) => cert.checkPrivateKey(privateKey), svidInfoOf);
}

const spkiMatches = (spki: Uint8Array) => (cert: X509Certificate) => cert.publicKey.equals(createPublicKey({ key: Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength), format: 'der', type: 'spki' }));

/** `read(cert)` when `keyMatches(cert)`; undefined when it does not, or when parsing or the check throws. */
function infoIfKeyMatches<T>(der: Uint8Array, keyMatches: (cert: X509Certificate) => boolean, read: (cert: X509Certificate) => T): T | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
    if (!keyMatches(cert)) return undefined;
  } catch {
    return undefined;
  }
  return read(cert);
}

function infoOf(cert: X509Certificate): CertificateInfo {
  return { notBefore: opensslTime(cert.validFrom), notAfter: opensslTime(cert.validTo), spiffeId: uriSan(cert.subjectAltName) };
}

function svidInfoOf(cert: X509Certificate): SvidCertificateInfo {
  return { ...infoOf(cert), serialNumber: normalizeSerialNumber(cert.serialNumber) };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A time as node:crypto prints it (OpenSSL's ASN1_TIME_print, e.g. `Nov  3 21:35:00 2026 GMT`), in ms. */
function opensslTime(text: string): number {
  const m = /^([A-Z][a-z]{2}) ( \d|\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (\d{4}) GMT$/.exec(text);
  const month = m ? MONTHS.indexOf(m[1]!) : -1;
  if (!m || month < 0) throw new TypeError(`unexpected certificate time ${JSON.stringify(text)}`);
  return Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}

/**
 * The first URI SAN in node:crypto's `subjectAltName` text (`URI:spiffe://…, DNS:…`). Node prints a name
 * that holds a comma, quote or control character as a JSON string (`URI:"…"`); a SPIFFE ID never does.
 */
function uriSan(text: string | undefined): string | undefined {
  const uri = (text ?? '').split(', ').find((name) => name.startsWith('URI:'));
  if (uri === undefined) return undefined;
  const value = uri.slice('URI:'.length);
  return value.startsWith('"') ? (JSON.parse(value) as string) : value;
}

/**
 * A PKCS#10 CSR for `keys`, DER. The issuer decides the SVID's identity; `spiffeId`, when given, is put in a
 * URI SAN as SPIRE agents do, for the issuer to check. Encoded by the narrow template
 * (shared/spiffe/csr-template.ts), signed by node:crypto.
 */
export function createCsr(keys: KeyPair, spiffeId?: string): Uint8Array {
  return signedCsr(keys.privateKey, exportSpki(keys.publicKey), spiffeId);
}

/** A fresh workload key, as bytes, and its CSR. */
export interface NewKeyCsr {
  /** PKCS#8 DER of the private key (handed to the workload, kept in the cache file) */
  pkcs8: Uint8Array;
  /** DER SubjectPublicKeyInfo */
  spki: Uint8Array;
  csr: Uint8Array;
}

/**
 * A new P-256 key and its CSR (`createCsr`'s), with one key export: the SPKI is read from the PKCS#8
 * (`p256SpkiFromPkcs8`), since node:crypto's exports cost about a key generation each. The KeyObject is
 * dropped at once (see `svidInfoForSpki`).
 */
export function newKeyAndCsr(spiffeId?: string): NewKeyCsr {
  const { privateKey } = generateKeyPair();
  const pkcs8 = exportPkcs8(privateKey);
  const spki = p256SpkiFromPkcs8(pkcs8);
  return { pkcs8, spki, csr: signedCsr(privateKey, spki, spiffeId) };
}

function signedCsr(privateKey: KeyObject, spki: Uint8Array, spiffeId: string | undefined): Uint8Array {
  const info = p256CsrInfo(spki, spiffeId);
  // node:crypto's default ECDSA encoding is the DER ECDSA-Sig-Value a CSR carries
  return p256Csr(info, new Uint8Array(sign('sha256', info, privateKey)));
}
