// k8s_psat through the agent routes in workerd: offline mode with a cluster key set (inline and by URL),
// TokenReview mode against a fake API server (review, pod and node lookups, reviewer token), refusals
// with nothing signed, re-attestation of the same node, and K8S_PSAT config errors.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { TD } from '../../helpers/workerd/agent-client.js';
import { createCloudHarness, jwksServer, type CloudHarness } from '../../helpers/workerd/attestation-harness.js';
import { createPsatSigner, psatClaims, type PsatSigner } from '../../helpers/shared/k8s-psat-tokens.js';

const ISS = 'https://oidc.prod.example';
const KEYS_URL = 'http://127.0.0.1:9/openid/v1/jwks';
const API = 'https://127.0.0.1:6443';
const REVIEWER = 'reviewer-token-0123456789';
let cluster: PsatSigner;
let other: PsatSigner;
let offline: CloudHarness;

const uid = () => crypto.randomUUID();
const bound = (over: { sa?: string; aud?: string[]; pod?: { name: string; uid: string }; node?: { name: string; uid: string } } = {}) =>
  psatClaims({ iss: ISS, aud: over.aud, namespace: 'spire', serviceAccount: over.sa ?? 'spire-agent', pod: over.pod ?? { name: 'agent-1', uid: uid() }, node: over.node ?? { name: 'node-1', uid: uid() } });

beforeAll(async () => {
  [cluster, other] = await Promise.all([createPsatSigner('RS256', 'prod-1'), createPsatSigner('RS256', 'other-1')]);
  offline = await createCloudHarness({
    K8S_PSAT: JSON.stringify({
      clusters: {
        prod: { serviceAccountAllowList: ['spire:spire-agent'], issuer: ISS, jwks: cluster.jwks },
        pods: { serviceAccountAllowList: ['spire:spire-agent'], issuer: ISS, jwksUrl: KEYS_URL, usePodUidForAgentId: true },
      },
    }),
  }, jwksServer({ [KEYS_URL]: () => cluster.jwks }).fetch);
});

describe('k8s_psat offline keys', () => {
  it('issues spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node uid> with SPIRE\'s selectors, and lets the node attest again', async () => {
    const node = { name: 'node-1', uid: uid() };
    const pod = { name: 'agent-1', uid: uid() };
    const token = await cluster.sign(bound({ pod, node }), { iat: Math.floor(offline.clock.nowMs / 1000) });
    const agent = await offline.attest('k8s_psat', { cluster: 'prod', token });
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/k8s_psat/prod/${node.uid}`);
    expect(agent.selectors.sort()).toEqual(
      ['cluster:prod', 'agent_ns:spire', 'agent_sa:spire-agent', `agent_pod_name:${pod.name}`, `agent_pod_uid:${pod.uid}`, `agent_node_name:${node.name}`, `agent_node_uid:${node.uid}`].map((s) => `k8s_psat:${s}`).sort(),
    );
    // PSAT is not trust on first use: the same node attests again with the next projected token
    const next = await cluster.sign(bound({ pod: { name: 'agent-2', uid: uid() }, node }), { iat: Math.floor(offline.clock.nowMs / 1000) });
    expect((await offline.attest('k8s_psat', { cluster: 'prod', token: next })).agentId).toBe(agent.agentId);
  });

  it('takes the ID from the token: a token naming another node yields that node\'s ID only', async () => {
    const a = { name: 'node-a', uid: uid() };
    const token = await cluster.sign(bound({ node: a }), { iat: Math.floor(offline.clock.nowMs / 1000) });
    expect((await offline.attest('k8s_psat', { cluster: 'prod', token })).agentId).toBe(`spiffe://${TD}/spire/agent/k8s_psat/prod/${a.uid}`);
  });

  it('uses pod/<pod uid> with usePodUidForAgentId, keys fetched from the JWKS URL', async () => {
    const pod = { name: 'agent-9', uid: uid() };
    const token = await cluster.sign(bound({ pod }), { iat: Math.floor(offline.clock.nowMs / 1000) });
    expect((await offline.attest('k8s_psat', { cluster: 'pods', token })).agentId).toBe(`spiffe://${TD}/spire/agent/k8s_psat/pods/pod/${pod.uid}`);
  });

  it('refuses with clear errors and signs nothing', async () => {
    const now = Math.floor(offline.clock.nowMs / 1000);
    const refused = (payload: unknown, m: RegExp) => offline.expectRefused('k8s_psat', payload, 401, 'ERR_ATTESTATION_FAILED', m);
    await refused({ cluster: 'prod', token: await cluster.sign(bound({ aud: ['kubernetes'] }), { iat: now }) }, /audience \["kubernetes"\] is not one of the accepted audiences \["spire-server"\]/);
    await refused({ cluster: 'prod', token: await cluster.sign(bound(), { iat: now - 7200, exp: now - 6600 }) }, /k8s_psat: token has expired/);
    await refused({ cluster: 'prod', token: await cluster.sign(bound({ sa: 'default' }), { iat: now }) }, /"spire:default" is not an allowed service account for cluster "prod"/);
    await refused({ cluster: 'prod', token: await other.sign(bound(), { iat: now, kid: 'prod-1' }) }, /k8s_psat: token signature is invalid/);
    await refused({ cluster: 'prod', token: await other.sign(bound(), { iat: now }) }, /signed by an unknown key \(kid other-1\)/);
    await refused({ cluster: 'staging', token: await cluster.sign(bound(), { iat: now }) }, /k8s_psat: not configured for cluster "staging"/);
    const unbound = psatClaims({ iss: ISS, namespace: 'spire', serviceAccount: 'spire-agent' });
    await refused({ cluster: 'prod', token: await cluster.sign(unbound, { iat: now }) }, /token is not bound to a pod/);
    await offline.expectRefused('k8s_psat', { cluster: 'prod' }, 400, 'ERR_BAD_REQUEST', /non-empty string field token/);
  });
});

