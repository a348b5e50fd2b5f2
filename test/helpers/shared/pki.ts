// Key and certificate fixtures for the pure SPIFFE tests (both runtimes): WebCrypto + @peculiar/x509 only.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import type { CryptoKey } from 'jose';

export type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

export type KeyKind = 'P-256' | 'P-384' | 'RSA-2048' | 'RSA-1024' | 'Ed25519';

export async function generateKeys(kind: KeyKind): Promise<KeyPair> {
  switch (kind) {
    case 'P-256':
    case 'P-384':
      return (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: kind }, true, ['sign', 'verify'])) as KeyPair;
    case 'RSA-2048':
    case 'RSA-1024':
      return (await crypto.subtle.generateKey(
        { name: 'RSASSA-PKCS1-v1_5', modulusLength: kind === 'RSA-2048' ? 2048 : 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
        true,
        ['sign', 'verify'],
      )) as KeyPair;
    case 'Ed25519':
      return (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']) as unknown) as KeyPair;
  }
}

export function signingAlgorithmOf(kind: KeyKind): { name: string; hash?: string } {
  if (kind === 'P-384') return { name: 'ECDSA', hash: 'SHA-384' };
  if (kind === 'P-256') return { name: 'ECDSA', hash: 'SHA-256' };
  if (kind === 'Ed25519') return { name: 'Ed25519' };
  return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
}

export async function makeCsr(kind: KeyKind, keys?: KeyPair): Promise<Uint8Array> {
  const k = keys ?? (await generateKeys(kind));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=ignored', keys: k, signingAlgorithm: signingAlgorithmOf(kind) });
  return new Uint8Array(csr.rawData);
}

export async function spkiOf(keys: KeyPair): Promise<Uint8Array> {
  return new Uint8Array((await crypto.subtle.exportKey('spki', keys.publicKey)) as ArrayBuffer);
}

export const bytes = (b: ArrayBuffer | Uint8Array) => (b instanceof Uint8Array ? b : new Uint8Array(b));
