/**
 * Small X.509 helpers shared by the SVID, CSR, CA and bundle modules: parsing a DER certificate without
 * throwing anything but WispError, and the key algorithms Wisp accepts.
 * @module
 */
import 'reflect-metadata';
import {
  AuthorityKeyIdentifierExtension,
  type Extension,
  type Name,
  PublicKey,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import { WispError, type WispErrorCode } from '../errors.js';

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

