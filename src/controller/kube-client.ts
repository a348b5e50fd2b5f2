/**
 * The controller's Kubernetes API calls (@kubernetes/client-node): the kubeconfig (a file, else the pod's
 * in-cluster service account, else KUBECONFIG / ~/.kube/config), the Lease the leader election uses, the
 * status subresource of spire.spiffe.io resources, and the finalizer and annotation that record which
 * federation relationship a ClusterFederatedTrustDomain owns. Every write is a replace carrying the
 * resourceVersion read, so a stale write fails with 409 instead of overwriting someone else's change.
 * @module
 */
import { ApiException, CoordinationV1Api, CustomObjectsApi, KubeConfig, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { LeaseRecord, LeaseStore } from './leader-election.js';
import type { MetadataWriter } from './federation-reconciler.js';
import type { KubeResource, StatusWriter } from './reconciler.js';

export const SPIRE_GROUP = 'spire.spiffe.io';
export const SPIRE_VERSION = 'v1alpha1';

/** `--kubeconfig`, else in-cluster when running in a pod, else the default (KUBECONFIG, ~/.kube/config). */
export function loadKubeConfig(path: string | undefined, env: Readonly<Record<string, string | undefined>>): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (env['KUBERNETES_SERVICE_HOST'] && !env['KUBECONFIG']) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

const status = (e: unknown) => (e instanceof ApiException ? e.code : undefined);

const microTime = (d: Date | undefined) => (d === undefined ? undefined : new V1MicroTime(d.getTime()));

export function createLeaseStore(kc: KubeConfig, namespace: string, name: string): LeaseStore {
  const api = kc.makeApiClient(CoordinationV1Api);
  const body = (record: LeaseRecord, resourceVersion?: string): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      acquireTime: microTime(record.acquireTime),
      renewTime: microTime(record.renewTime),
      leaseTransitions: record.leaseTransitions,
    },
  });
  return {
    async get() {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (e) {
        if (status(e) === 404) return undefined;
        throw e;
      }
      const s = lease.spec ?? {};
      const date = (t: Date | string | undefined) => (t === undefined ? undefined : new Date(t));
      return {
        resourceVersion: lease.metadata?.resourceVersion ?? '',
        record: {
          holderIdentity: s.holderIdentity ?? '',
          leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
          acquireTime: date(s.acquireTime),
          renewTime: date(s.renewTime),
          leaseTransitions: s.leaseTransitions ?? 0,
        },
      };
    },
    async create(record) {
      try {
        await api.createNamespacedLease({ namespace, body: body(record) });
        return true;
      } catch (e) {
        if (status(e) === 409) return false;
        throw e;
      }
    },
    async update(record, resourceVersion) {
      try {
        await api.replaceNamespacedLease({ name, namespace, body: body(record, resourceVersion) });
        return true;
      } catch (e) {
        if (status(e) === 409) return false;
        throw e;
      }
    },
  };
}

/** Who holds the Lease now (for logs and tests). */
export async function leaseHolder(kc: KubeConfig, namespace: string, name: string): Promise<string | undefined> {
  return (await createLeaseStore(kc, namespace, name).get())?.record.holderIdentity;
}

export function createStatusWriter(kc: KubeConfig): StatusWriter & MetadataWriter {
  const api = kc.makeApiClient(CustomObjectsApi);
  const ident = (r: KubeResource) => ({ group: SPIRE_GROUP, version: SPIRE_VERSION, name: r.metadata.name ?? '' });
  const typed = (r: KubeResource, kind: string) => ({ ...r, apiVersion: `${SPIRE_GROUP}/${SPIRE_VERSION}`, kind });
  return {
    async writeStatus(plural, resource, next) {
      await api.replaceClusterCustomObjectStatus({ ...ident(resource), plural, body: { ...typed(resource, plural === 'clusterspiffeids' ? 'ClusterSPIFFEID' : 'ClusterStaticEntry'), status: next } });
    },
    async writeOwnership(resource, finalizers, annotations) {
      const metadata = { ...resource.metadata, finalizers, annotations };
      const updated = (await api.replaceClusterCustomObject({ ...ident(resource), plural: 'clusterfederatedtrustdomains', body: { ...typed(resource, 'ClusterFederatedTrustDomain'), metadata } })) as KubeResource;
      // later writes in the same reconcile need the new resourceVersion
      resource.metadata = updated.metadata;
    },
  };
}
