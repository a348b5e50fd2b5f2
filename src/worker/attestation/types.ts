/**
 * What a node attestor is (the registry of them is node-attestor.ts; each attestor module imports only this).
 * @module
 */
import type { Selector } from '../../shared/registry/selectors.js';
import type { SpiffeId, TrustDomain } from '../../shared/spiffe/id.js';

export interface NodeAttestationContext {
  trustDomain: TrustDomain;
  /** seconds since the epoch */
  now: number;
  /** the SubjectPublicKeyInfo DER of the attest request's CSR (the key the agent SVID is for) */
  csrPublicKeySpki: Uint8Array;
}

export interface NodeAttestationResult {
  /** `spiffe://<td>/spire/agent/...` */
  agentId: SpiffeId;
  /** node selectors: matched against node-alias entries (SPIRE) */
  selectors: Selector[];
  /** whether an agent already attested under this ID may attest again (SPIRE: TOFU attestors say no) */
  allowReattestation: boolean;
}

export interface NodeAttestor {
  /** the `attestationType` of AttestRequest, e.g. `join_token` */
  readonly type: string;
  /** Verifies the payload; throws WispError (one code, one message per failure kind) when it does not. */
  attest(payload: Record<string, unknown>, ctx: NodeAttestationContext): Promise<NodeAttestationResult>;
  /**
   * Attestors that prove possession of a key (x509pop) hand out a fresh challenge first
   * (`POST /agent/v1/attest/challenge`); the others have none.
   */
  challenge?(ctx: Omit<NodeAttestationContext, 'csrPublicKeySpki'>): Promise<Record<string, unknown>>;
}
