/**
 * The Kubernetes objects the controller's pure core reads, as the API server returns them (JSON, camelCase),
 * and their Go types as templates see them (`TemplateType`): a template names Go fields (`.PodSpec.
 * ServiceAccountName`), the data is JSON (`spec.serviceAccountName`); `jsonFieldName` is the one mapping.
 * @module
 */
import type { TemplateType } from './template.js';

export interface KubeOwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface KubeObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: KubeOwnerReference[];
  [field: string]: unknown;
}

export interface KubeContainer {
  name: string;
  image?: string;
  [field: string]: unknown;
}

export interface KubePod {
  metadata: KubeObjectMeta;
  spec?: { nodeName?: string; serviceAccountName?: string; containers?: KubeContainer[]; [field: string]: unknown };
  status?: { phase?: string; podIP?: string; [field: string]: unknown };
}

export interface KubeNode {
  metadata: KubeObjectMeta;
  spec?: { podCIDR?: string; providerID?: string; unschedulable?: boolean; [field: string]: unknown };
}

export interface KubeNamespace {
  metadata: KubeObjectMeta;
}

/**
 * Go field name → Kubernetes JSON name: the leading capitals become lower case, except the last one when a
 * lower-case letter follows it (it starts the next word): `ServiceAccountName` → `serviceAccountName`,
 * `UID` → `uid`, `DNSPolicy` → `dnsPolicy`, `PodCIDR` → `podCIDR`. The few JSON tags that are not this
 * rule are listed in JSON_NAME_EXCEPTIONS.
 */
export function jsonFieldName(goName: string): string {
  const exception = JSON_NAME_EXCEPTIONS[goName];
  if (exception) return exception;
  const caps = /^[A-Z]+/.exec(goName)?.[0].length ?? 0;
  if (caps === 0) return goName;
  const lower = caps > 1 && caps < goName.length && /[a-z]/.test(goName[caps]!) ? caps - 1 : caps;
  return goName.slice(0, lower).toLowerCase() + goName.slice(lower);
}

/** Go fields whose json tag is not the rule's (k8s.io/api core/v1). */
const JSON_NAME_EXCEPTIONS: Record<string, string> = {
  DeprecatedServiceAccount: 'serviceAccount',
  DoNotUseExternalID: 'externalID',
};

const STRING: TemplateType = { kind: 'string' };
const INT: TemplateType = { kind: 'int' };
const BOOL: TemplateType = { kind: 'bool' };
const MAP: TemplateType = { kind: 'map' };
const opaque = (name: string): TemplateType => ({ kind: 'opaque', name });

function kubeStruct(name: string, fields: Record<string, TemplateType>): TemplateType {
  return { kind: 'struct', name, fields, jsonName: jsonFieldName };
}

/** metav1.ObjectMeta */
const OBJECT_META = kubeStruct('v1.ObjectMeta', {
  Name: STRING,
  GenerateName: STRING,
  Namespace: STRING,
  SelfLink: STRING,
  UID: STRING,
  ResourceVersion: STRING,
  Generation: INT,
  CreationTimestamp: opaque('v1.Time'),
  DeletionTimestamp: opaque('*v1.Time'),
  DeletionGracePeriodSeconds: opaque('*int64'),
  Labels: MAP,
  Annotations: MAP,
  OwnerReferences: opaque('[]v1.OwnerReference'),
  Finalizers: opaque('[]string'),
  ManagedFields: opaque('[]v1.ManagedFieldsEntry'),
});

/** corev1.PodSpec: its scalar and map fields typed, the rest opaque (a template cannot print them). */
const POD_SPEC = kubeStruct('v1.PodSpec', {
  ...Object.fromEntries(
    ['Volumes', 'InitContainers', 'Containers', 'EphemeralContainers', 'TerminationGracePeriodSeconds', 'ActiveDeadlineSeconds', 'AutomountServiceAccountToken', 'ShareProcessNamespace', 'SecurityContext', 'ImagePullSecrets', 'Affinity', 'Tolerations', 'HostAliases', 'Priority', 'DNSConfig', 'ReadinessGates', 'RuntimeClassName', 'EnableServiceLinks', 'PreemptionPolicy', 'Overhead', 'TopologySpreadConstraints', 'SetHostnameAsFQDN', 'OS', 'HostUsers', 'SchedulingGates', 'ResourceClaims', 'Resources'].map((f) => [f, opaque(`v1.PodSpec.${f}`)]),
  ),
  RestartPolicy: STRING,
  DNSPolicy: STRING,
  NodeSelector: MAP,
  ServiceAccountName: STRING,
  DeprecatedServiceAccount: STRING,
  NodeName: STRING,
  HostNetwork: BOOL,
  HostPID: BOOL,
  HostIPC: BOOL,
  Hostname: STRING,
  Subdomain: STRING,
  SchedulerName: STRING,
  PriorityClassName: STRING,
});

/** corev1.NodeSpec */
const NODE_SPEC = kubeStruct('v1.NodeSpec', {
  PodCIDR: STRING,
  PodCIDRs: opaque('[]string'),
  ProviderID: STRING,
  Unschedulable: BOOL,
  Taints: opaque('[]v1.Taint'),
  ConfigSource: opaque('*v1.NodeConfigSource'),
  DoNotUseExternalID: STRING,
});

/** spire-controller-manager's template data (pkg/spireentry): Go names are the JSON names here. */
export const TEMPLATE_DATA_TYPE: TemplateType = {
  kind: 'struct',
  name: 'spireentry.templateData',
  fields: { TrustDomain: STRING, ClusterName: STRING, ClusterDomain: STRING, PodMeta: OBJECT_META, PodSpec: POD_SPEC, NodeMeta: OBJECT_META, NodeSpec: NODE_SPEC },
  jsonName: (goName) => goName,
};

/**
 * The data of upstream's `parentIDTemplate` (controller config): rendered before the pod is known, so
 * PodMeta and PodSpec are nil pointers there and a template that reads them fails.
 */
export const PARENT_TEMPLATE_DATA_TYPE: TemplateType = {
  ...TEMPLATE_DATA_TYPE,
  fields: { ...(TEMPLATE_DATA_TYPE as { fields: Record<string, TemplateType> }).fields, PodMeta: opaque('nil *v1.ObjectMeta'), PodSpec: opaque('nil *v1.PodSpec') },
};

/** The data a ClusterSPIFFEID template renders over. */
export function templateData(ctx: { trustDomain: string; clusterName: string; clusterDomain: string }, pod: KubePod | undefined, node: KubeNode): Record<string, unknown> {
  return {
    TrustDomain: ctx.trustDomain,
    ClusterName: ctx.clusterName,
    ClusterDomain: ctx.clusterDomain,
    PodMeta: pod?.metadata,
    PodSpec: pod?.spec,
    NodeMeta: node.metadata,
    NodeSpec: node.spec,
  };
}
