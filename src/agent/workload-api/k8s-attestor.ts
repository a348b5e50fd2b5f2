/**
 * The `k8s` workload attestor (SPIRE's `WorkloadAttestor "k8s"`): the caller's pid → /proc/<pid>/cgroup →
 * pod UID and container ID (./k8s-cgroup.ts) → the kubelet's pod list (./kubelet-client.ts) → `k8s:*`
 * selectors (./k8s-pods.ts). A process that is not in a container gets no k8s selectors (the unix ones
 * still apply). A just-started container may not be listed yet: the list is fetched again, attempts
 * `podWatchIntervalSeconds` apart, up to `maxPollAttempts` (SPIRE: poll_retry_interval 500 ms,
 * max_poll_attempts 60). Concurrent callers share one kubelet request, and a list is reused for one interval.
 * A kubelet that fails (unreachable, TLS, 401/403) fails the call at once with the reason; no retry hides it.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { readPeerCgroupFile } from './cgroups.js';
import { podContainerFromCgroupFile } from './k8s-cgroup.js';
import { findContainer, parsePodList, podSelectors, type PodIndex } from './k8s-pods.js';
import { createKubeletClient, type KubeletClient } from './kubelet-client.js';
import type { WorkloadAttestor } from './unix-attestor.js';

/** The agent config's `workloadAttestors.k8s` block, parsed (src/agent/config.ts; docs/agent-config.md). */
export interface K8sAttestorConfig {
  /** `https://<node>:10250`, no trailing slash */
  kubeletUrl: string;
  /** PEM file of the kubelet serving certificate's CA */
  kubeletCa: string;
  skipKubeletVerification: boolean;
  /** bearer token file (used unless certificatePath is set) */
  tokenPath: string;
  certificatePath?: string;
  privateKeyPath?: string;
  /** when set, a pod the kubelet lists on another node is refused */
  nodeName?: string;
  podWatchIntervalSeconds: number;
  maxPollAttempts: number;
}

/** SPIRE's kubelet request timeout. */
const KUBELET_TIMEOUT_MS = 10_000;

export interface K8sAttestorOptions {
  /** tests only: a /proc written by the test (default `/proc`) */
  procRoot?: string;
  /** tests only: another kubelet client */
  kubelet?: KubeletClient;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

function failed(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: ${message}`, cause === undefined ? undefined : { cause });
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * @example
 * const attest = createK8sAttestor(config.workloadAttestors.k8s);
 * const selectors = await attest(peer); // [] outside a pod
 */
export function createK8sAttestor(config: K8sAttestorConfig, options: K8sAttestorOptions = {}): WorkloadAttestor {
  const proc = options.procRoot ?? '/proc';
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const intervalMs = Math.round(config.podWatchIntervalSeconds * 1000);
  const kubelet =
    options.kubelet ??
    createKubeletClient({
      url: config.kubeletUrl,
      caPath: config.kubeletCa,
      skipVerification: config.skipKubeletVerification,
      auth: config.certificatePath && config.privateKeyPath
        ? { certificatePath: config.certificatePath, privateKeyPath: config.privateKeyPath }
        : { tokenPath: config.tokenPath },
      timeoutMs: KUBELET_TIMEOUT_MS,
    });

  type PodList = { version: number; index: PodIndex; startedAt: number };
  let list: PodList | undefined;
  let inflight: Promise<PodList> | undefined;
  let lastStart = -Infinity;
  let version = 0;

  /** One kubelet request at a time, starts at least one interval apart; its list goes to every waiter. */
  function fetchList(): Promise<PodList> {
    inflight ??= (async () => {
      try {
        const wait = lastStart + intervalMs - now();
        if (wait > 0) await sleep(wait);
        lastStart = now();
        const text = await kubelet.listPods();
        let index: PodIndex;
        try {
          index = parsePodList(text);
        } catch (e) {
          throw failed(`kubelet: ${(e as Error).message}`, e);
        }
        list = { version: ++version, index, startedAt: lastStart };
        return list;
      } finally {
        inflight = undefined;
      }
    })();
    return inflight;
  }

  /** A list newer than version `seen`; the cached one while it is younger than an interval. */
  function podList(seen: number): Promise<PodList> {
    if (list && list.version > seen && now() - list.startedAt < intervalMs) return Promise.resolve(list);
    return fetchList(); // any request in flight started after `seen` was fetched, so it is newer
  }

  return async (peer) => {
    const text = await readPeerCgroupFile(proc, peer);
    let where;
    try {
      where = podContainerFromCgroupFile(text);
    } catch (e) {
      throw failed(`pid ${peer.pid}: ${(e as Error).message}`, e);
    }
    if (!where) return [];
    let seen = 0;
    for (let attempt = 1; ; attempt++) {
      const current = await podList(seen);
      seen = current.version;
      let hit;
      try {
        hit = findContainer(current.index, where.containerId, where.podUid);
      } catch (e) {
        throw failed((e as Error).message, e);
      }
      if (hit) {
        if (config.nodeName !== undefined && hit.pod.nodeName !== config.nodeName) {
          throw failed(`the kubelet at ${config.kubeletUrl} lists pod ${hit.pod.namespace}/${hit.pod.name} on node ${hit.pod.nodeName}, not on this node (${config.nodeName})`);
        }
        return podSelectors(hit.pod, hit.container);
      }
      if (attempt >= config.maxPollAttempts) {
        const pod = where.podUid ? ` of pod ${where.podUid}` : '';
        throw failed(`container ${where.containerId}${pod} is not in the kubelet's pod list after ${attempt} attempts`);
      }
    }
  };
}
