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
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import { WispError, type WispErrorCode } from '../errors.js';
import type { CertificateKey, KeyAlgorithmInfo, SignAlgorithm } from './key-algorithm.js';

/** Parses a DER certificate; garbage becomes WispError `code`. */
export function parseCertificate(der: Uint8Array, code: WispErrorCode, what = 'certificate'): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch (e) {
    throw new WispError(code, `${what} is not a DER X.509 certificate`, { cause: e });
  }
}

// the key algorithms live in key-algorithm.ts (free of @peculiar/x509, for the agent); re-exported for the issuer's modules
export { classifyKeyAlgorithm, MIN_RSA_MODULUS_BITS, signingParams, type ImportAlgorithm, type KeyAlgorithmInfo, type KeyAlgorithmName, type SignAlgorithm } from './key-algorithm.js';

/** The subject public key of a DER certificate, read by @peculiar/x509 (the issuer's `CertificateKeyReader`); throws on garbage. */
export function certificateKeyOf(der: Uint8Array): CertificateKey {
  const { publicKey } = new X509Certificate(der);
  return { spki: new Uint8Array(publicKey.rawData), algorithm: publicKey.algorithm as KeyAlgorithmInfo };
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

