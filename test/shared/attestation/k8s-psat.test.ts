// k8s_psat's pure part on both runtimes: offline verification of projected service account tokens signed
// with generated keys (RS256 and ES256), the refusals (audience, issuer, expiry, unbound, other keys, HMAC),
// TokenReview/pod/node answers, the allow-list, agent IDs and SPIRE's selectors.
import { SignJWT, type JWTPayload } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  checkPsatServiceAccount,
  psatAgentId,
  psatFromTokenReview,
  psatSelectors,
  psatWithNode,
  psatWithPod,
  staticKeySet,
  verifyPsatOffline,
  type PsatClusterPolicy,
} from '../../../src/shared/attestation/k8s-psat.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';
import { createPsatSigner, psatClaims } from '../../helpers/shared/k8s-psat-tokens.js';

const TD = parseTrustDomain('example.org');
const ISS = 'https://kubernetes.default.svc';
const POD_UID = '0b5a7e3c-5a5e-4bd4-9b0a-6f5d2f0e2a11';
const NODE_UID = '7d1e2f3a-1111-4222-8333-944455556666';
const POLICY: PsatClusterPolicy = { serviceAccountAllowList: ['spire:spire-agent'], allowedNodeLabelKeys: ['zone'], allowedPodLabelKeys: ['app'], usePodUidForAgentId: false };

const signer = (alg: 'RS256' | 'ES256', kid: string) => createPsatSigner(alg, kid);

const BOUND = { iss: ISS, namespace: 'spire', serviceAccount: 'spire-agent', pod: { name: 'spire-agent-x7k2p', uid: POD_UID }, node: { name: 'node-1', uid: NODE_UID } };
const claims = (over: Record<string, unknown> = {}, k8s: Record<string, unknown> = {}): JWTPayload => {
  const c = psatClaims(BOUND);
  return { ...c, 'kubernetes.io': { ...(c['kubernetes.io'] as object), ...k8s }, ...over };
};

describe('k8s_psat offline verification', () => {
  it('returns the pod and node a valid RS256 or ES256 token is bound to', async () => {
    for (const alg of ['RS256', 'ES256'] as const) {
      const s = await signer(alg, `k-${alg}`);
      const id = await verifyPsatOffline(await s.sign(claims()), { keys: staticKeySet(s.jwks), issuer: ISS, audiences: ['spire-server'], now: Date.now() });
      expect(id).toEqual({ namespace: 'spire', serviceAccount: 'spire-agent', podName: 'spire-agent-x7k2p', podUid: POD_UID, nodeName: 'node-1', nodeUid: NODE_UID });
    }
  });

  it('refuses the wrong audience, issuer, an expired token, another cluster\'s key and an HMAC token', async () => {
    const s = await signer('RS256', 'k1');
    const other = await signer('RS256', 'k1'); // another cluster's key under the same kid
    const opts = { keys: staticKeySet(s.jwks), issuer: ISS, audiences: ['spire-server'], now: Date.now() };
    await expect(verifyPsatOffline(await s.sign(claims({ aud: ['api'] })), opts)).rejects.toThrow(/k8s_psat: token audience \["api"\] is not one of the accepted audiences \["spire-server"\]/);
    await expect(verifyPsatOffline(await s.sign(claims({ iss: 'https://other' })), opts)).rejects.toThrow(/k8s_psat: token claim iss is invalid/);
    const old = Math.floor(Date.now() / 1000) - 3600;
    await expect(verifyPsatOffline(await s.sign(claims(), { iat: old, exp: old + 600 }), opts)).rejects.toThrow(/k8s_psat: token has expired/);
    await expect(verifyPsatOffline(await other.sign(claims()), opts)).rejects.toThrow(/k8s_psat: token signature is invalid/);
    await expect(verifyPsatOffline(await s.sign(claims(), { kid: 'k2' }), opts)).rejects.toThrow(/signed by an unknown key \(kid k2\)/);
    const hmac = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setExpirationTime('10m').sign(new Uint8Array(32));
    await expect(verifyPsatOffline(hmac, opts)).rejects.toThrow(/k8s_psat: token algorithm is not allowed/);
  });

  it('allows a small clock skew on exp, not more', async () => {
    const s = await signer('RS256', 'k1');
    const opts = { keys: staticKeySet(s.jwks), issuer: ISS, audiences: ['spire-server'] };
    const exp = Math.floor(Date.now() / 1000);
    const token = await s.sign(claims(), { iat: exp - 600, exp });
    await expect(verifyPsatOffline(token, { ...opts, now: (exp + 20) * 1000 })).resolves.toMatchObject({ nodeUid: NODE_UID });
    await expect(verifyPsatOffline(token, { ...opts, now: (exp + 40) * 1000 })).rejects.toThrow(/expired/);
  });

  it('refuses tokens not bound to a pod and node, and claims that do not agree', async () => {
    const s = await signer('RS256', 'k1');
    const opts = { keys: staticKeySet(s.jwks), issuer: ISS, audiences: ['spire-server'], now: Date.now() };
    await expect(verifyPsatOffline(await s.sign(claims({}, { pod: undefined })), opts)).rejects.toThrow(/token is not bound to a pod/);
    await expect(verifyPsatOffline(await s.sign(claims({}, { node: undefined })), opts)).rejects.toThrow(/token carries no node/);
    await expect(verifyPsatOffline(await s.sign(claims({ 'kubernetes.io': undefined })), opts)).rejects.toThrow(/no kubernetes.io claim/);
    await expect(verifyPsatOffline(await s.sign(claims({ sub: 'system:serviceaccount:kube-system:default' })), opts)).rejects.toThrow(/sub does not name/);
    await expect(verifyPsatOffline(await s.sign(claims({}, { node: { name: 'node-1', uid: '../x' } })), opts)).rejects.toThrow(/no valid kubernetes.io node uid/);
  });
});

