/**
 * PKCS#10 certificate signing requests from agents and workloads. A CSR proves possession of the private
 * key (its signature) and carries the public key; nothing else in it is used (SPIRE ignores the subject and
 * extensions too: the SPIFFE ID and DNS names come from registration entries).
 * @module
 */
import 'reflect-metadata';
import { Pkcs10CertificateRequest } from '@peculiar/x509';
import { WispError } from '../errors.js';
import { classifyKeyAlgorithm, type KeyAlgorithmInfo, type KeyAlgorithmName } from './x509.js';

/** Largest CSR accepted, DER bytes. An RSA-4096 CSR is about 1.2 KiB. */
export const MAX_CSR_BYTES = 8 * 1024;

/** What a verified CSR yields: the subject public key, nothing else. */
export interface ParsedCsr {
  /** DER SubjectPublicKeyInfo */
  publicKeySpki: Uint8Array;
  keyAlgorithm: KeyAlgorithmName;
}

function invalid(message: string, cause?: unknown): WispError {
  return new WispError('ERR_CSR_INVALID', message, cause === undefined ? undefined : { cause });
}

/**
 * Parses a DER PKCS#10 CSR, verifies its self-signature (proof of possession) and checks the key type
 * (EC P-256 / P-384, or RSA ≥ 2048 bits). Throws WispError ERR_CSR_INVALID.
 * @example const { publicKeySpki } = await parseCsr(der);
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  if (!(der instanceof Uint8Array)) throw new TypeError('parseCsr expects DER bytes');
  if (der.byteLength === 0) throw invalid('CSR is empty');
  if (der.byteLength > MAX_CSR_BYTES) throw invalid(`CSR is larger than ${MAX_CSR_BYTES} bytes`);
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(der.slice());
  } catch (e) {
    throw invalid('CSR is not a DER PKCS#10 certification request', e);
  }
  let algorithm: KeyAlgorithmInfo;
  let publicKeySpki: Uint8Array;
  try {
    algorithm = csr.publicKey.algorithm as KeyAlgorithmInfo;
    publicKeySpki = new Uint8Array(csr.publicKey.rawData);
  } catch (e) {
    throw invalid('CSR public key cannot be read', e);
  }
  const keyAlgorithm = classifyKeyAlgorithm(algorithm);
  if (keyAlgorithm !== 'EC P-256' && keyAlgorithm !== 'EC P-384' && keyAlgorithm !== 'RSA') throw invalid(`CSR ${keyAlgorithm}`);
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (e) {
    throw invalid('CSR signature cannot be verified', e);
  }
  if (!verified) throw invalid('CSR signature does not verify with its public key (no proof of possession)');
  return { publicKeySpki, keyAlgorithm };
}
