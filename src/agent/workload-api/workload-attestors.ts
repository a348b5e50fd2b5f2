/**
 * The agent's workload attestors, composed: `unix` always; `k8s`, `docker`, `systemd` when configured under
 * `workloadAttestors`.
 * A caller gets the selectors of all of them (SPIRE's agent runs every configured WorkloadAttestor and
 * unions their selectors); if one fails, the call fails. With unix alone the unix attestor is returned
 * as it is, and the other attestors' modules are not even loaded: a unix-only agent pays nothing for them.
 * @module
 */
import type { DockerAttestorConfig } from './docker-attestor.js';
import type { K8sAttestorConfig } from './k8s-attestor.js';
import { createUnixAttestor, type UnixAttestorOptions, type WorkloadAttestor } from './unix-attestor.js';

export interface WorkloadAttestorsConfig {
  k8s?: K8sAttestorConfig;
  docker?: DockerAttestorConfig;
  /** SPIRE's systemd attestor takes no configuration: `{}` turns it on */
  systemd?: Record<string, never>;
}

/** Every attestor's selectors, in order. */
export function combineWorkloadAttestors(attestors: readonly WorkloadAttestor[]): WorkloadAttestor {
  if (attestors.length === 1) return attestors[0]!;
  return async (peer) => (await Promise.all(attestors.map((attest) => attest(peer)))).flat();
}

/**
 * One per agent: its caches serve both APIs on the socket (Workload API and SDS).
 * @example const attest = await createWorkloadAttestor(config.workloadAttestors);
 */
export async function createWorkloadAttestor(config: WorkloadAttestorsConfig | undefined, unix: UnixAttestorOptions = {}): Promise<WorkloadAttestor> {
  const attestors = [createUnixAttestor(unix)];
  if (config?.k8s) attestors.push((await import('./k8s-attestor.js')).createK8sAttestor(config.k8s));
  if (config?.docker) attestors.push((await import('./docker-attestor.js')).createDockerAttestor(config.docker));
  if (config?.systemd) attestors.push((await import('./systemd-attestor.js')).createSystemdAttestor());
  return combineWorkloadAttestors(attestors);
}
