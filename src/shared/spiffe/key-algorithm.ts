/**
 * The public key algorithms Wisp accepts, and a public JWK from a certificate's key, without an X.509 parser:
 * the caller says what the key is (`CertificateKey`), read by @peculiar/x509 on the issuer
 * (`certificateKeyOf` in x509.ts) or by node:crypto on the agent (src/node/certificate-key.ts), which never
 * loads @peculiar/x509 to serve (docs/performance.md, start-up).
 * @module
 */
import { WispError, type WispErrorCode } from '../errors.js';

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

/** A certificate's subject public key: its SubjectPublicKeyInfo DER and its algorithm. */
export interface CertificateKey {
  spki: Uint8Array;
  algorithm: KeyAlgorithmInfo;
}

/** Reads the subject public key of a DER certificate; throws when `der` is not a certificate. */
export type CertificateKeyReader = (der: Uint8Array) => CertificateKey;

/** `read(der)`; a `der` that is no certificate becomes WispError `code` (as `parseCertificate` says it). */
export function readCertificateKey(read: CertificateKeyReader, der: Uint8Array, code: WispErrorCode, what: string): CertificateKey {
  try {
    return read(der);
  } catch (e) {
    throw new WispError(code, `${what} is not a DER X.509 certificate`, { cause: e });
  }
}

/** The public JWK members (kty, crv, x, y or kty, n, e) of a key; TypeError when Wisp does not accept its algorithm. */
export async function publicJwkOf(key: CertificateKey): Promise<{ kty: string; [member: string]: string }> {
  const kind = classifyKeyAlgorithm(key.algorithm);
  if (kind !== 'EC P-256' && kind !== 'EC P-384' && kind !== 'RSA') throw new TypeError(kind);
  const imported = await crypto.subtle.importKey('spki', key.spki.slice(), signingParams(kind).importAlg, true, ['verify']);
  const jwk = (await crypto.subtle.exportKey('jwk', imported)) as { kty?: string; crv?: string; x?: string; y?: string; n?: string; e?: string };
  return jwk.kty === 'EC'
    ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! }
    : { kty: 'RSA', n: jwk.n!, e: jwk.e! };
}
