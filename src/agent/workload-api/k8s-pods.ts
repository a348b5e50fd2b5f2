/**
 * The kubelet's pod list (`GET /pods`, a v1 PodList) → the pod and container of a workload → its `k8s`
 * selectors, with SPIRE's names and value formats (pure; used by ./k8s-attestor.ts):
 *   k8s:ns:<namespace>  k8s:sa:<service account>  k8s:node-name:<node>  k8s:pod-uid:<uid>  k8s:pod-name:<name>
 *   k8s:pod-label:<key>:<value>  k8s:pod-owner:<Kind>:<name>  k8s:pod-owner-uid:<Kind>:<uid>
 *   k8s:pod-image:<image and imageID of each container>  k8s:pod-image-count:<containers>
 *   k8s:pod-init-image:<the same of each init container>  k8s:pod-init-image-count:<init containers>
 *   k8s:container-name:<name>  k8s:container-image:<image and imageID of the workload's container>
 * As SPIRE: a workload is found among the containers and init containers by the container ID of its status
 * (`containerd://<id>`, `cri-o://<id>`, `docker://<id>`); ephemeral containers are neither found nor counted;
 * each image selector is given for both `image` (tag) and `imageID` (digest).
 * @module
 */
import type { Selector } from '../../shared/registry/selectors.js';

export interface ContainerStatus {
  name: string;
  image: string;
  imageID: string;
  /** `<runtime>://<id>`, absent until the runtime created the container */
  containerID?: string;
}

export interface Pod {
  uid: string;
  name: string;
  namespace: string;
  serviceAccountName: string;
  nodeName: string;
  labels: Record<string, string>;
  owners: { kind: string; name: string; uid: string }[];
  containers: ContainerStatus[];
  initContainers: ContainerStatus[];
}

/** A pod list indexed for lookups by container ID. */
export interface PodIndex {
  pods: Pod[];
  /** container ID → its pods and statuses (normally one) */
  byContainer: Map<string, { pod: Pod; container: ContainerStatus }[]>;
}

const str = (x: unknown): string => (typeof x === 'string' ? x : '');
const obj = (x: unknown): Record<string, unknown> => (typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : {});
const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : []);

function statuses(list: unknown): ContainerStatus[] {
  return arr(list).map((s) => {
    const o = obj(s);
    const id = str(o.containerID);
    return { name: str(o.name), image: str(o.image), imageID: str(o.imageID), ...(id ? { containerID: id } : {}) };
  });
}

/** The container ID part of `containerd://<id>` (SPIRE: the URL's host). */
export function runtimeContainerId(containerID: string): string | undefined {
  const m = /^[a-z0-9.+-]+:\/\/([^/?#]+)$/i.exec(containerID);
  return m?.[1]?.toLowerCase();
}

/** The kubelet's JSON → pods; throws when it is not a PodList. */
export function parsePodList(text: string): PodIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('the kubelet answered something that is not JSON');
  }
  const root = obj(json);
  if (!Array.isArray(root.items)) throw new Error('the kubelet answered JSON that is not a pod list');
  const pods: Pod[] = [];
  const byContainer: PodIndex['byContainer'] = new Map();
  for (const item of root.items) {
    const meta = obj(obj(item).metadata);
    const spec = obj(obj(item).spec);
    const status = obj(obj(item).status);
    const labels: Record<string, string> = {};
    for (const [k, val] of Object.entries(obj(meta.labels))) if (typeof val === 'string') labels[k] = val;
    const pod: Pod = {
      uid: str(meta.uid),
      name: str(meta.name),
      namespace: str(meta.namespace),
      serviceAccountName: str(spec.serviceAccountName),
      nodeName: str(spec.nodeName),
      labels,
      owners: arr(meta.ownerReferences).map((r) => ({ kind: str(obj(r).kind), name: str(obj(r).name), uid: str(obj(r).uid) })),
      containers: statuses(status.containerStatuses),
      initContainers: statuses(status.initContainerStatuses),
    };
    pods.push(pod);
    for (const container of [...pod.containers, ...pod.initContainers]) {
      const id = container.containerID && runtimeContainerId(container.containerID);
      if (!id) continue;
      const list = byContainer.get(id) ?? [];
      list.push({ pod, container });
      byContainer.set(id, list);
    }
  }
  return { pods, byContainer };
}

/**
 * The pod and container status of `containerId` (in pod `podUid` when the cgroup named one); undefined when
 * not listed yet. Throws when two pods list the same container (SPIRE refuses that too).
 */
export function findContainer(index: PodIndex, containerId: string, podUid?: string): { pod: Pod; container: ContainerStatus } | undefined {
  const hits = (index.byContainer.get(containerId) ?? []).filter((h) => podUid === undefined || h.pod.uid === podUid);
  if (hits.length > 1 && new Set(hits.map((h) => h.pod.uid)).size > 1) throw new Error(`two pods list container ${containerId}`);
  return hits[0];
}

/** image and imageID of each status, each once, in order (an empty imageID, image not pulled yet, gives none) */
function images(list: ContainerStatus[]): string[] {
  return [...new Set(list.flatMap((s) => [s.image, s.imageID]))].filter((i) => i !== '');
}

/** The `k8s` selectors of a workload in `container` of `pod`. */
export function podSelectors(pod: Pod, container: ContainerStatus): Selector[] {
  const values = [
    `sa:${pod.serviceAccountName}`,
    `ns:${pod.namespace}`,
    `node-name:${pod.nodeName}`,
    `pod-uid:${pod.uid}`,
    `pod-name:${pod.name}`,
    `pod-image-count:${pod.containers.length}`,
    `pod-init-image-count:${pod.initContainers.length}`,
    ...images(pod.containers).map((i) => `pod-image:${i}`),
    ...images(pod.initContainers).map((i) => `pod-init-image:${i}`),
    ...Object.entries(pod.labels).map(([k, val]) => `pod-label:${k}:${val}`),
    ...pod.owners.flatMap((o) => [`pod-owner:${o.kind}:${o.name}`, `pod-owner-uid:${o.kind}:${o.uid}`]),
    `container-name:${container.name}`,
    ...images([container]).map((i) => `container-image:${i}`),
  ];
  return values.map((value) => ({ type: 'k8s', value }));
}
