/**
 * Node attestation: how a machine proves what it is before it gets an agent SVID (SPIRE's server-side node
 * attestor plugins, without the plugin catalog: a plain table, STYLE 7.10). Each attestor turns an
 * attestor-specific payload into an agent ID and node selectors, or throws a WispError (types.ts). The
 * cloud attestors (aws_iid, gcp_iit, azure_msi), k8s_psat and x509pop, each in its own module, are enabled by their config.
 * @module
 */
import type { JoinTokenStore } from '../../shared/registry/ports.js';
import { createAwsIidAttestor } from './aws-iid.js';
import { createAzureMsiAttestor } from './azure-msi.js';
import type { CloudAttestorsConfig } from './cloud-config.js';
import { createGcpIitAttestor } from './gcp-iit.js';
import { createJoinTokenAttestor } from './join-token.js';
import { createK8sPsatAttestor } from './k8s-psat.js';
import type { NodeAttestor } from './types.js';
import { createX509popAttestor, type X509popNonceStore } from './x509pop.js';

// The types live in types.ts (the attestors import them from there, not from this registry: no cycle).
export type { NodeAttestationContext, NodeAttestationResult, NodeAttestor } from './types.js';

export interface NodeAttestorDeps {
  joinTokens: JoinTokenStore;
  /** enabled cloud attestors (WorkerConfig.nodeAttestors) */
  cloud?: CloudAttestorsConfig;
  /** fetch for signing keys (tests); default: the global fetch. Each attestor caches keys for its lifetime. */
  fetch?: typeof fetch;
  /** x509pop's single-use challenge nonces (D1); x509pop is off without it */
  x509popNonces?: X509popNonceStore;
}

/** The node attestors the issuer accepts, by type. */
export function createNodeAttestors(deps: NodeAttestorDeps): Record<string, NodeAttestor> {
  const { cloud = {} } = deps;
  const attestors: NodeAttestor[] = [
    createJoinTokenAttestor(deps.joinTokens),
    ...(cloud.awsIid ? [createAwsIidAttestor(cloud.awsIid)] : []),
    ...(cloud.gcpIit ? [createGcpIitAttestor(cloud.gcpIit, deps.fetch)] : []),
    ...(cloud.azureMsi ? [createAzureMsiAttestor(cloud.azureMsi, deps.fetch)] : []),
    ...(cloud.k8sPsat ? [createK8sPsatAttestor(cloud.k8sPsat, deps.fetch)] : []),
    ...(cloud.x509pop && deps.x509popNonces ? [createX509popAttestor(cloud.x509pop, deps.x509popNonces)] : []),
  ];
  return Object.fromEntries(attestors.map((a) => [a.type, a]));
}
