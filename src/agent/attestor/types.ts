/**
 * What every agent-side node attestor is, apart from the table that picks one (node-attestor.ts): the
 * implementations import this module, node-attestor.ts imports them, so no import cycle runs between them.
 * @module
 */

export interface NodeAttestor {
  /** `attestationType` on the wire, e.g. `join_token` */
  readonly type: string;
  /** true when the credential works once only: after one successful attestation it cannot attest again */
  readonly singleUse: boolean;
  /** the attestor-specific payload (e.g. `{ token }`) */
  payload(): Promise<Record<string, unknown>>;
  /** safe to log: never the credential itself */
  describe(): Record<string, string>;
}

export type NodeAttestorType = 'join_token' | 'aws_iid' | 'gcp_iit' | 'azure_msi' | 'k8s_psat';
