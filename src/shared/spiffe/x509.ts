/**
 * Small X.509 helpers shared by the SVID, CSR, CA and bundle modules: base64 / PEM conversion, parsing a
 * DER certificate without throwing anything but WispError, and the key algorithms Wisp accepts.
 * @module
 */
import 'reflect-metadata';
import {
  AuthorityKeyIdentifierExtension,
  type Extension,
  type Name,
  PemConverter,
  PublicKey,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import { WispError, type WispErrorCode } from '../errors.js';

const BASE64_CODES = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const BASE64URL_CODES = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
const ASCII = new TextDecoder();

/**
 * Standard base64 (with padding) of bytes. A table encoder into ASCII bytes: on the issuance path it runs
 * for every certificate, where building a binary string for btoa cost ~20 µs per SVID (bench/).
 */
export function toBase64(bytes: Uint8Array | ArrayBuffer): string {
  return encodeBase64(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), BASE64_CODES, true);
}

/** base64url without padding (RFC 4648 §5, as JWS uses it). */
export function toBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes, BASE64URL_CODES, false);
}

function encodeBase64(v: Uint8Array, c: Uint8Array, pad: boolean): string {
  const out = new Uint8Array(Math.ceil(v.length / 3) * 4);
  let i = 0;
  let o = 0;
  for (; i + 2 < v.length; i += 3) {
    const n = (v[i]! << 16) | (v[i + 1]! << 8) | v[i + 2]!;
    out[o++] = c[n >> 18]!;
    out[o++] = c[(n >> 12) & 63]!;
    out[o++] = c[(n >> 6) & 63]!;
    out[o++] = c[n & 63]!;
  }
  if (i < v.length) {
    const n = (v[i]! << 16) | ((v[i + 1] ?? 0) << 8);
    out[o++] = c[n >> 18]!;
    out[o++] = c[(n >> 12) & 63]!;
    if (i + 1 < v.length) out[o++] = c[(n >> 6) & 63]!;
    else if (pad) out[o++] = 61;
    if (pad) out[o++] = 61;
  }
  return ASCII.decode(out.subarray(0, o));
}

/** base64 character code → 6-bit value, 255 for anything else (standard alphabet). */
const BASE64_VALUES = (() => {
  const t = new Uint8Array(128).fill(255);
  for (let i = 0; i < BASE64_CODES.length; i++) t[BASE64_CODES[i]!] = i;
  return t;
})();

/**
 * Decodes standard base64; throws WispError `code` on anything else. Accepts exactly what the former
 * `^[A-Za-z0-9+/]*={0,2}$`-plus-length check followed by atob accepted (a table decoder: on the issuance
 * path it runs for every CSR, where atob and a binary string cost ~3% of the request; tested against atob).
 */
