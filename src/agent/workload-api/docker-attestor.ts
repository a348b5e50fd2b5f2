/**
 * The `docker` workload attestor (SPIRE's `WorkloadAttestor "docker"`): the caller's pid → its container
 * ID from /proc/<pid>/cgroup (./cgroups.ts read with the pid-reuse guard, the container ID found as for
 * the k8s attestor by ./k8s-cgroup.ts: v1 `/docker/<id>`, v2 `/system.slice/docker-<id>.scope`, nested
 * and cgroup-namespace shapes) → the Docker Engine's container inspect (./docker-engine.ts) → selectors, as
 * SPIRE's:
 *   docker:label:<key>:<value>   every Config.Labels entry
 *   docker:env:<KEY>=<value>     every Config.Env string
 *   docker:image_id:<image>      Config.Image, the image name the container was created with (not the ID)
 *   docker:image_config_digest:<ID>  the image's ID (`sha256:…`) from the image inspect, when the Engine has it
 * A process in no container gets no docker selectors (the unix ones still apply). A container the Engine
 * does not know fails the call, as SPIRE's (then the 64-hex cgroup is some other runtime's: do not
 * configure this attestor there). Not supported: Podman sockets, `container_id_cgroup_matchers` (SPIRE's
 * legacy locator only), sigstore verification.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { Selector } from '../../shared/registry/selectors.js';
import { readPeerCgroupFile } from './cgroups.js';
import { createDockerEngine, type DockerEngine } from './docker-engine.js';
import { podContainerFromCgroupFile } from './k8s-cgroup.js';
import type { WorkloadAttestor } from './unix-attestor.js';

/** The agent config's `workloadAttestors.docker` block, parsed (./workload-attestors-config.ts; docs/agent-config.md). */
export interface DockerAttestorConfig {
  /** `unix:///var/run/docker.sock` */
  dockerSocketPath: string;
  /** `1.41`; undefined: the Engine's own API version */
  dockerVersion?: string;
}

/** Each Engine request's deadline (SPIRE's docker client has none; a hung dockerd must not hold callers). */
const DOCKER_TIMEOUT_MS = 5_000;

export interface DockerAttestorOptions {
  /** tests only: a /proc written by the test (default `/proc`) */
  procRoot?: string;
  /** tests only: another Engine client */
  engine?: DockerEngine;
}

function failed(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: docker: ${message}`, cause === undefined ? undefined : { cause });
}

/**
 * @example
 * const attest = createDockerAttestor({ dockerSocketPath: 'unix:///var/run/docker.sock' });
 * const selectors = await attest(peer); // [] outside a container
 */
export function createDockerAttestor(config: DockerAttestorConfig, options: DockerAttestorOptions = {}): WorkloadAttestor {
  const proc = options.procRoot ?? '/proc';
  const engine =
    options.engine ??
    createDockerEngine({
      socketPath: config.dockerSocketPath.slice('unix://'.length),
      ...(config.dockerVersion !== undefined ? { apiVersion: config.dockerVersion } : {}),
      timeoutMs: DOCKER_TIMEOUT_MS,
    });

  return async (peer) => {
    const text = await readPeerCgroupFile(proc, peer);
    let containerId: string | undefined;
    try {
      containerId = podContainerFromCgroupFile(text)?.containerId;
    } catch (e) {
      throw failed(`pid ${peer.pid}: ${(e as Error).message}`, e);
    }
    if (containerId === undefined) return [];
    const container = await engine.inspectContainer(containerId);
    if (!container) throw failed(`pid ${peer.pid} is in container ${containerId}, which the Docker Engine at ${config.dockerSocketPath} does not know`);
    if (container.id !== containerId) throw failed(`the Docker Engine answered for container ${container.id}, not ${containerId}`);
    const selectors: Selector[] = [];
    for (const [key, value] of Object.entries(container.labels)) selectors.push({ type: 'docker', value: `label:${key}:${value}` });
    for (const e of container.env) selectors.push({ type: 'docker', value: `env:${e}` });
    if (container.image) {
      selectors.push({ type: 'docker', value: `image_id:${container.image}` });
      const id = await engine.imageId(container.image);
      if (id) selectors.push({ type: 'docker', value: `image_config_digest:${id}` });
    }
    return selectors;
  };
}
