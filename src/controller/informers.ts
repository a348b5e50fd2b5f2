/**
 * The watched resources: one client-node informer (list, then watch from its resourceVersion) per kind,
 * restarted with exponential backoff (1s doubling to 30s, reset once it lists again) when its watch or list
 * fails, since client-node's informer stops on an error. Every add, update and delete calls `onChange`;
 * the reconcile trigger coalesces them. The caches are read whole at each reconcile, which also makes the
 * periodic reconcile a resync.
 * @module
 */
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, makeInformer, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { SPIRE_GROUP, SPIRE_VERSION } from './kube-client.js';
import type { ClusterState, KubeEndpointSlice, KubeResource } from './reconciler.js';
import type { KubeNamespace, KubeNode, KubePod } from './render.js';

const BACKOFF_START_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

export interface WatchedState extends ClusterState {
  clusterFederatedTrustDomains: readonly KubeResource[];
}

export interface Informers {
  /** resolves once every informer has listed once */
  synced: Promise<void>;
  snapshot(): WatchedState;
  stop(): Promise<void>;
}

type Cache = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

/** Which kinds to watch: a kind not reconciled is not watched (its CRD need not even be installed). */
export function watchedKinds(reconcile: { clusterSPIFFEIDs: boolean; clusterStaticEntries: boolean; clusterFederatedTrustDomains: boolean }): string[] {
  return [
    ...(reconcile.clusterSPIFFEIDs ? ['clusterspiffeids', 'pods', 'nodes', 'namespaces', 'endpointslices'] : []),
    ...(reconcile.clusterStaticEntries ? ['clusterstaticentries'] : []),
    ...(reconcile.clusterFederatedTrustDomains ? ['clusterfederatedtrustdomains'] : []),
  ];
}

export function startInformers(kc: KubeConfig, watch: readonly string[], onChange: (kind: string) => void, log: Logger): Informers {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const discovery = kc.makeApiClient(DiscoveryV1Api);
  const crd = (plural: string) => ({
    path: `/apis/${SPIRE_GROUP}/${SPIRE_VERSION}/${plural}`,
    list: async () => (await custom.listClusterCustomObject({ group: SPIRE_GROUP, version: SPIRE_VERSION, plural })) as KubernetesListObject<KubernetesObject>,
  });
  const kinds: Record<string, { path: string; list: () => Promise<KubernetesListObject<KubernetesObject>> }> = {
    clusterspiffeids: crd('clusterspiffeids'),
    clusterstaticentries: crd('clusterstaticentries'),
    clusterfederatedtrustdomains: crd('clusterfederatedtrustdomains'),
    pods: { path: '/api/v1/pods', list: () => core.listPodForAllNamespaces() },
    nodes: { path: '/api/v1/nodes', list: () => core.listNode() },
    namespaces: { path: '/api/v1/namespaces', list: () => core.listNamespace() },
    endpointslices: { path: '/apis/discovery.k8s.io/v1/endpointslices', list: () => discovery.listEndpointSliceForAllNamespaces() },
  };
  let stopped = false;
  const caches = new Map<string, Cache>();
  const timers = new Set<NodeJS.Timeout>();

  const startOne = (kind: string): Promise<void> => {
    const { path, list } = kinds[kind]!;
    const informer = makeInformer(kc, path, list) as Cache;
    caches.set(kind, informer);
    let backoff = BACKOFF_START_MS;
    let failedSinceStart = false;
    let resolveSynced!: () => void;
    const synced = new Promise<void>((r) => (resolveSynced = r));
    const changed = () => onChange(kind);
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => {
      failedSinceStart = true;
      if (stopped) return;
      log.warn({ kind, retryInMs: backoff, error: err instanceof Error ? err.message : String(err) }, 'watch failed; restarting');
      const t = setTimeout(() => {
        timers.delete(t);
        void run();
      }, backoff);
      timers.add(t);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    });
    const run = async () => {
      failedSinceStart = false;
      await informer.start().catch(() => (failedSinceStart = true));
      if (!failedSinceStart) {
        backoff = BACKOFF_START_MS;
        resolveSynced();
        changed();
      }
    };
    void run();
    return synced;
  };

  const synced = Promise.all(watch.map(startOne)).then(() => undefined);
  const all = <T>(kind: string) => (caches.get(kind)?.list() ?? []) as unknown as readonly T[];
  return {
    synced,
    snapshot: () => ({
      clusterSPIFFEIDs: all<KubeResource>('clusterspiffeids'),
      clusterStaticEntries: all<KubeResource>('clusterstaticentries'),
      // the federation reconciler updates these objects' metadata: it gets copies, never the cache's
      clusterFederatedTrustDomains: structuredClone(all<KubeResource>('clusterfederatedtrustdomains')),
      pods: all<KubePod>('pods'),
      nodes: all<KubeNode>('nodes'),
      namespaces: all<KubeNamespace>('namespaces'),
      endpointSlices: all<KubeEndpointSlice>('endpointslices'),
    }),
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all([...caches.values()].map((c) => c.stop()));
    },
  };
}
