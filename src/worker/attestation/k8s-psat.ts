/**
 * The k8s_psat node attestor (issuer side): payload `{ cluster, token }`, a projected service account token.
 * Per cluster (K8S_PSAT), offline by the service-account issuer's keys, or online by the API server:
 * TokenReview, then GET the pod (its UID must still be the token's: a deleted pod fails) and its node, as
 * SPIRE does. Re-attestation is allowed (SPIRE: CanReattest): the token is short-lived and re-projected, and
 * the ID comes from its claims, so a token for another node only ever yields that node's ID.
 * workerd's fetch takes no per-request CA: the API server must present a certificate the runtime trusts.
 * @module
 */
import {
  checkPsatServiceAccount,
  K8S_PSAT_TYPE,
  parsePsatPayload,
  psatAgentId,
  psatFromTokenReview,
  psatRefused,
  psatSelectors,
  psatWithNode,
  psatWithPod,
  staticKeySet,
  verifyPsatOffline,
  type PsatIdentity,
} from '../../shared/attestation/k8s-psat.js';
import { RemoteKeySet } from '../../shared/attestation/remote-key-set.js';
import { WispError } from '../../shared/errors.js';
import type { K8sPsatClusterConfig, K8sPsatConfig } from './cloud-config.js';
import type { NodeAttestor } from './types.js';

export const K8S_API_TIMEOUT_MS = 10_000;
const K8S_API_MAX_BYTES = 1024 * 1024;

type Verify = (token: string, nowMs: number) => Promise<PsatIdentity>;
/** the allow-list check, run before any pod or node lookup */
type CheckAccount = (bound: Pick<PsatIdentity, 'namespace' | 'serviceAccount'>) => void;

/** One API server call: JSON in and out, the reviewer's bearer token, no redirects; 404 → undefined. */
async function apiCall(fetchImpl: typeof fetch, apiServer: string, token: string, path: string, body?: unknown): Promise<unknown> {
  const what = `the Kubernetes API server (${body === undefined ? 'GET' : 'POST'} ${path.split('/').slice(0, 4).join('/')}...)`;
  let res: Response;
  try {
    res = await fetchImpl(`${apiServer}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(K8S_API_TIMEOUT_MS),
      redirect: 'manual',
    });
  } catch (e) {
    throw new WispError('ERR_UNAVAILABLE', `k8s_psat: ${what} could not be reached (${e instanceof Error && e.name === 'TimeoutError' ? 'timeout' : 'network or TLS error'})`);
  }
  const text = await res.text();
  if (res.status === 404) return undefined;
  if (!res.ok) throw new WispError('ERR_UNAVAILABLE', `k8s_psat: ${what} answered HTTP ${res.status}${res.status === 401 || res.status === 403 ? ' (check the reviewer token and its RBAC)' : ''}`);
  if (text.length > K8S_API_MAX_BYTES) throw new WispError('ERR_UNAVAILABLE', `k8s_psat: ${what} answered more than ${K8S_API_MAX_BYTES} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new WispError('ERR_UNAVAILABLE', `k8s_psat: ${what} did not answer JSON`);
  }
}

function tokenReviewVerifier(cluster: string, config: K8sPsatClusterConfig & { validation: { mode: 'tokenReview' } }, check: CheckAccount, fetchImpl: typeof fetch): Verify {
  const { apiServer, token: reviewer } = config.validation;
  const call = (path: string, body?: unknown) => apiCall(fetchImpl, apiServer, reviewer, path, body);
  return async (token) => {
    const review = (await call('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, audiences: config.audience },
    })) as { status?: unknown } | undefined;
    if (!review) throw new WispError('ERR_UNAVAILABLE', `k8s_psat: the API server of cluster "${cluster}" has no TokenReview API`);
    const bound = psatFromTokenReview(review.status, config.audience);
    check(bound);
    const pod = await call(`/api/v1/namespaces/${encodeURIComponent(bound.namespace)}/pods/${encodeURIComponent(bound.podName)}`);
    if (pod === undefined) throw psatRefused(`pod ${bound.namespace}/${bound.podName} the token is bound to no longer exists`);
    const withPod = psatWithPod(bound, pod);
    const node = await call(`/api/v1/nodes/${encodeURIComponent(withPod.nodeName)}`);
    if (node === undefined) throw psatRefused(`node ${withPod.nodeName} of pod ${bound.namespace}/${bound.podName} does not exist`);
    return psatWithNode(withPod, node);
  };
}

function offlineVerifier(config: K8sPsatClusterConfig & { validation: { mode: 'keys' } }, check: CheckAccount, fetchImpl: typeof fetch | undefined): Verify {
  const { issuer, jwks, jwksUrl } = config.validation;
  // made once per app (createAppDeps): the key cache lives as long as the isolate
  const keys = jwks ? staticKeySet(jwks) : new RemoteKeySet({ url: jwksUrl!, fetch: fetchImpl });
  return async (token, now) => {
    const id = await verifyPsatOffline(token, { keys, issuer, audiences: config.audience, now });
    check(id);
    return id;
  };
}

export function createK8sPsatAttestor(config: K8sPsatConfig, fetchImpl?: typeof fetch): NodeAttestor {
  const doFetch = fetchImpl ?? ((input, init) => fetch(input, init));
  const clusters = new Map(
    Object.entries(config.clusters).map(([name, c]) => {
      const check: CheckAccount = (bound) => checkPsatServiceAccount(name, bound, c);
      const verify =
        c.validation.mode === 'keys' ? offlineVerifier({ ...c, validation: c.validation }, check, fetchImpl) : tokenReviewVerifier(name, { ...c, validation: c.validation }, check, doFetch);
      return [name, { config: c, verify }];
    }),
  );
  return {
    type: K8S_PSAT_TYPE,
    async attest(payload, ctx) {
      const { cluster, token } = parsePsatPayload(payload);
      const entry = clusters.get(cluster);
      if (!entry) throw psatRefused(`not configured for cluster "${cluster.slice(0, 64)}"`);
      const id = await entry.verify(token, ctx.now * 1000);
      return { agentId: psatAgentId(ctx.trustDomain, cluster, id, entry.config), selectors: psatSelectors(cluster, id, entry.config), allowReattestation: true };
    },
  };
}
