/**
 * /proc/<pid>/cgroup → the Kubernetes pod UID and container ID of the process (pure; read by
 * ./k8s-attestor.ts, and by ./docker-attestor.ts for the container ID alone). Only the cgroup file is
 * read: the kernel writes it and a workload cannot forge it (SPIRE's mountinfo fallback is not taken: a
 * workload controls its mount namespace).
 *
 * Shapes handled (cgroup v1 lines `N:controllers:/path`, v2 `0::/path`):
 *   cgroupfs driver  /kubepods/burstable/pod<uid>/<64 hex>          (containerd, Docker; besteffort, guaranteed = no QoS dir)
 *   systemd driver   /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_with_underscores>.slice/
 *                    cri-containerd-<64 hex>.scope | docker-<64 hex>.scope | crio-<64 hex>.scope
 *   containerd's     /kubepods-burstable-pod<uid>.slice:cri-containerd:<64 hex>  (systemd cgroup path with colons)
 *   nested / ns      /docker/<64 hex>/kubepods/... (kind), /../../pod<uid>/<64 hex> (seen from a cgroup namespace)
 *   CRI-O, no UID    0::/../crio-<64 hex>.scope  (pod found by container ID alone)
 * Walking back from the end of the path: the last 64-hex run is the container ID, the nearest `pod<uuid>`
 * before it the pod UID (underscores of the systemd spelling back to dashes). A line with a pod UID wins over
 * one without (kind's `0::/docker/<id>/system.slice/containerd.service` is the node container, not the pod);
 * two different answers fail. Paths under a systemd user delegation (`user@<uid>.service`) are skipped: there
 * an unprivileged user may name cgroups, so a `pod<uid>/<id>` there proves nothing.
 * @module
 */
import { parseCgroupFile } from './cgroups.js';

/** Where a process runs in Kubernetes: container ID always, pod UID when the path names it. */
export interface PodContainer {
  containerId: string;
  /** lower-case, dashed (`2c48913c-b29f-11e7-9350-020968147796`); undefined when the path has none (CRI-O + KubeEdge) */
  podUid?: string;
}

const CONTAINER_ID = /(?:^|[^0-9a-f])([0-9a-f]{64})(?![0-9a-f])/gi;
const POD_UID = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?![0-9a-f])/gi;
/** systemd's user manager: cgroups below it are delegated to the user */
const USER_DELEGATION = /(?:^|\/)user@\d+\.service(?:\/|$)/;

/** One cgroup path → what it says, or undefined when it names no container. */
export function podContainerFromCgroupPath(path: string): PodContainer | undefined {
  if (USER_DELEGATION.test(path)) return undefined;
  const ids = [...path.matchAll(CONTAINER_ID)];
  const last = ids.at(-1);
  if (!last) return undefined;
  const containerId = last[1]!.toLowerCase();
  const before = path.slice(0, last.index + last[0].length - 64);
  const uid = [...before.matchAll(POD_UID)].at(-1)?.[1];
  return uid ? { containerId, podUid: uid.replace(/_/g, '-').toLowerCase() } : { containerId };
}

/**
 * The whole /proc/<pid>/cgroup file → the process's pod container, or undefined when the process is not in a
 * container (then the k8s attestor adds no selectors, as SPIRE). Throws when lines disagree.
 */
export function podContainerFromCgroupFile(text: string): PodContainer | undefined {
  let found: PodContainer | undefined;
  for (const { path } of parseCgroupFile(text)) {
    const here = podContainerFromCgroupPath(path);
    if (!here) continue;
    if (found?.podUid && !here.podUid) continue;
    if (found && (found.podUid || !here.podUid)) {
      if (here.containerId !== found.containerId) throw new Error(`cgroups name two containers (${found.containerId}, ${here.containerId})`);
      if (here.podUid !== found.podUid) throw new Error(`cgroups name two pods (${found.podUid}, ${here.podUid})`);
    }
    found = here;
  }
  return found;
}
