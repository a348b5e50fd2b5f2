/**
 * The optional upstream CA (UPSTREAM_CA_CERT_CHAIN + UPSTREAM_CA_KEY): when set, the trust domain's CA
 * certificate is an intermediate signed by it, X509-SVID chains carry that intermediate (and any upstream
 * intermediates), and the bundle holds the upstream root (the last certificate of the chain).
 * @module
 */
import 'reflect-metadata';
import { WispError } from '../../shared/errors.js';
import { validateSigningCert } from '../../shared/spiffe/ca-cert.js';
import { certificatesFromPem, derFromPem } from '../../shared/encoding/pem.js';
import { classifyKeyAlgorithm, parseCertificate, signingParams, type KeyAlgorithmInfo, type SigningCa } from '../../shared/spiffe/x509.js';
import { importSigningKey } from './key-crypto.js';

export interface UpstreamCa {
  /** the upstream certificate that signs our intermediate, with its key */
  signer: SigningCa;
  /** upstream certificates between our intermediate and the root (excluded), DER */
  intermediates: Uint8Array[];
  /** the upstream root: the trust anchor published in the bundle, DER */
  root: Uint8Array;
}

/** Parses and imports the upstream CA; throws WispError ERR_CONFIG_INVALID naming the setting. */
export async function loadUpstreamCa(options: { certChainPem: string; keyPem: string }): Promise<UpstreamCa> {
  const chain = certificatesFromPem(options.certChainPem, 'UPSTREAM_CA_CERT_CHAIN');
  const cert = parseCertificate(chain[0]!, 'ERR_CONFIG_INVALID', 'UPSTREAM_CA_CERT_CHAIN first certificate');
  const problem = validateSigningCert(cert);
  if (problem) throw new WispError('ERR_CONFIG_INVALID', `UPSTREAM_CA_CERT_CHAIN: first certificate cannot sign: ${problem}`);
  const alg = classifyKeyAlgorithm(cert.publicKey.algorithm as KeyAlgorithmInfo);
  if (alg !== 'EC P-256' && alg !== 'EC P-384' && alg !== 'RSA') throw new WispError('ERR_CONFIG_INVALID', `UPSTREAM_CA_CERT_CHAIN: ${alg}`);
  let privateKey;
  try {
    privateKey = await importSigningKey(derFromPem(options.keyPem, 'PRIVATE KEY', 'UPSTREAM_CA_KEY'), alg);
  } catch (e) {
    if (e instanceof WispError) throw e;
    throw new WispError('ERR_CONFIG_INVALID', 'UPSTREAM_CA_KEY: not a PKCS#8 key matching the first certificate of UPSTREAM_CA_CERT_CHAIN', { cause: e });
  }
  return { signer: { cert, privateKey, signAlgorithm: signingParams(alg).signAlg }, intermediates: chain.slice(0, -1), root: chain[chain.length - 1]! };
}