/** A fake API server: TokenReview of tokens it "issued", pods and nodes; counts calls; checks the reviewer token. */
function fakeApiServer() {
  const tokens = new Map<string, { sa: string; pod: string; podUid: string; aud: string[] }>();
  const pods = new Map<string, { uid: string; node: string; labels: Record<string, string> }>();
  const nodes = new Map<string, { uid: string; labels: Record<string, string> }>();
  const calls: string[] = [];
  const fetchImpl = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const path = new URL(req.url).pathname;
    calls.push(`${req.method} ${path}`);
    if (req.headers.get('authorization') !== `Bearer ${REVIEWER}`) return Response.json({ kind: 'Status', code: 401 }, { status: 401 });
    if (req.method === 'POST' && path === '/apis/authentication.k8s.io/v1/tokenreviews') {
      const { spec } = (await req.json()) as { spec: { token: string; audiences: string[] } };
      const t = tokens.get(spec.token);
      const aud = t?.aud.filter((a) => spec.audiences.includes(a)) ?? [];
      if (!t || aud.length === 0) return Response.json({ status: { authenticated: false, error: '[invalid bearer token]' } }, { status: 201 });
      const extra = { 'authentication.kubernetes.io/pod-name': [t.pod], 'authentication.kubernetes.io/pod-uid': [t.podUid] };
      return Response.json({ status: { authenticated: true, audiences: aud, user: { username: `system:serviceaccount:spire:${t.sa}`, extra } } }, { status: 201 });
    }
    const pod = /^\/api\/v1\/namespaces\/spire\/pods\/([^/]+)$/.exec(path);
    if (pod) {
      const p = pods.get(pod[1]!);
      return p ? Response.json({ metadata: { name: pod[1], uid: p.uid, labels: p.labels }, spec: { nodeName: p.node }, status: { hostIP: '10.1.2.3' } }) : Response.json({ code: 404 }, { status: 404 });
    }
    const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path);
    const n = node && nodes.get(node[1]!);
    return n ? Response.json({ metadata: { uid: n.uid, labels: n.labels } }) : Response.json({ code: 404 }, { status: 404 });
  }) as typeof fetch;
  return { tokens, pods, nodes, calls, fetch: fetchImpl };
}

