/**
 * Key pairs and CSRs the agent makes: ECDSA P-256 with WebCrypto, CSRs with @peculiar/x509. Workload keys
 * are generated here, on the node, and only ever handed to the workload (as PKCS#8); the issuer sees CSRs.
 * @module
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

const subtle = webcrypto.subtle;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** Extractable, so it can be persisted (agent key) or handed to the workload (SVID keys). */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

export async function exportPkcs8(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await subtle.exportKey('pkcs8', key));
}

/** Imports a P-256 PKCS#8 private key (extractable: the public half is derived from it on demand). */
export async function importPkcs8(der: Uint8Array): Promise<CryptoKey> {
  return subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']);
}

/** The public point of a private key, as JWK x/y, to compare with a certificate's key. */
async function publicPoint(key: CryptoKey): Promise<string> {
  const jwk = await subtle.exportKey('jwk', key);
  return `${jwk.x}.${jwk.y}`;
}

/** True when `certDer`'s subject public key is the public half of `privateKey`. */
export async function certificateMatchesKey(certDer: Uint8Array, privateKey: CryptoKey): Promise<boolean> {
  try {
    const cert = new x509.X509Certificate(certDer);
    const pub = await cert.publicKey.export(EC_KEY, ['verify']);
    return (await publicPoint(pub as unknown as CryptoKey)) === (await publicPoint(privateKey));
  } catch {
    return false;
  }
}

/**
 * A PKCS#10 CSR for `keys`, DER. The issuer decides the SVID's identity; `spiffeId`, when given, is put in a
 * URI SAN as SPIRE agents do, for the issuer to check.
 */
export async function createCsr(keys: CryptoKeyPair, spiffeId?: string): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as unknown as Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]['keys'],
    signingAlgorithm: SIGNING,
    ...(spiffeId ? { extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])] } : {}),
  });
  return new Uint8Array(csr.rawData);
}

/** notBefore/notAfter (ms) and URI SAN of a DER certificate. */
export function certificateInfo(der: Uint8Array): { notBefore: number; notAfter: number; spiffeId: string | undefined } {
  const cert = new x509.X509Certificate(der);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((n) => n.type === 'url')?.value;
  return { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), spiffeId: uri };
}

export function toBase64(der: Uint8Array): string {
  return Buffer.from(der).toString('base64');
}

export function fromBase64(b64: string): Uint8Array {
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

/** PEM armour of DER bytes. */
export function toPem(label: 'CERTIFICATE' | 'PRIVATE KEY', der: Uint8Array): string {
  const b64 = toBase64(der).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** All blocks of `label` in a PEM text, DER each. */
export function fromPem(label: 'CERTIFICATE' | 'PRIVATE KEY', pem: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...pem.matchAll(re)].map((m) => fromBase64((m[1] ?? '').replace(/\s+/g, '')));
}
