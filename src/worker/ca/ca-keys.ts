/**
 * Key material of the CA's slots: a new key (and for X.509 its CA certificate, self-signed or under the
 * upstream CA), sealed for storage; and a stored slot's key, opened and imported once (the hot path uses it).
 * @module
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { calculateJwkThumbprint, type CryptoKey } from 'jose';
import type { KeyKind } from '../../shared/ca/key-slot.js';
import { createCaCertificate, validateCaCert } from '../../shared/spiffe/ca-cert.js';
import { signingParams, type KeyAlgorithmName } from '../../shared/spiffe/x509.js';
import type { CaConfig } from '../config.js';
import type { StoredSlot } from './ca-storage.js';
import { generateKey, importSigningKey, openPrivateKey, sealPrivateKey } from './key-crypto.js';
import type { UpstreamCa } from './upstream-ca.js';

/** A slot's key material, decrypted and imported once (hot path). */
export interface LoadedKey {
  privateKey: CryptoKey;
  cert?: X509Certificate;
}

export interface NewSlotOptions {
  config: Pick<CaConfig, 'trustDomain' | 'caSubject' | 'jwtKeyType'>;
  /** the key-encryption key the private key is sealed under */
  kek: CryptoKey;
  /** x509 only: signs the CA certificate when set */
  upstream: UpstreamCa | undefined;
  now: number;
  notAfter: number;
}

/** Generates a prepared slot's key (and for x509 its CA certificate), sealed; and the key, imported. */
export async function createSlotKey(kind: KeyKind, options: NewSlotOptions): Promise<{ slot: StoredSlot; key: LoadedKey }> {
  const { config, now, notAfter, upstream } = options;
  const generated = await generateKey(kind, config.jwtKeyType);
  const publicJwk = (await crypto.subtle.exportKey('jwk', generated.publicKey)) as unknown as Record<string, string>;
  const kid = await calculateJwkThumbprint(publicJwk as never, 'sha256');
  const privateKey = await importSigningKey(generated.pkcs8, generated.alg);
  let certDer: Uint8Array | undefined;
  let slotNotAfter = notAfter;
  if (kind === 'x509') {
    const params = { trustDomain: config.trustDomain, subject: config.caSubject, publicKeySpki: generated.spki, now, notAfter };
    certDer = upstream
      ? await createCaCertificate(params, { upstream: upstream.signer })
      : await createCaCertificate(params, { selfKey: privateKey, signAlgorithm: signingParams(generated.alg).signAlg });
    const valid = validateCaCert(certDer, { trustDomain: config.trustDomain, now });
    if (!valid.ok) throw new Error(valid.error.message);
    slotNotAfter = valid.value.notAfter; // capped at the upstream CA's notAfter
  }
  const sealed = await sealPrivateKey(options.kek, kind, kid, generated.pkcs8);
  generated.pkcs8.fill(0);
  const slot: StoredSlot = {
    kid,
    kind,
    status: 'prepared',
    issuedAt: now,
    notAfter: slotNotAfter,
    alg: kind === 'x509' ? generated.alg : config.jwtKeyType,
    certDer,
    publicJwk: kind === 'x509' ? undefined : publicParams(publicJwk),
    keyIv: sealed.iv,
    keyCiphertext: sealed.ciphertext,
  };
  return { slot, key: { privateKey, cert: certDer ? new X509Certificate(certDer.slice()) : undefined } };
}

/** Opens and imports a stored slot's private key (and parses its CA certificate). */
export async function openSlotKey(slot: StoredSlot, kek: CryptoKey): Promise<LoadedKey> {
  const alg: KeyAlgorithmName = slot.kind === 'x509' ? (slot.alg as KeyAlgorithmName) : slot.alg === 'RS256' ? 'RSA' : 'EC P-256';
  const privateKey = await openPrivateKey(kek, slot.kind, slot.kid, alg, { iv: slot.keyIv, ciphertext: slot.keyCiphertext });
  return { privateKey, cert: slot.certDer ? new X509Certificate(slot.certDer.slice()) : undefined };
}

function publicParams(jwk: Record<string, string>): Record<string, string> {
  return jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! } : { kty: 'RSA', n: jwk.n!, e: jwk.e! };
}
