/**
 * k8s_psat node attestation, runtime-agnostic part (SPIRE's k8s_psat): the agent sends `{ cluster, token }`,
 * a projected service account token bound to the agent's pod. Two ways to know the token is genuine:
 * offline, by the cluster's service-account issuer keys (signature, `iss`, audience, expiry and the
 * `kubernetes.io` pod/node claims; works where the API server is unreachable, but cannot know a pod was
 * deleted), or online, by the API server's TokenReview plus pod and node lookups as SPIRE does (the HTTP
 * calls: src/worker/attestation/k8s-psat.ts; this module parses their answers). Either way the agent ID and
 * selectors come from what the cluster signed or answered, never from the payload.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import { WispError } from '../errors.js';
import type { Selector } from '../registry/selectors.js';
import { spiffeIdFromSegments, type SpiffeId, type TrustDomain } from '../spiffe/id.js';
import { verifyJwtWithKeySet, type RemoteKeySet } from './remote-key-set.js';

export const K8S_PSAT_TYPE = 'k8s_psat';
/** SPIRE's default `audience`. */
export const K8S_PSAT_DEFAULT_AUDIENCE: readonly string[] = ['spire-server'];
export const K8S_PSAT_TOKEN_MAX_BYTES = 16 * 1024;
/** Asymmetric algorithms the API server signs with; never `none` or HMAC. */
export const K8S_PSAT_ALGORITHMS = ['RS256', 'ES256'];
/** Clock skew allowed on `exp`/`nbf`, seconds. */
export const K8S_PSAT_CLOCK_SKEW_SECONDS = 30;

/** What the token proves about the agent's pod (labels and node IP only from the API server). */
export interface PsatIdentity {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUid: string;
  nodeName: string;
  nodeUid: string;
  nodeIp?: string;
  podLabels?: Record<string, string>;
  nodeLabels?: Record<string, string>;
}

/** The per-cluster policy the identity is checked and turned into an ID and selectors by. */
export interface PsatClusterPolicy {
  serviceAccountAllowList: readonly string[];
  allowedNodeLabelKeys: readonly string[];
  allowedPodLabelKeys: readonly string[];
  usePodUidForAgentId: boolean;
}

export function psatRefused(message: string): WispError {
  return new WispError('ERR_ATTESTATION_FAILED', `${K8S_PSAT_TYPE}: ${message}`);
}

/** A cluster name: one agent ID path segment (SPIRE joins it into the path). */
export const CLUSTER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/;
/** A DNS-1123 subdomain (names of namespaces, service accounts, pods, nodes; node names may be IPs). */
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const UID = /^[A-Za-z0-9-]{1,64}$/;

function field(value: unknown, pattern: RegExp, what: string, where: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw psatRefused(`${where} has no valid ${what}`);
  return value;
}

/** The attestation payload: `{ cluster, token }`. */
export function parsePsatPayload(payload: Record<string, unknown>): { cluster: string; token: string } {
  const { cluster, token } = payload;
  if (typeof cluster !== 'string' || cluster === '') throw new WispError('ERR_BAD_REQUEST', 'k8s_psat payload must have a non-empty string field cluster');
  if (typeof token !== 'string' || token === '') throw new WispError('ERR_BAD_REQUEST', 'k8s_psat payload must have a non-empty string field token');
  if (token.length > K8S_PSAT_TOKEN_MAX_BYTES) throw psatRefused(`token must be at most ${K8S_PSAT_TOKEN_MAX_BYTES} bytes`);
  return { cluster, token };
}

export interface PsatOfflineOptions {
  /** the cluster's keys: a RemoteKeySet (discovery JWKS URL) or an inline set */
  keys: Pick<RemoteKeySet, 'get'>;
  /** the service-account issuer (`--service-account-issuer`), compared with `iss` exactly */
  issuer: string;
  /** the token must name at least one */
  audiences: readonly string[];
  /** ms since the epoch */
  now: number;
}

