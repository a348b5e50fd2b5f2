/**
 * Key material of the CA object: generating CA and JWT keys, sealing private keys for storage (AES-256-GCM
 * under a key derived with HKDF-SHA256 from the KEY_ENCRYPTION_SECRET, the kid bound as associated data),
 * and importing them back as non-extractable CryptoKeys. Nothing here returns a private key in clear
 * outside the one `generate*` → `seal` step.
 * @module
 */
import type { CryptoKey } from 'jose';
import type { KeyKind } from '../../shared/ca/key-slot.js';
import type { JwtSigningAlgorithm } from '../../shared/spiffe/jwt-svid.js';
import { signingParams, type KeyAlgorithmName } from '../../shared/spiffe/x509.js';

/** HKDF salt; bump the suffix to re-key (with a storage migration). */
const KEK_SALT = 'wisp/ca-key-encryption/v1';
const AES_GCM_IV_BYTES = 12;
const RSA_JWT_MODULUS_BITS = 2048;

const utf8 = (s: string) => new TextEncoder().encode(s);

/** The key-encryption key for one trust domain (non-extractable). */
export async function deriveKeyEncryptionKey(secret: string, trustDomain: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', utf8(secret), 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: utf8(KEK_SALT), info: utf8(`trust-domain:${trustDomain}`) },
    ikm,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  ) as Promise<CryptoKey>;
}

const aad = (kind: KeyKind, kid: string) => utf8(`${kind}:${kid}`);

/** Encrypts a PKCS#8 private key for storage. */
export async function sealPrivateKey(kek: CryptoKey, kind: KeyKind, kid: string, pkcs8: Uint8Array): Promise<{ iv: Uint8Array; ciphertext: Uint8Array }> {
  const iv = crypto.getRandomValues(new Uint8Array(AES_GCM_IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: aad(kind, kid) }, kek, pkcs8);
  return { iv, ciphertext: new Uint8Array(ciphertext) };
}

/** Decrypts a stored private key and imports it non-extractable for signing. */
export async function openPrivateKey(kek: CryptoKey, kind: KeyKind, kid: string, alg: KeyAlgorithmName, sealed: { iv: Uint8Array; ciphertext: Uint8Array }): Promise<CryptoKey> {
  const pkcs8 = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: sealed.iv, additionalData: aad(kind, kid) }, kek, sealed.ciphertext);
  return importSigningKey(new Uint8Array(pkcs8), alg);
}

/** Imports a PKCS#8 private key non-extractable, for signing only. */
export async function importSigningKey(pkcs8: Uint8Array, alg: KeyAlgorithmName): Promise<CryptoKey> {
  return crypto.subtle.importKey('pkcs8', pkcs8, signingParams(alg).importAlg, false, ['sign']) as Promise<CryptoKey>;
}

export interface GeneratedKey {
  alg: KeyAlgorithmName;
  pkcs8: Uint8Array;
  spki: Uint8Array;
  publicKey: CryptoKey;
}

/** X.509 CA keys are ECDSA P-256; JWT and WIT keys follow JWT_KEY_TYPE (ES256 → P-256, RS256 → RSA-2048). */
export async function generateKey(kind: KeyKind, jwtAlg: JwtSigningAlgorithm): Promise<GeneratedKey> {
  const alg: KeyAlgorithmName = kind !== 'x509' && jwtAlg === 'RS256' ? 'RSA' : 'EC P-256';
  const params =
    alg === 'RSA'
      ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: RSA_JWT_MODULUS_BITS, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
      : { name: 'ECDSA', namedCurve: 'P-256' };
  const pair = (await crypto.subtle.generateKey(params, true, ['sign', 'verify'])) as unknown as { publicKey: CryptoKey; privateKey: CryptoKey };
  const pkcs8 = new Uint8Array((await crypto.subtle.exportKey('pkcs8', pair.privateKey)) as ArrayBuffer);
  const spki = new Uint8Array((await crypto.subtle.exportKey('spki', pair.publicKey)) as ArrayBuffer);
  return { alg, pkcs8, spki, publicKey: pair.publicKey };
}