export function fromBase64(input: string, code: WispErrorCode = 'ERR_BAD_REQUEST', what = 'value'): Uint8Array {
  const length = input.length;
  if (length % 4 !== 0) throw new WispError(code, `${what} is not base64`);
  let pad = 0;
  if (length > 0 && input.charCodeAt(length - 1) === 61) pad = length > 1 && input.charCodeAt(length - 2) === 61 ? 2 : 1;
  const chars = length - pad;
  const out = new Uint8Array((length / 4) * 3 - pad);
  let o = 0;
  let i = 0;
  for (; i + 4 <= chars; i += 4) {
    const a = input.charCodeAt(i);
    const b = input.charCodeAt(i + 1);
    const c = input.charCodeAt(i + 2);
    const d = input.charCodeAt(i + 3);
    const va = a < 128 ? BASE64_VALUES[a]! : 255;
    const vb = b < 128 ? BASE64_VALUES[b]! : 255;
    const vc = c < 128 ? BASE64_VALUES[c]! : 255;
    const vd = d < 128 ? BASE64_VALUES[d]! : 255;
    if ((va | vb | vc | vd) > 63) throw new WispError(code, `${what} is not base64`);
    const n = (va << 18) | (vb << 12) | (vc << 6) | vd;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (pad > 0) {
    // the last group: 4 - pad characters (atob ignores the unused low bits, as before)
    let n = 0;
    for (let k = 0; k < 4 - pad; k++) {
      const ch = input.charCodeAt(i + k);
      const v = ch < 128 ? BASE64_VALUES[ch]! : 255;
      if (v > 63) throw new WispError(code, `${what} is not base64`);
      n |= v << (18 - 6 * k);
    }
    out[o] = n >> 16;
    if (pad === 1) out[o + 1] = (n >> 8) & 0xff;
  }
  return out;
}

/** The DER blocks of a PEM document of CERTIFICATE blocks, in order. Throws WispError ERR_CONFIG_INVALID. */
export function certificatesFromPem(pem: string, what = 'certificate chain'): Uint8Array[] {
  const blocks = PemConverter.decodeWithHeaders(pem);
  if (blocks.length === 0) throw new WispError('ERR_CONFIG_INVALID', `${what}: no PEM CERTIFICATE block`);
  return blocks.map((b) => {
    if (b.type !== 'CERTIFICATE') throw new WispError('ERR_CONFIG_INVALID', `${what}: unexpected PEM block ${b.type}`);
    return new Uint8Array(b.rawData);
  });
}

/** The DER of a single PEM block of the given type (e.g. `PRIVATE KEY`). Throws WispError ERR_CONFIG_INVALID. */
export function derFromPem(pem: string, type: string, what: string): Uint8Array {
  const blocks = PemConverter.decodeWithHeaders(pem).filter((b) => b.type === type);
  if (blocks.length !== 1) throw new WispError('ERR_CONFIG_INVALID', `${what}: expected exactly one PEM ${type} block`);
  return new Uint8Array(blocks[0]!.rawData);
}

/** Parses a DER certificate; garbage becomes WispError `code`. */
export function parseCertificate(der: Uint8Array, code: WispErrorCode, what = 'certificate'): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new WispError(code, `${what} is not a DER X.509 certificate`, { cause: e });
  }
}

/** A key algorithm as WebCrypto / @peculiar/x509 describe it (the DOM `Algorithm` type is not in our libs). */
export interface KeyAlgorithmInfo {
  name: string;
  namedCurve?: string;
  modulusLength?: number;
}

/** WebCrypto import parameters for the keys Wisp uses. */
export type ImportAlgorithm = { name: 'ECDSA'; namedCurve: 'P-256' | 'P-384' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };
/** WebCrypto signature parameters for the keys Wisp uses. */
export type SignAlgorithm = { name: 'ECDSA'; hash: 'SHA-256' | 'SHA-384' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };

/** The public key algorithms Wisp issues for and signs with. */
export type KeyAlgorithmName = 'EC P-256' | 'EC P-384' | 'RSA';

/** Smallest RSA modulus accepted anywhere (subject keys and upstream keys). */
export const MIN_RSA_MODULUS_BITS = 2048;

/**
 * Classifies a WebCrypto algorithm of a public key (as @peculiar/x509's `PublicKey.algorithm` reports it):
 * EC P-256 / P-384 or RSA PKCS#1 v1.5 with a modulus of at least 2048 bits; a reason string otherwise.
 */
export function classifyKeyAlgorithm(algorithm: KeyAlgorithmInfo): KeyAlgorithmName | string {
  const a = algorithm;
  if (a.name === 'ECDSA' || a.name === 'ECDH') {
    if (a.namedCurve === 'P-256') return 'EC P-256';
    if (a.namedCurve === 'P-384') return 'EC P-384';
    return `unsupported EC curve ${a.namedCurve ?? '(unknown)'}; use P-256 or P-384`;
  }
  if (a.name === 'RSASSA-PKCS1-v1_5' || a.name === 'RSA-OAEP') {
    if ((a.modulusLength ?? 0) < MIN_RSA_MODULUS_BITS) return `RSA key of ${a.modulusLength ?? 0} bits is too small; at least ${MIN_RSA_MODULUS_BITS} bits required`;
    return 'RSA';
  }
  return `unsupported public key algorithm ${a.name}; use EC P-256, EC P-384 or RSA ≥ ${MIN_RSA_MODULUS_BITS} bits`;
}

