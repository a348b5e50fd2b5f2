// k8s_psat against the real testbed: the real issuer (wrangler dev, K8S_PSAT with one offline-keys cluster
// from the API server's JWKS, one by its JWKS URL and one TokenReview cluster) and real wisp-agent processes
// attesting with tokens the API server issued (the kubelet-projected token of a Running pod, and
// `kubectl create token --bound-object-kind Pod`). Refusals: wrong audience, expired, service account not
// allowed, another cluster's key, and a deleted pod (TokenReview refuses it; offline keys cannot know).
// workerd trusts the testbed's CA through NODE_EXTRA_CA_CERTS (miniflare adds it to outbound fetch's CAs).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { adminCall, startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { createPsatSigner, importPsatSigner, psatClaims, type PsatSigner } from '../helpers/shared/k8s-psat-tokens.js';

const tb = testbed();
const skip = !tb.ready ? tb.skipReason : !tb.node ? tb.nodeSkipReason : undefined;
const TD = 'example.org';
const NS = `wisp-psat-${randomBytes(3).toString('hex')}`;

type AgentRecord = { serialNumber: string; attestationType: string; nodeSelectors: Array<{ type: string; value: string }> };

let env: TestbedEnv;
let root: string;
let issuer: RunningIssuer;
let nodeUid: string;
let agentPod: { name: string; uid: string };
let clusterKey: PsatSigner;
const running: RunningAgent[] = [];

const k = (...args: string[]) => kubectl(env, args);

function podManifest(name: string, sa: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS, labels: { app: 'spire-agent' } },
    spec: {
      serviceAccountName: sa,
      containers: [{ name: 'agent', image: 'ghcr.io/example/wisp-agent:test', volumeMounts: [{ name: 'spire-agent', mountPath: '/var/run/secrets/tokens' }] }],
      volumes: [{ name: 'spire-agent', projected: { sources: [{ serviceAccountToken: { path: 'spire-agent', expirationSeconds: 600, audience: 'spire-server' } }] } }],
    },
  });
}

async function runningPod(name: string, sa: string): Promise<{ name: string; uid: string }> {
  kubectl(env, ['apply', '-f', '-'], podManifest(name, sa));
  return waitFor(`pod ${name} Running`, async () => {
    const pod = JSON.parse(k('get', 'pod', name, '-n', NS, '-o', 'json')) as { metadata: { uid: string }; status: { phase: string } };
    return pod.status.phase === 'Running' ? { name, uid: pod.metadata.uid } : undefined;
  }, 60_000, 500);
}

const createToken = (sa: string, pod: string, audience = 'spire-server') =>
  k('create', 'token', sa, '-n', NS, '--audience', audience, '--bound-object-kind', 'Pod', '--bound-object-name', pod, '--duration', '10m').trim();

/** One attestation straight to the issuer (the refusals: status, code and message). */
async function attest(cluster: string, token: string): Promise<{ status: number; code?: string; message?: string; spiffeId?: string }> {
  const csr = await makeCsr();
  const res = await fetch(`${issuer.url}/agent/v1/attest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ attestationType: 'k8s_psat', payload: { cluster, token }, csr: toBase64(csr.der) }),
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { error?: { code: string; message: string }; svid?: { spiffeId: string } };
  return { status: res.status, code: body.error?.code, message: body.error?.message, spiffeId: body.svid?.spiffeId };
}

async function agentRecord(agentId: string): Promise<AgentRecord | undefined> {
  try {
    return (await adminCall<{ agent: AgentRecord }>(issuer, 'GET', `/agents/${encodeURIComponent(agentId)}`)).agent;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_AGENT_NOT_FOUND') return undefined;
    throw e;
  }
}

async function runAgent(name: string, cluster: string, tokenPath: string): Promise<RunningAgent> {
  const agent = await startAgent({
    serverUrl: issuer.url,
    trustDomain: TD,
    dataDir: join(root, `${name}-data`),
    socketPath: join(root, `${name}.sock`),
    syncIntervalSeconds: 1,
    extraConfig: { k8sPsat: { cluster, tokenPath } },
  });
  running.push(agent);
  return agent;
}

async function attestedAs(agent: RunningAgent, agentId: string): Promise<AgentRecord> {
  try {
    return await waitFor(`the agent to attest as ${agentId}`, () => agentRecord(agentId), 60_000, 500);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- agent output ---\n${agent.output().slice(-3000)}`, { cause: e });
  }
}