/** An inline JWK Set (`kubectl get --raw /openid/v1/jwks`) as a key source. */
export function staticKeySet(jwks: JSONWebKeySet): Pick<RemoteKeySet, 'get'> {
  return { get: () => Promise.resolve(jwks) };
}

/** Offline mode: verifies the token with the cluster's keys and returns the pod and node it is bound to. */
export async function verifyPsatOffline(token: string, options: PsatOfflineOptions): Promise<PsatIdentity> {
  const { payload } = await verifyJwtWithKeySet(token, options.keys, {
    now: options.now,
    prefix: K8S_PSAT_TYPE,
    algorithms: K8S_PSAT_ALGORITHMS,
    issuer: options.issuer,
    clockTolerance: K8S_PSAT_CLOCK_SKEW_SECONDS,
    requiredClaims: ['exp', 'sub'],
  });
  // checked here, not by jose, so the refusal names what was expected
  const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
  if (!options.audiences.some((a) => aud.includes(a))) {
    throw psatRefused(`token audience ${JSON.stringify(aud).slice(0, 200)} is not one of the accepted audiences ${JSON.stringify(options.audiences)}`);
  }
  const k8s = (payload as { 'kubernetes.io'?: unknown })['kubernetes.io'];
  if (typeof k8s !== 'object' || k8s === null) throw psatRefused('token has no kubernetes.io claim (not a projected service account token)');
  const c = k8s as { namespace?: unknown; serviceaccount?: { name?: unknown }; pod?: { name?: unknown; uid?: unknown }; node?: { name?: unknown; uid?: unknown } };
  const where = 'token';
  const namespace = field(c.namespace, NAME, 'kubernetes.io namespace', where);
  const serviceAccount = field(c.serviceaccount?.name, NAME, 'kubernetes.io serviceaccount name', where);
  if (payload.sub !== `system:serviceaccount:${namespace}:${serviceAccount}`) throw psatRefused('token sub does not name its kubernetes.io service account');
  if (!c.pod) throw psatRefused('token is not bound to a pod (use a projected token, or kubectl create token --bound-object-kind Pod)');
  if (!c.node) throw psatRefused('token carries no node (the API server must add node claims to pod-bound tokens, Kubernetes 1.30+)');
  return {
    namespace,
    serviceAccount,
    podName: field(c.pod.name, NAME, 'kubernetes.io pod name', where),
    podUid: field(c.pod.uid, UID, 'kubernetes.io pod uid', where),
    nodeName: field(c.node.name, NAME, 'kubernetes.io node name', where),
    nodeUid: field(c.node.uid, UID, 'kubernetes.io node uid', where),
  };
}

const EXTRA = 'authentication.kubernetes.io/';

/**
 * TokenReview mode, step 1: the review's `status` → the service account and pod the token is bound to.
 * `audiences` as requested: when non-empty, the status must confirm one (as SPIRE checks).
 */
export function psatFromTokenReview(status: unknown, audiences: readonly string[]): Pick<PsatIdentity, 'namespace' | 'serviceAccount' | 'podName' | 'podUid'> {
  const s = (typeof status === 'object' && status !== null ? status : {}) as {
    authenticated?: unknown;
    error?: unknown;
    audiences?: unknown;
    user?: { username?: unknown; extra?: Record<string, unknown> };
  };
  if (s.authenticated !== true) {
    const why = typeof s.error === 'string' && s.error !== '' ? ` (${s.error.slice(0, 200)})` : '';
    throw psatRefused(`token not authenticated according to the TokenReview API${why}`);
  }
  if (audiences.length > 0) {
    const got = Array.isArray(s.audiences) ? s.audiences : [];
    if (!audiences.some((a) => got.includes(a))) throw psatRefused(`TokenReview did not confirm an accepted audience ${JSON.stringify(audiences)}`);
  }
  const names = typeof s.user?.username === 'string' ? s.user.username.split(':') : [];
  if (names.length !== 4 || names[0] !== 'system' || names[1] !== 'serviceaccount') throw psatRefused('TokenReview user is not a service account');
  const one = (key: string): unknown => {
    const v = s.user?.extra?.[EXTRA + key];
    return Array.isArray(v) && v.length === 1 ? v[0] : undefined;
  };
  const where = 'TokenReview';
  const podName = one('pod-name');
  if (podName === undefined) throw psatRefused('token is not bound to a pod (use a projected token, or kubectl create token --bound-object-kind Pod)');
  return {
    namespace: field(names[2], NAME, 'namespace', where),
    serviceAccount: field(names[3], NAME, 'service account name', where),
    podName: field(podName, NAME, 'pod name', where),
    podUid: field(one('pod-uid'), UID, 'pod uid', where),
  };
}

