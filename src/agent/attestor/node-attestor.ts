/**
 * Node attestors on the agent side: what the agent presents to `/agent/v1/attest` to prove which node it
 * runs on. One plain table (STYLE 7.10: no plugin catalog): `join_token` and the cloud attestors
 * (aws_iid, gcp_iit, azure_msi), k8s_psat and x509pop, each in its own module; the config enables at most one.
 * @module
 */
import type { AgentConfig } from '../config.js';
import { createAwsIidAttestor } from './aws-iid.js';
import { createAzureMsiAttestor } from './azure-msi.js';
import { createGcpIitAttestor } from './gcp-iit.js';
import { createJoinTokenAttestor } from './join-token.js';
import { createK8sPsatAttestor } from './k8s-psat.js';
import type { NodeAttestor, NodeAttestorType } from './types.js';
import { createX509popAttestor } from './x509pop.js';

// re-exported: agent.ts, node-attestation.ts and the tests name the attestor contract from here
export type { NodeAttestor, NodeAttestorType } from './types.js';

type AttestorConfig = Pick<AgentConfig, 'joinToken' | 'awsIid' | 'gcpIit' | 'azureMsi' | 'k8sPsat' | 'x509pop'>;

/** Each attestor's factory: returns undefined when the config does not enable it. */
export const NODE_ATTESTORS: Record<NodeAttestorType, (config: AttestorConfig) => NodeAttestor | undefined> = {
  join_token: (config) => (config.joinToken ? createJoinTokenAttestor(config.joinToken) : undefined),
  aws_iid: (config) => (config.awsIid ? createAwsIidAttestor(config.awsIid) : undefined),
  gcp_iit: (config) => (config.gcpIit ? createGcpIitAttestor(config.gcpIit) : undefined),
  azure_msi: (config) => (config.azureMsi ? createAzureMsiAttestor(config.azureMsi) : undefined),
  k8s_psat: (config) => (config.k8sPsat ? createK8sPsatAttestor(config.k8sPsat) : undefined),
  x509pop: (config) => (config.x509pop ? createX509popAttestor(config.x509pop) : undefined),
};

/** The first attestor the config enables, in table order; undefined if none. */
export function selectNodeAttestor(config: AttestorConfig): NodeAttestor | undefined {
  for (const factory of Object.values(NODE_ATTESTORS)) {
    const attestor = factory(config);
    if (attestor) return attestor;
  }
  return undefined;
}
