/**
 * Node attestors on the agent side: what the agent presents to `/agent/v1/attest` to prove which node it
 * runs on. One plain table (STYLE 7.10: no plugin catalog): `join_token` and the cloud attestors
 * (aws_iid, gcp_iit, azure_msi), each in its own module; the config enables at most one.
 * @module
 */
import type { AgentConfig } from '../config.js';
import { createAwsIidAttestor } from './aws-iid.js';
import { createAzureMsiAttestor } from './azure-msi.js';
import { createGcpIitAttestor } from './gcp-iit.js';
import { createJoinTokenAttestor } from './join-token.js';

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

export type NodeAttestorType = 'join_token' | 'aws_iid' | 'gcp_iit' | 'azure_msi';
type AttestorConfig = Pick<AgentConfig, 'joinToken' | 'awsIid' | 'gcpIit' | 'azureMsi'>;

/** Each attestor's factory: returns undefined when the config does not enable it. */
export const NODE_ATTESTORS: Record<NodeAttestorType, (config: AttestorConfig) => NodeAttestor | undefined> = {
  join_token: (config) => (config.joinToken ? createJoinTokenAttestor(config.joinToken) : undefined),
  aws_iid: (config) => (config.awsIid ? createAwsIidAttestor(config.awsIid) : undefined),
  gcp_iit: (config) => (config.gcpIit ? createGcpIitAttestor(config.gcpIit) : undefined),
  azure_msi: (config) => (config.azureMsi ? createAzureMsiAttestor(config.azureMsi) : undefined),
};

/** The first attestor the config enables, in table order; undefined if none. */
export function selectNodeAttestor(config: AttestorConfig): NodeAttestor | undefined {
  for (const factory of Object.values(NODE_ATTESTORS)) {
    const attestor = factory(config);
    if (attestor) return attestor;
  }
  return undefined;
}
