/**
 * What every agent-side node attestor is, apart from the table that picks one (node-attestor.ts): the
 * implementations import this module, node-attestor.ts imports them, so no import cycle runs between them.
 * @module
 */

import type { AttestChallengeResponse } from '../../shared/agent-api.js';

/** What an attestation attempt offers the attestor: the agent SVID key's CSR, and the issuer's challenge. */
export interface NodeAttestationAttempt {
  /** SubjectPublicKeyInfo DER of the key the agent SVID will be for */
  csrPublicKeySpki: Uint8Array;
  /** asks the issuer for a fresh single-use challenge (`POST /agent/v1/attest/challenge`) */
  challenge(): Promise<AttestChallengeResponse>;
}

export interface NodeAttestor {
  /** `attestationType` on the wire, e.g. `join_token` */
  readonly type: string;
  /** true when the credential works once only: after one successful attestation it cannot attest again */
  readonly singleUse: boolean;
  /** the attestor-specific payload (e.g. `{ token }`); key-possession attestors (x509pop) use `attempt` */
  payload(attempt?: NodeAttestationAttempt): Promise<Record<string, unknown>>;
  /** safe to log: never the credential itself */
  describe(): Record<string, string>;
}

export type NodeAttestorType = 'join_token' | 'aws_iid' | 'gcp_iit' | 'azure_msi' | 'k8s_psat' | 'x509pop';
