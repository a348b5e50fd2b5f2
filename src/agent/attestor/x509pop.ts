/**
 * The x509pop node attestor (agent side, SPIRE's x509pop agent plugin): reads the device certificate chain
 * and its private key (PEM, read again for every attestation so a renewed certificate is picked up), asks
 * the issuer for a single-use challenge, and signs it together with the CSR's public key with the
 * certificate's key (the scheme: src/shared/attestation/x509pop.ts). Not single-use: it can attest again.
 * The private key never leaves this module: only the certificates and the signature are sent.
 * @module
 */
import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { toBase64 } from '../../shared/encoding/base64.js';
import { certificatesFromPem } from '../../shared/encoding/pem.js';
import { WispError } from '../../shared/errors.js';
import type { X509popAgentConfig } from '../config.js';
import type { NodeAttestor, NodeAttestorType } from './types.js';

/** `X509POP_TYPE` of shared/attestation/x509pop.ts (the type checks it), named here so that only an attestation loads that module */
const X509POP_TYPE = 'x509pop' satisfies NodeAttestorType & typeof import('../../shared/attestation/x509pop.js').X509POP_TYPE;

/**
 * The proof's code: @peculiar/x509 (with reflect-metadata, for tsyringe) and the shared scheme, loaded with
 * the first attestation, not at start (docs/performance.md, start-up).
 */
async function proofModules() {
  await import('reflect-metadata');
  const [{ X509Certificate }, { importX509popKey, signX509popProof }] = await Promise.all([import('@peculiar/x509'), import('../../shared/attestation/x509pop.js')]);
  return { X509Certificate, importX509popKey, signX509popProof };
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new WispError('ERR_CONFIG_INVALID', `x509pop: cannot read the ${what} at ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function certificates(pem: string, path: string): Uint8Array[] {
  try {
    return certificatesFromPem(pem, path);
  } catch (e) {
    throw new WispError('ERR_CONFIG_INVALID', `x509pop: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export function createX509popAttestor(config: X509popAgentConfig): NodeAttestor {
  return {
    type: X509POP_TYPE,
    singleUse: false,
    async payload(attempt) {
      if (!attempt) throw new WispError('ERR_INTERNAL', 'x509pop: needs the attestation attempt (CSR key and challenge)');
      const { X509Certificate, importX509popKey, signX509popProof } = await proofModules();
      const chain = certificates(await readPem(config.certificatePath, 'certificate'), config.certificatePath);
      if (config.intermediatesPath) chain.push(...certificates(await readPem(config.intermediatesPath, 'intermediates'), config.intermediatesPath));
      const leaf = new X509Certificate(chain[0]!.slice());
      let pkcs8: Uint8Array;
      try {
        // PKCS#1, SEC1 or PKCS#8 PEM, as SPIRE reads it; WebCrypto takes PKCS#8
        pkcs8 = new Uint8Array(createPrivateKey(await readPem(config.privateKeyPath, 'private key')).export({ type: 'pkcs8', format: 'der' }));
      } catch (e) {
        if (e instanceof WispError) throw e;
        throw new WispError('ERR_CONFIG_INVALID', `x509pop: ${config.privateKeyPath} holds no PEM private key`);
      }
      let key;
      try {
        key = await importX509popKey(pkcs8, leaf);
      } catch (e) {
        if (e instanceof WispError) throw new WispError('ERR_CONFIG_INVALID', e.message);
        throw new WispError('ERR_CONFIG_INVALID', `x509pop: the private key at ${config.privateKeyPath} is not of the certificate's key type`);
      }
      const { nonce } = await attempt.challenge();
      const signature = await signX509popProof(key, leaf, nonce, attempt.csrPublicKeySpki);
      return { certificates: chain.map((c) => toBase64(c)), nonce, signature };
    },
    describe: () => ({ attestor: X509POP_TYPE, certificate_path: config.certificatePath, ...(config.intermediatesPath ? { intermediates_path: config.intermediatesPath } : {}) }),
  };
}