/** A workload (this uid) under a node alias of `selector` gets its X509-SVID from the agent. */
async function workloadThroughAlias(agent: RunningAgent, name: string, selector: { type: string; value: string }): Promise<void> {
  const alias = `spiffe://${TD}/node-alias/${name}`;
  const workload = `spiffe://${TD}/workload/${name}`;
  await adminCall(issuer, 'POST', '/entries', { spiffeId: alias, parentId: `spiffe://${TD}/spire/server`, selectors: [selector] });
  await adminCall(issuer, 'POST', '/entries', { spiffeId: workload, parentId: alias, selectors: [{ type: 'unix', value: `uid:${process.getuid?.() ?? 0}` }] });
  const client = createWorkloadApiClient(`unix://${agent.socketPath}`);
  try {
    await waitFor(`an X509-SVID for ${workload}`, async () => {
      const ac = new AbortController();
      for await (const msg of client.fetchX509SVID({ signal: ac.signal })) {
        ac.abort();
        return msg.svids.some((s) => s.spiffeId === workload) ? true : undefined;
      }
      return undefined;
    }, 60_000, 500);
  } finally {
    client.close();
  }
}

const selectors = (r: AgentRecord) => r.nodeSelectors.map((s) => `${s.type}:${s.value}`).sort();

describe.skipIf(skip !== undefined)(`k8s_psat against the testbed${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    if (!tb.ready) return;
    env = tb.env;
    root = mkdtempSync(join(tmpdir(), 'wisp-psat-'));
    k('create', 'namespace', NS);
    k('create', 'serviceaccount', 'spire-agent', '-n', NS);
    k('create', 'serviceaccount', 'intruder', '-n', NS);
    nodeUid = (JSON.parse(k('get', 'node', env.TESTBED_NODE_NAME, '-o', 'json')) as { metadata: { uid: string } }).metadata.uid;
    agentPod = await runningPod('agent', 'spire-agent');
    // every testbed `up` makes a new signing key: read the JWKS now
    const jwks = JSON.parse(k('get', '--raw', '/openid/v1/jwks')) as JSONWebKeySet;
    clusterKey = await importPsatSigner(readFileSync(env.TESTBED_SA_SIGNING_KEY, 'utf8'), jwks);
    const allow = { serviceAccountAllowList: [`${NS}:spire-agent`] };
    const K8S_PSAT = JSON.stringify({
      clusters: {
        offline: { ...allow, issuer: env.TESTBED_SA_ISSUER, jwks },
        discovery: { ...allow, issuer: env.TESTBED_SA_ISSUER, jwksUrl: env.TESTBED_SA_JWKS_URL },
        review: { ...allow, apiServer: env.TESTBED_API_SERVER, token: env.TESTBED_ADMIN_TOKEN, allowedPodLabelKeys: ['app'], allowedNodeLabelKeys: ['kubernetes.io/hostname'] },
      },
    });
    issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD, vars: { K8S_PSAT }, env: { NODE_EXTRA_CA_CERTS: env.TESTBED_CA_CERT } });
  });

  afterAll(async () => {
    await Promise.all(running.map((a) => a.stop()));
    await issuer?.stop();
    if (tb.ready) kubectl(env, ['delete', 'namespace', NS, '--wait=false']);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('offline keys: an agent attests with the kubelet-projected token of its pod, re-reading it on re-attestation', async () => {
    const projected = join(env.TESTBED_KUBELET_ROOT, 'pods', agentPod.uid, 'volumes', 'kubernetes.io~projected', 'spire-agent', 'spire-agent');
    const tokenPath = join(root, 'offline-token');
    writeFileSync(tokenPath, readFileSync(projected));
    const agent = await runAgent('offline', 'offline', tokenPath);
    const agentId = `spiffe://${TD}/spire/agent/k8s_psat/offline/${nodeUid}`;
    const record = await attestedAs(agent, agentId);
    expect(record.attestationType).toBe('k8s_psat');
    expect(selectors(record)).toEqual(
      ['cluster:offline', `agent_ns:${NS}`, 'agent_sa:spire-agent', 'agent_pod_name:agent', `agent_pod_uid:${agentPod.uid}`, `agent_node_name:${env.TESTBED_NODE_NAME}`, `agent_node_uid:${nodeUid}`]
        .map((s) => `k8s_psat:${s}`)
        .sort(),
    );
    // the agent holds that ID: SPIRE-style node aliases on its k8s_psat selectors give it their children
    await workloadThroughAlias(agent, 'psat-offline', { type: 'k8s_psat', value: `agent_ns:${NS}` });
    // not trust on first use: after an eviction the agent attests again, with the token now in the file
    const second = await runningPod('agent-2', 'spire-agent');
    writeFileSync(tokenPath, createToken('spire-agent', 'agent-2'));
    await adminCall(issuer, 'DELETE', `/agents/${encodeURIComponent(agentId)}`);
    const again = await attestedAs(agent, agentId);
    expect(again.serialNumber).not.toBe(record.serialNumber);
    expect(selectors(again)).toContain(`k8s_psat:agent_pod_uid:${second.uid}`);
  });

  it('TokenReview: an agent attests with kubectl create token, with node IP and allowed labels from the API server', async () => {
    const tokenPath = join(root, 'review-token');
    writeFileSync(tokenPath, createToken('spire-agent', 'agent'));
    const agent = await runAgent('review', 'review', tokenPath);
    const record = await attestedAs(agent, `spiffe://${TD}/spire/agent/k8s_psat/review/${nodeUid}`);
    expect(selectors(record)).toEqual(expect.arrayContaining([
      'k8s_psat:cluster:review',
      `k8s_psat:agent_pod_uid:${agentPod.uid}`,
      `k8s_psat:agent_node_uid:${nodeUid}`,
      'k8s_psat:agent_pod_label:app:spire-agent',
      `k8s_psat:agent_node_label:kubernetes.io/hostname:${env.TESTBED_NODE_NAME}`,
    ]));
    expect(selectors(record).some((s) => s.startsWith('k8s_psat:agent_node_ip:'))).toBe(true);
  });

  it('keys by JWKS URL: the issuer fetches the API server\'s keys over TLS it trusts by NODE_EXTRA_CA_CERTS', async () => {
    const r = await attest('discovery', createToken('spire-agent', 'agent'));
    expect(r).toMatchObject({ status: 200, spiffeId: `spiffe://${TD}/spire/agent/k8s_psat/discovery/${nodeUid}` });
  });

  it('refuses wrong audience, expired, service account not allowed and another cluster\'s key with clear errors', async () => {
    const intruderPod = await runningPod('intruder', 'intruder');
    const wrongAud = createToken('spire-agent', 'agent', 'kubernetes');
    const intruder = createToken('intruder', 'intruder');
    const now = Math.floor(Date.now() / 1000);
    const fields = { iss: env.TESTBED_SA_ISSUER, namespace: NS, serviceAccount: 'spire-agent', pod: agentPod, node: { name: env.TESTBED_NODE_NAME, uid: nodeUid } };
    const expired = await clusterKey.sign(psatClaims(fields), { iat: now - 1200, exp: now - 600 });
    const stranger = await createPsatSigner('RS256', clusterKey.kid);
    const otherCluster = await stranger.sign(psatClaims(fields));
    const expectRefused = async (cluster: string, token: string, message: RegExp) =>
      expect(await attest(cluster, token)).toMatchObject({ status: 401, code: 'ERR_ATTESTATION_FAILED', message: expect.stringMatching(message) });
    await expectRefused('offline', wrongAud, /k8s_psat: token audience \["kubernetes"\] is not one of the accepted audiences \["spire-server"\]/);
    await expectRefused('review', wrongAud, /k8s_psat: token not authenticated according to the TokenReview API/);
    await expectRefused('offline', expired, /k8s_psat: token has expired/);
    await expectRefused('review', expired, /k8s_psat: token not authenticated according to the TokenReview API/);
    await expectRefused('offline', intruder, new RegExp(`"${NS}:intruder" is not an allowed service account for cluster "offline"`));
    await expectRefused('review', intruder, new RegExp(`"${NS}:intruder" is not an allowed service account for cluster "review"`));
    await expectRefused('offline', otherCluster, /k8s_psat: token signature is invalid/);
    await expectRefused('review', otherCluster, /k8s_psat: token not authenticated according to the TokenReview API/);
    expect(intruderPod.uid).not.toBe(agentPod.uid);
  });

  it('a real agent is refused with the issuer\'s reason and ends', async () => {
    const tokenPath = join(root, 'refused-token');
    writeFileSync(tokenPath, createToken('spire-agent', 'agent', 'kubernetes'));
    let output = '';
    try {
      const agent = await runAgent('refused', 'offline', tokenPath);
      await waitFor('the agent to give up', async () => ((output = agent.output()), agent.process.exitCode !== null ? true : undefined), 60_000, 200);
    } catch (e) {
      output = (e as Error).message; // it may exit before its socket is seen: startAgent's error carries its output
    }
    expect(output).toMatch(/node attestation \(k8s_psat\) refused \(ERR_ATTESTATION_FAILED\).*is not one of the accepted audiences/);
  });

  it('a token bound to a deleted pod: TokenReview refuses it (within the API server\'s 10 s cache), offline keys cannot know', async () => {
    await runningPod('doomed', 'spire-agent');
    const token = createToken('spire-agent', 'doomed');
    expect((await attest('review', token)).status).toBe(200);
    k('delete', 'pod', 'doomed', '-n', NS, '--grace-period=0', '--force');
    const refusal = await waitFor('TokenReview mode to refuse the deleted pod\'s token', async () => {
      const r = await attest('review', token);
      return r.status === 200 ? undefined : r;
    }, 30_000, 500);
    expect(refusal).toMatchObject({ status: 401, code: 'ERR_ATTESTATION_FAILED' });
    expect(refusal.message).toMatch(/pod .*doomed the token is bound to no longer exists|not authenticated according to the TokenReview API/);
    // the signature, claims and expiry are all still valid: offline validation accepts it until it expires
    expect((await attest('offline', token)).status).toBe(200);
  });
});