describe('k8s_psat TokenReview', () => {
  const config = (over: Record<string, unknown> = {}) =>
    JSON.stringify({ clusters: { live: { serviceAccountAllowList: ['spire:spire-agent'], apiServer: API, token: REVIEWER, allowedNodeLabelKeys: ['zone'], allowedPodLabelKeys: ['app'], ...over } } });

  it('reviews the token, reads the pod and node, and adds node IP and allowed labels', async () => {
    const api = fakeApiServer();
    const c = await createCloudHarness({ K8S_PSAT: config() }, api.fetch);
    const nodeUid = uid();
    api.nodes.set('node-1', { uid: nodeUid, labels: { zone: 'eu-1', rack: '4' } });
    api.pods.set('agent-1', { uid: 'pod-uid-1', node: 'node-1', labels: { app: 'spire-agent', tier: 'x' } });
    api.tokens.set('tok-1', { sa: 'spire-agent', pod: 'agent-1', podUid: 'pod-uid-1', aud: ['spire-server'] });
    const agent = await c.attest('k8s_psat', { cluster: 'live', token: 'tok-1' });
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/k8s_psat/live/${nodeUid}`);
    expect(agent.selectors).toEqual(expect.arrayContaining(['k8s_psat:agent_node_ip:10.1.2.3', 'k8s_psat:agent_node_label:zone:eu-1', 'k8s_psat:agent_pod_label:app:spire-agent', 'k8s_psat:agent_pod_uid:pod-uid-1']));
    expect(agent.selectors.some((s) => s.includes('rack') || s.includes('tier'))).toBe(false);
    expect(api.calls).toEqual(['POST /apis/authentication.k8s.io/v1/tokenreviews', 'GET /api/v1/namespaces/spire/pods/agent-1', 'GET /api/v1/nodes/node-1']);
  });

  it('refuses an unauthenticated token, a deleted or replaced pod and a disallowed account (before any lookup)', async () => {
    const api = fakeApiServer();
    const c = await createCloudHarness({ K8S_PSAT: config() }, api.fetch);
    api.nodes.set('node-1', { uid: uid(), labels: {} });
    api.tokens.set('gone', { sa: 'spire-agent', pod: 'agent-gone', podUid: 'u-gone', aud: ['spire-server'] });
    api.tokens.set('replaced', { sa: 'spire-agent', pod: 'agent-r', podUid: 'u-old', aud: ['spire-server'] });
    api.pods.set('agent-r', { uid: 'u-new', node: 'node-1', labels: {} });
    api.tokens.set('default', { sa: 'default', pod: 'agent-r', podUid: 'u-new', aud: ['spire-server'] });
    api.tokens.set('other-aud', { sa: 'spire-agent', pod: 'agent-r', podUid: 'u-new', aud: ['api'] });
    const refused = (token: string, m: RegExp) => c.expectRefused('k8s_psat', { cluster: 'live', token }, 401, 'ERR_ATTESTATION_FAILED', m);
    await refused('forged', /token not authenticated according to the TokenReview API \(\[invalid bearer token\]\)/);
    await refused('other-aud', /not authenticated/);
    await refused('gone', /pod spire\/agent-gone the token is bound to no longer exists/);
    await refused('replaced', /pod UID mismatch for pod spire\/agent-r: token bound to pod UID u-old/);
    const before = api.calls.length;
    await refused('default', /"spire:default" is not an allowed service account/);
    expect(api.calls.slice(before)).toEqual(['POST /apis/authentication.k8s.io/v1/tokenreviews']);
  });

  it('answers 503 when the API server refuses the reviewer, and never echoes its token', async () => {
    const api = fakeApiServer();
    const c = await createCloudHarness({ K8S_PSAT: config({ token: 'wrong-reviewer-token' }) }, api.fetch);
    const res = await c.attestRaw('k8s_psat', { cluster: 'live', token: 'tok' });
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(text).toMatch(/answered HTTP 401 \(check the reviewer token and its RBAC\)/);
    expect(text).not.toContain('wrong-reviewer-token');
  });
});

describe('K8S_PSAT config', () => {
  const parse = (K8S_PSAT: unknown) => () => parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, K8S_PSAT: JSON.stringify(K8S_PSAT) });
  const sa = { serviceAccountAllowList: ['spire:spire-agent'] };
  it('names the bad key', () => {
    expect(parse({ clusters: {} })).toThrow(/^K8S_PSAT\.clusters: must configure at least one cluster/);
    expect(parse({ clusters: { 'a/b': { ...sa, apiServer: API, token: 't' } } })).toThrow(/^K8S_PSAT\.clusters\.a\/b: must be a cluster name/);
    expect(parse({ clusters: { c: { apiServer: API, token: 't' } } })).toThrow(/^K8S_PSAT\.clusters\.c\.serviceAccountAllowList: must allow at least one service account/);
    expect(parse({ clusters: { c: { serviceAccountAllowList: ['spire-agent'], apiServer: API, token: 't' } } })).toThrow(/serviceAccountAllowList\[0\]: must be a "namespace:name" service account/);
    expect(parse({ clusters: { c: { ...sa } } })).toThrow(/^K8S_PSAT\.clusters\.c: needs jwks or jwksUrl \(offline keys\), or apiServer and token \(TokenReview\)/);
    expect(parse({ clusters: { c: { ...sa, jwks: { keys: [{ kty: 'RSA', n: 'x', e: 'AQAB' }] } } } })).toThrow(/^K8S_PSAT\.clusters\.c: issuer is required/);
    expect(parse({ clusters: { c: { ...sa, issuer: ISS, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } } } })).toThrow(/^K8S_PSAT\.clusters\.c\.jwks: must be a JWK Set .* of RSA or EC public keys/);
    expect(parse({ clusters: { c: { ...sa, issuer: ISS, jwksUrl: 'http://keys.example/jwks' } } })).toThrow(/^K8S_PSAT\.clusters\.c\.jwksUrl: must be https/);
    expect(parse({ clusters: { c: { ...sa, issuer: ISS, jwksUrl: KEYS_URL, apiServer: API, token: 't' } } })).toThrow(/not both/);
    expect(parse({ clusters: { c: { ...sa, issuer: ISS, jwksUrl: KEYS_URL, audience: [] } } })).toThrow(/audience must name at least one audience/);
    expect(parse({ clusters: { c: { ...sa, apiServer: API, token: 't', allowReattestation: true } } })).toThrow(/allowReattestation: unknown key/);
  });
});