/** WebCrypto parameters to import or sign with a key of the given kind (SHA-256 for P-256/RSA, SHA-384 for P-384). */
export function signingParams(kind: KeyAlgorithmName): { importAlg: ImportAlgorithm; signAlg: SignAlgorithm } {
  switch (kind) {
    case 'EC P-256':
      return { importAlg: { name: 'ECDSA', namedCurve: 'P-256' }, signAlg: { name: 'ECDSA', hash: 'SHA-256' } };
    case 'EC P-384':
      return { importAlg: { name: 'ECDSA', namedCurve: 'P-384' }, signAlg: { name: 'ECDSA', hash: 'SHA-384' } };
    case 'RSA':
      return { importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, signAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } };
  }
}

/** The public JWK members (kty, crv, x, y or kty, n, e) of a DER SubjectPublicKeyInfo. */
export async function publicJwkFromSpki(spki: Uint8Array): Promise<{ kty: string; [member: string]: string }> {
  const kind = classifyKeyAlgorithm(new PublicKey(spki.slice()).algorithm as KeyAlgorithmInfo);
  if (kind !== 'EC P-256' && kind !== 'EC P-384' && kind !== 'RSA') throw new TypeError(kind);
  const key = await crypto.subtle.importKey('spki', spki.slice(), signingParams(kind).importAlg, true, ['verify']);
  const jwk = (await crypto.subtle.exportKey('jwk', key)) as { kty?: string; crv?: string; x?: string; y?: string; n?: string; e?: string };
  return jwk.kty === 'EC'
    ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! }
    : { kty: 'RSA', n: jwk.n!, e: jwk.e! };
}

/** The signing side of an issuance: the CA certificate and its private key (kept inside the CA object). */
export interface SigningCa {
  cert: X509Certificate;
  privateKey: CryptoKey;
  signAlgorithm: SignAlgorithm;
}

/** Everything a certificate is made of, before the signature. */
export interface CertificateTemplate {
  serialNumberHex: string;
  subject: Name;
  issuer: Name;
  notBefore: Date;
  notAfter: Date;
  publicKeySpki: Uint8Array;
  extensions: Extension[];
}

/** Serial numbers are 16 random bytes, positive (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export const SERIAL_NUMBER_BYTES = 16;

/** A positive serial of SERIAL_NUMBER_BYTES bytes (high bit clear, first byte non-zero, so DER keeps 16 octets). */
export function randomSerialNumber(): Uint8Array {
  const b = crypto.getRandomValues(new Uint8Array(SERIAL_NUMBER_BYTES));
  b[0] = b[0]! & 0x7f || 0x01;
  return b;
}

const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lowercase hex of bytes. */
export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX_BYTES[b[i]!]!;
  return s;
}

/** AKID of certificates issued by `issuer`: its SKID when present, else computed from its public key. */
export async function authorityKeyIdentifierOf(issuer: X509Certificate): Promise<AuthorityKeyIdentifierExtension> {
  const skid = issuer.getExtension(SubjectKeyIdentifierExtension);
  return skid ? new AuthorityKeyIdentifierExtension(skid.keyId, false) : AuthorityKeyIdentifierExtension.create(issuer.publicKey, false);
}

/** Signs a template; returns the DER certificate. */
export async function signCertificate(t: CertificateTemplate, privateKey: CryptoKey, signAlgorithm: SignAlgorithm): Promise<Uint8Array> {
  const cert = await X509CertificateGenerator.create({
    serialNumber: t.serialNumberHex,
    subject: t.subject,
    issuer: t.issuer,
    notBefore: t.notBefore,
    notAfter: t.notAfter,
    publicKey: t.publicKeySpki.slice(),
    signingKey: privateKey,
    signingAlgorithm: signAlgorithm,
    extensions: t.extensions,
  });
  return new Uint8Array(cert.rawData);
}

