/**
 * The x509pop node attestor (issuer side, SPIRE's x509pop in external_pki mode): the agent first asks for a
 * challenge (a single-use nonce, `challenge`), then attests with `{ certificates, nonce, signature }`: its
 * device certificate chain and a signature by the certificate's key over the nonce and its CSR's public key
 * (src/shared/attestation/x509pop.ts). The nonce is consumed before anything is verified, so a proof is
 * good for one attempt. Re-attestation is allowed (SPIRE: CanReattest): each attestation proves possession anew.
 * @module
 */
import { toBase64Url } from '../../shared/encoding/base64.js';
import {
  parseX509popPayload,
  verifyX509popProof,
  X509POP_NONCE_BYTES,
  X509POP_NONCE_TTL_SECONDS,
  X509POP_TYPE,
  x509popAgentId,
  x509popRefused,
  x509popSelectors,
} from '../../shared/attestation/x509pop.js';
import type { X509popConfig } from './cloud-config.js';
import type { NodeAttestor } from './types.js';

/** Where issued nonces wait to be consumed once (D1: src/worker/db/x509pop-nonces.ts). Times in seconds. */
export interface X509popNonceStore {
  issue(nonce: string, expiresAt: number, now: number): Promise<void>;
  /** true exactly once for an issued, unexpired nonce */
  consume(nonce: string, now: number): Promise<boolean>;
}

export function createX509popAttestor(config: X509popConfig, nonces: X509popNonceStore): NodeAttestor {
  return {
    type: X509POP_TYPE,
    async challenge(ctx) {
      const nonce = toBase64Url(crypto.getRandomValues(new Uint8Array(X509POP_NONCE_BYTES)));
      const expiresAt = ctx.now + X509POP_NONCE_TTL_SECONDS;
      await nonces.issue(nonce, expiresAt, ctx.now);
      return { nonce, expiresAt };
    },
    async attest(payload, ctx) {
      const proof = parseX509popPayload(payload, config.maxIntermediates);
      if (!(await nonces.consume(proof.nonce, ctx.now))) {
        throw x509popRefused('nonce is unknown, expired or already used; get a fresh one from POST /agent/v1/attest/challenge');
      }
      const above = await verifyX509popProof(proof, { roots: config.caBundles, now: ctx.now * 1000, csrPublicKeySpki: ctx.csrPublicKeySpki, maxRsaKeyBits: config.maxRsaKeySize });
      const leaf = proof.chain[0]!;
      return {
        agentId: await x509popAgentId(ctx.trustDomain, config.agentPathTemplate, leaf),
        selectors: await x509popSelectors(ctx.trustDomain, leaf, above),
        allowReattestation: true,
      };
    },
  };
}