describe('k8s_psat TokenReview answers', () => {
  const review = (over: Record<string, unknown> = {}) => ({
    authenticated: true,
    audiences: ['spire-server'],
    user: { username: 'system:serviceaccount:spire:spire-agent', extra: { 'authentication.kubernetes.io/pod-name': ['spire-agent-x7k2p'], 'authentication.kubernetes.io/pod-uid': [POD_UID] } },
    ...over,
  });
  const pod = { metadata: { uid: POD_UID, labels: { app: 'spire-agent', other: 'x' } }, spec: { nodeName: 'node-1' }, status: { hostIP: '10.0.0.5' } };
  const node = { metadata: { uid: NODE_UID, labels: { zone: 'a', rack: '7' } } };

  it('builds the identity from the review, the pod and its node', () => {
    const id = psatWithNode(psatWithPod(psatFromTokenReview(review(), ['spire-server']), pod), node);
    expect(id).toEqual({ namespace: 'spire', serviceAccount: 'spire-agent', podName: 'spire-agent-x7k2p', podUid: POD_UID, nodeName: 'node-1', nodeUid: NODE_UID, nodeIp: '10.0.0.5', podLabels: { app: 'spire-agent', other: 'x' }, nodeLabels: { zone: 'a', rack: '7' } });
  });

  it('refuses unauthenticated tokens, unconfirmed audiences, unbound tokens and a replaced pod', () => {
    expect(() => psatFromTokenReview(review({ authenticated: false, error: 'token has been invalidated' }), [])).toThrow(/not authenticated according to the TokenReview API \(token has been invalidated\)/);
    expect(() => psatFromTokenReview(review({ audiences: ['api'] }), ['spire-server'])).toThrow(/did not confirm an accepted audience/);
    expect(() => psatFromTokenReview(review({ user: { username: 'system:serviceaccount:spire:spire-agent', extra: {} } }), [])).toThrow(/not bound to a pod/);
    expect(() => psatFromTokenReview(review({ user: { username: 'alice' } }), [])).toThrow(/not a service account/);
    const bound = psatFromTokenReview(review(), ['spire-server']);
    expect(() => psatWithPod(bound, { ...pod, metadata: { uid: 'another-uid' } })).toThrow(/pod UID mismatch for pod spire\/spire-agent-x7k2p/);
  });
});

describe('k8s_psat policy, agent ID and selectors', () => {
  const id = { namespace: 'spire', serviceAccount: 'spire-agent', podName: 'p', podUid: POD_UID, nodeName: 'node-1', nodeUid: NODE_UID, nodeIp: '10.0.0.5', podLabels: { app: 'a', x: 'y' }, nodeLabels: { zone: 'z', rack: '1' } };
  it('allows only listed service accounts', () => {
    expect(() => checkPsatServiceAccount('prod', id, POLICY)).not.toThrow();
    expect(() => checkPsatServiceAccount('prod', { ...id, serviceAccount: 'default' }, POLICY)).toThrow(/"spire:default" is not an allowed service account for cluster "prod"/);
  });
  it('names the node UID, or pod/<pod UID>, under /spire/agent/k8s_psat/<cluster>/', () => {
    expect(psatAgentId(TD, 'prod', id, POLICY)).toBe(`spiffe://example.org/spire/agent/k8s_psat/prod/${NODE_UID}`);
    expect(psatAgentId(TD, 'prod', id, { ...POLICY, usePodUidForAgentId: true })).toBe(`spiffe://example.org/spire/agent/k8s_psat/prod/pod/${POD_UID}`);
  });
  it('produces SPIRE\'s selectors, labels only for allowed keys', () => {
    expect(psatSelectors('prod', id, POLICY).map((s) => `${s.type}:${s.value}`)).toEqual([
      'k8s_psat:cluster:prod',
      'k8s_psat:agent_ns:spire',
      'k8s_psat:agent_sa:spire-agent',
      'k8s_psat:agent_pod_name:p',
      `k8s_psat:agent_pod_uid:${POD_UID}`,
      'k8s_psat:agent_node_ip:10.0.0.5',
      'k8s_psat:agent_node_name:node-1',
      `k8s_psat:agent_node_uid:${NODE_UID}`,
      'k8s_psat:agent_node_label:zone:z',
      'k8s_psat:agent_pod_label:app:a',
    ]);
  });
});
