/**
 * The controller's Kubernetes API calls (@kubernetes/client-node): the kubeconfig (a file, else the pod's
 * in-cluster service account, else KUBECONFIG / ~/.kube/config), the Lease the leader election uses, the
 * status subresource of spire.spiffe.io resources, Warning Events on them for their problems, and the finalizer and annotation that record which
 * federation relationship a ClusterFederatedTrustDomain owns. Every write is a replace carrying the
 * resourceVersion read, so a stale write fails with 409 instead of overwriting someone else's change.
 * @module
 */
import { ApiException, CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, V1MicroTime, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { LeaseRecord, LeaseStore } from './leader-election.js';
import type { MetadataWriter } from './federation-reconciler.js';
import type { KubeResource, ProblemSink, StatusWriter } from './reconciler.js';

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

/** Events are cluster-scoped objects' in "default", as client-go's recorder files them; kubectl describe finds them. */
const EVENT_NAMESPACE = 'default';
/** The API server's limit on an Event's message. */
const EVENT_MESSAGE_MAX = 1024;
/** The same problem of the same resource version is reported once per process. */
const REPORTED_MAX = 10_000;

export function createProblemEvents(kc: KubeConfig, instance: string, log: Logger): ProblemSink {
  const api = kc.makeApiClient(CoreV1Api);
  const reported = new Set<string>();
  return {
    warn(kind, resource, reason, message) {
      const { name = '', uid = '', resourceVersion = '' } = resource.metadata;
      const key = `${uid}|${resourceVersion}|${reason}|${message}`;
      if (reported.has(key)) return;
      if (reported.size >= REPORTED_MAX) reported.clear();
      reported.add(key);
      const now = new Date();
      api
        .createNamespacedEvent({
          namespace: EVENT_NAMESPACE,
          body: {
            metadata: { generateName: `${name}.`, namespace: EVENT_NAMESPACE },
            involvedObject: { apiVersion: `${SPIRE_GROUP}/${SPIRE_VERSION}`, kind, name, uid, resourceVersion },
            type: 'Warning',
            reason,
            message: message.length > EVENT_MESSAGE_MAX ? `${message.slice(0, EVENT_MESSAGE_MAX - 1)}…` : message,
            source: { component: 'wisp-controller-manager' },
            reportingComponent: 'wisp-controller-manager',
            reportingInstance: instance.slice(0, 128),
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((e: unknown) => log.warn({ resource: name, error: e instanceof Error ? e.message : String(e) }, 'cannot record an Event'));
    },
  };
}