type K8sObject = { metadata?: { uid?: unknown; labels?: unknown }; spec?: { nodeName?: unknown }; status?: { hostIP?: unknown } };

function labels(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** TokenReview mode, step 2: the pod (must still have the token's UID) and its node → the full identity. */
export function psatWithPod(bound: ReturnType<typeof psatFromTokenReview>, pod: unknown): Omit<PsatIdentity, 'nodeUid'> {
  const p = (pod ?? {}) as K8sObject;
  if (p.metadata?.uid !== bound.podUid) {
    throw psatRefused(`pod UID mismatch for pod ${bound.namespace}/${bound.podName}: token bound to pod UID ${bound.podUid}`);
  }
  const hostIp = typeof p.status?.hostIP === 'string' && p.status.hostIP !== '' ? { nodeIp: p.status.hostIP } : {};
  return { ...bound, nodeName: field(p.spec?.nodeName, NAME, 'node name', 'pod'), ...hostIp, podLabels: labels(p.metadata?.labels) };
}

export function psatWithNode(withPod: ReturnType<typeof psatWithPod>, node: unknown): PsatIdentity {
  const n = (node ?? {}) as K8sObject;
  return { ...withPod, nodeUid: field(n.metadata?.uid, UID, 'uid', `node ${withPod.nodeName}`), nodeLabels: labels(n.metadata?.labels) };
}

/** Refuses a service account outside the cluster's `serviceAccountAllowList` ("namespace:name"). */
export function checkPsatServiceAccount(cluster: string, id: Pick<PsatIdentity, 'namespace' | 'serviceAccount'>, policy: PsatClusterPolicy): void {
  const sa = `${id.namespace}:${id.serviceAccount}`;
  if (!policy.serviceAccountAllowList.includes(sa)) throw psatRefused(`"${sa}" is not an allowed service account for cluster "${cluster}"`);
}

/** `spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node UID>`, or `.../<cluster>/pod/<pod UID>`. */
export function psatAgentId(td: TrustDomain, cluster: string, id: PsatIdentity, policy: PsatClusterPolicy): SpiffeId {
  const suffix = policy.usePodUidForAgentId ? ['pod', id.podUid] : [id.nodeUid];
  return spiffeIdFromSegments(td, 'spire', 'agent', K8S_PSAT_TYPE, cluster, ...suffix);
}

/** SPIRE's k8s_psat selectors; labels only for the allowed keys, and only where the API server was asked. */
export function psatSelectors(cluster: string, id: PsatIdentity, policy: PsatClusterPolicy): Selector[] {
  const values = [
    `cluster:${cluster}`,
    `agent_ns:${id.namespace}`,
    `agent_sa:${id.serviceAccount}`,
    `agent_pod_name:${id.podName}`,
    `agent_pod_uid:${id.podUid}`,
    ...(id.nodeIp ? [`agent_node_ip:${id.nodeIp}`] : []),
    `agent_node_name:${id.nodeName}`,
    `agent_node_uid:${id.nodeUid}`,
  ];
  for (const [k, v] of Object.entries(id.nodeLabels ?? {})) if (policy.allowedNodeLabelKeys.includes(k)) values.push(`agent_node_label:${k}:${v}`);
  for (const [k, v] of Object.entries(id.podLabels ?? {})) if (policy.allowedPodLabelKeys.includes(k)) values.push(`agent_pod_label:${k}:${v}`);
  return values.map((value) => ({ type: K8S_PSAT_TYPE, value }));
}
