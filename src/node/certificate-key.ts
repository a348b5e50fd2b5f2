/**
 * The subject public key of a DER certificate read by node:crypto (OpenSSL), as the shared bundle parsers
 * take it (`CertificateKeyReader`, src/shared/spiffe/key-algorithm.ts): the agent parses its trust bundle
 * at every start and sync, and @peculiar/x509 with its ASN.1 schemas would cost ~35 ms of a restart and
 * ~2.7 MB of heap (docs/performance.md, start-up). Which algorithms are accepted stays the shared rule
 * (`classifyKeyAlgorithm`); this only names the key the way WebCrypto does.
 * @module
 */
import { X509Certificate } from 'node:crypto';
import type { CertificateKey, KeyAlgorithmInfo } from '../shared/spiffe/key-algorithm.js';

/** OpenSSL's curve names → WebCrypto's, so that a refusal names them as the issuer's reader does (any other keeps OpenSSL's name) */
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
/** node:crypto's key types → WebCrypto's algorithm names, likewise */
const TYPES: Record<string, string> = { ed25519: 'Ed25519', ed448: 'Ed448', x25519: 'X25519', x448: 'X448', 'rsa-pss': 'RSA-PSS', dsa: 'DSA', dh: 'DH' };

/** A DER certificate's key; throws when OpenSSL cannot read `der` as a certificate. */
export function certificateKey(der: Uint8Array): CertificateKey {
  const key = new X509Certificate(der).publicKey;
  const spki = new Uint8Array(key.export({ type: 'spki', format: 'der' }));
  return { spki, algorithm: algorithmOf(key.asymmetricKeyType, key.asymmetricKeyDetails) };
}

function algorithmOf(type: string | undefined, details: { namedCurve?: string; modulusLength?: number } | undefined): KeyAlgorithmInfo {
  // rsaEncryption SPKIs are what @peculiar/x509 names RSASSA-PKCS1-v1_5; RSA-PSS keys (type rsa-pss) are refused as before
  if (type === 'ec') return { name: 'ECDSA', namedCurve: CURVES[details?.namedCurve ?? ''] ?? details?.namedCurve };
  if (type === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', modulusLength: details?.modulusLength };
  return { name: TYPES[type ?? ''] ?? type ?? 'unknown' };
}
