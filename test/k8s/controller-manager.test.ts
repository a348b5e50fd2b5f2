// wisp-controller-manager end to end on the testbed: the upstream spire-controller-manager CRDs applied
// unchanged (from ../shared), the real issuer (wrangler dev, K8S_PSAT with the cluster's keys), a real
// wisp-agent attested with k8s_psat on the testbed node (so entries' parent is that agent's ID), and two
// controller replicas sharing one Lease. A ClusterSPIFFEID selects a Deployment's pod: its entry appears,
// moves with a label change, a spec that does not parse shows as a Warning Event, a hand-made entry and a hand-made relationship stay untouched, a
// ClusterFederatedTrustDomain becomes a relationship and goes with it, status stats are written, only the
// leader writes (the replicas use different admin credentials, a token and a JWT-SVID from the agent, and the
// audit log shows which wrote), and after the leader is killed the other replica takes over.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, REPO_ROOT, startAgent, startIssuer, stopProcess, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { fetchAdminJwtSvid } from '../../src/node/workload-api/admin-jwt.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';

const tb = testbed();
const skip = !tb.ready ? tb.skipReason : !tb.node ? tb.nodeSkipReason : undefined;
const TD = 'example.org';
const RUN = randomBytes(3).toString('hex');
const NS = `wisp-cm-${RUN}`;
const CLUSTER = `cm-${RUN}`;
const CLASS = `wisp-e2e-${RUN}`;
const LEASE = `wisp-cm-lease-${RUN}`;
const CRD_DIR = resolve(REPO_ROOT, '..', 'shared', 'kubernetes', 'spire-controller-manager', 'config', 'crd', 'bases');
const PARTNER_TD = `partner-${RUN}.test`;
/** replica b authenticates with an admin JWT-SVID of this ID from the agent; replica a with the admin token */
const CONTROLLER_B_ID = `spiffe://${TD}/ops/controller-manager-${RUN}`;

type ApiEntry = { id: string; spiffeId: string; parentId: string; selectors: { type: string; value: string }[] };
type Stats = Record<string, number>;

interface Replica {
  name: string;
  /** the admin principal the issuer's audit log records for it */
  principal: string;
  process: ChildProcess;
  output(): string;
  identity(): string | undefined;
}

let env: TestbedEnv;
let root: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let agentId: string;
const replicas: Replica[] = [];

const k = (...args: string[]) => kubectl(env, args);
const apply = (doc: unknown) => kubectl(env, ['apply', '-f', '-'], JSON.stringify(doc));

async function entries(): Promise<ApiEntry[]> {
  return (await adminCall<{ entries: ApiEntry[] }>(issuer, 'GET', '/entries?pageSize=1000')).entries;
}
const podEntry = async (uid: string) => (await entries()).find((e) => e.selectors.some((s) => s.type === 'k8s' && s.value === `pod-uid:${uid}`));

function startReplica(name: string, credential: 'token' | 'jwt-svid'): Replica {
  const config = join(root, `${name}.yaml`);
  // upstream's keys (apiVersion/kind, clusterName, trustDomain, className, leaderElection ...) plus Wisp's
  writeFileSync(config, [
    'apiVersion: spire.spiffe.io/v1alpha1',
    'kind: ControllerManagerConfig',
    `clusterName: ${CLUSTER}`,
    `trustDomain: ${TD}`,
    `className: ${CLASS}`,
    'gcInterval: 2s',
    'metrics: {bindAddress: "127.0.0.1:8082"}',
    'leaderElection:',
    '  leaderElect: true',
    `  resourceName: ${LEASE}`,
    `  resourceNamespace: ${NS}`,
    '  leaseDuration: 6s',
    '  renewDeadline: 4s',
    '  retryPeriod: 1s',
    `serverURL: ${issuer.url}`,
    credential === 'token' ? `adminTokenFile: ${join(root, 'admin-token')}` : `workloadAPISocket: ${agent.socketPath}`,
    'logLevel: debug',
  ].join('\n'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'wisp-controller-manager.js'), '--config', config, '--kubeconfig', env.KUBECONFIG], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const replica: Replica = {
    name,
    principal: credential === 'token' ? 'admin-token' : CONTROLLER_B_ID,
    process: child,
    output: () => out,
    identity: () => /"identity":"([^"]+)"[^\n]*"msg":"wisp-controller-manager started"/.exec(out)?.[1],
  };
  replicas.push(replica);
  return replica;
}

const logLines = (r: Replica, msg: string) => r.output().split('\n').filter((l) => l.includes(`"msg":"${msg}"`));
const holder = () => {
  try {
    return (JSON.parse(k('get', 'lease', LEASE, '-n', NS, '-o', 'json')) as { spec: { holderIdentity?: string } }).spec.holderIdentity || undefined;
  } catch {
    return undefined;
  }
};

async function runningPods(app: string, count: number): Promise<{ name: string; uid: string }[]> {
  return waitFor(`${count} Running pod(s) of ${app}`, async () => {
    const list = JSON.parse(k('get', 'pods', '-n', NS, '-l', `app=${app}`, '-o', 'json')) as { items: { metadata: { name: string; uid: string; deletionTimestamp?: string }; status: { phase: string } }[] };
    const running = list.items.filter((p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp);
    return running.length === count ? running.map((p) => ({ name: p.metadata.name, uid: p.metadata.uid })) : undefined;
  }, 90_000, 500);
}

function withLogs<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: Error) => {
    throw new Error(`${e.message}\n${replicas.map((r) => `--- ${r.name} ---\n${r.output().slice(-4000)}`).join('\n')}`, { cause: e });
  });
}

describe.skipIf(skip !== undefined)(`wisp-controller-manager on the testbed${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    if (!tb.ready) return;
    env = tb.env;
    root = mkdtempSync(join(tmpdir(), 'wisp-cm-'));
    // the upstream CRDs, unchanged; left installed (other tests apply an equivalent set)
    for (const f of readdirSync(CRD_DIR).filter((f) => f.endsWith('.yaml') && !f.includes('controllermanagerconfigs'))) k('apply', '-f', join(CRD_DIR, f));
    k('wait', '--for', 'condition=established', '--timeout=60s', 'crd/clusterspiffeids.spire.spiffe.io', 'crd/clusterfederatedtrustdomains.spire.spiffe.io', 'crd/clusterstaticentries.spire.spiffe.io');
    k('create', 'namespace', NS);
    k('create', 'serviceaccount', 'spire-agent', '-n', NS);
    k('create', 'serviceaccount', 'web', '-n', NS);
    const nodeUid = (JSON.parse(k('get', 'node', env.TESTBED_NODE_NAME, '-o', 'json')) as { metadata: { uid: string } }).metadata.uid;
    agentId = `spiffe://${TD}/spire/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
    // the agent's pod, for its kubelet-projected token (as test/k8s/psat-attestation.test.ts)
    apply({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'agent', namespace: NS },
      spec: {
        serviceAccountName: 'spire-agent',
        containers: [{ name: 'agent', image: 'ghcr.io/example/wisp-agent:test', volumeMounts: [{ name: 'spire-agent', mountPath: '/var/run/secrets/tokens' }] }],
        volumes: [{ name: 'spire-agent', projected: { sources: [{ serviceAccountToken: { path: 'spire-agent', expirationSeconds: 600, audience: 'spire-server' } }] } }],
      },
    });
    const agentPodUid = await waitFor('the agent pod Running', async () => {
      const pod = JSON.parse(k('get', 'pod', 'agent', '-n', NS, '-o', 'json')) as { metadata: { uid: string }; status: { phase: string } };
      return pod.status.phase === 'Running' ? pod.metadata.uid : undefined;
    }, 60_000, 500);
    const jwks = JSON.parse(k('get', '--raw', '/openid/v1/jwks')) as JSONWebKeySet;
    const K8S_PSAT = JSON.stringify({ clusters: { [CLUSTER]: { serviceAccountAllowList: [`${NS}:spire-agent`], issuer: env.TESTBED_SA_ISSUER, jwks } } });
    issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD, vars: { K8S_PSAT } });
    writeFileSync(join(root, 'admin-token'), `${issuer.adminToken}\n`, { mode: 0o600 });
    const tokenPath = join(root, 'agent-token');
    writeFileSync(tokenPath, readFileSync(join(env.TESTBED_KUBELET_ROOT, 'pods', agentPodUid, 'volumes', 'kubernetes.io~projected', 'spire-agent', 'spire-agent')));
    agent = await startAgent({ serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent-data'), socketPath: join(root, 'agent.sock'), syncIntervalSeconds: 1, extraConfig: { k8sPsat: { cluster: CLUSTER, tokenPath } } });
    await waitFor('the agent to attest', async () => {
      try {
        return await adminCall(issuer, 'GET', `/agents/${encodeURIComponent(agentId)}`);
      } catch {
        return undefined;
      }
    }, 60_000, 500);
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopProcess(r.process)));
    await agent?.stop();
    await issuer?.stop();
    if (tb.ready) {
      for (const kind of ['clusterspiffeid', 'clusterfederatedtrustdomain']) {
        try {
          kubectl(env, ['delete', kind, '-l', `wisp-e2e=${RUN}`, '--wait=false']);
          // no controller runs any more: drop our finalizer so the deletion completes
          for (const name of kubectl(env, ['get', kind, '-l', `wisp-e2e=${RUN}`, '-o', 'name']).split('\n').filter(Boolean)) {
            kubectl(env, ['patch', name, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
          }
        } catch {
          // already gone
        }
      }
      kubectl(env, ['delete', 'namespace', NS, '--wait=false']);
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('reconciles a ClusterSPIFFEID, a ClusterFederatedTrustDomain and leadership as upstream', async () => {
    const handMade = await adminCall<{ entry: ApiEntry }>(issuer, 'POST', '/entries', { spiffeId: `spiffe://${TD}/hand-made`, parentId: agentId, selectors: [{ type: 'k8s', value: `ns:${NS}` }] });
    await adminCall(issuer, 'POST', '/federation', { trustDomain: `hand-${RUN}.test`, bundleEndpointUrl: 'https://hand.example/bundle', bundleEndpointProfile: 'https_web' });
    // distinguishable credentials: the audit log says which replica wrote
    await adminCall(issuer, 'POST', '/entries', { spiffeId: CONTROLLER_B_ID, parentId: agentId, selectors: [{ type: 'unix', value: `uid:${process.getuid?.() ?? 0}` }], admin: true });
    await waitFor('the agent to serve the admin JWT-SVID', async () => {
      try {
        return await fetchAdminJwtSvid(`unix://${agent.socketPath}`, issuer.url, 5000);
      } catch {
        return undefined;
      }
    }, 30_000, 500);
    // the audit log keeps seconds: start the replicas in the next second, so the hand-made writes above (now
    // followed within a second by the admin JWT-SVID, pushed to the agent) are not counted as writers
    const since = new Date(Math.floor(Date.now() / 1000) * 1000 + 1000).toISOString();
    await new Promise((r) => setTimeout(r, Date.parse(since) - Date.now() + 10));
    const a = startReplica('replica-a', 'token');
    const b = startReplica('replica-b', 'jwt-svid');
    const leaderId = await withLogs(waitFor('a leader', async () => holder(), 30_000, 250));
    await withLogs(waitFor('both replicas started', async () => (a.identity() && b.identity() ? true : undefined), 30_000, 250));
    const [leader, follower] = a.identity() === leaderId ? [a, b] : [b, a];
    expect(leader.identity()).toBe(leaderId);

    apply({
      apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterSPIFFEID', metadata: { name: `web-${RUN}`, labels: { 'wisp-e2e': RUN } },
      spec: {
        className: CLASS,
        spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}',
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': NS } },
        podSelector: { matchLabels: { app: 'web' } },
        workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace }}', 'k8s:sa:{{ .PodSpec.ServiceAccountName }}'],
      },
    });
    apply({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: NS },
      spec: {
        replicas: 1, selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { serviceAccountName: 'web', containers: [{ name: 'web', image: 'ghcr.io/example/web:1' }] } },
      },
    });
    const [pod] = await runningPods('web', 1);
    const shownAt = Date.now();
    const entry = await withLogs(waitFor('the pod\'s entry', () => podEntry(pod!.uid), 20_000, 250));
    const appearedMs = Date.now() - shownAt;
    expect(entry.spiffeId).toBe(`spiffe://${TD}/ns/${NS}/sa/web`);
    expect(entry.parentId).toBe(agentId);
    expect(entry.id.startsWith(`${CLUSTER}.${CLASS}.`)).toBe(true);
    expect(entry.selectors.map((s) => `${s.type}:${s.value}`).sort()).toEqual([`k8s:ns:${NS}`, `k8s:pod-uid:${pod!.uid}`, 'k8s:sa:web']);
    expect(appearedMs).toBeLessThan(10_000);

    // stats on the status subresource, upstream's fields
    const stats = await withLogs(waitFor('status stats', async () => {
      const s = (JSON.parse(k('get', 'clusterspiffeid', `web-${RUN}`, '-o', 'json')) as { status?: { stats?: Stats } }).status?.stats;
      return s?.entriesToSet === 1 ? s : undefined;
    }, 20_000, 250));
    expect(stats).toEqual({ namespacesSelected: 1, namespacesIgnored: 0, podsSelected: 1, podEntryRenderFailures: 0, entriesToSet: 1, entriesMasked: 0, entryFailures: 0 });

    // a spec that does not parse: nothing rendered, the parser's message in a Warning Event on the resource
    apply({
      apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterSPIFFEID', metadata: { name: `bad-${RUN}`, labels: { 'wisp-e2e': RUN } },
      spec: { className: CLASS, spiffeIDTemplate: 'spiffe://{{ .TrustDomain }/ns/{{ .PodMeta.Namespace }}', podSelector: { matchLabels: { app: 'web' } } },
    });
    const event = await withLogs(waitFor('the InvalidSpec Event', async () => {
      const list = JSON.parse(k('get', 'events', '-n', 'default', '--field-selector', `involvedObject.name=bad-${RUN},reason=InvalidSpec`, '-o', 'json')) as { items: { type: string; message: string; involvedObject: { kind: string } }[] };
      return list.items[0];
    }, 20_000, 250));
    expect(event).toMatchObject({ type: 'Warning', involvedObject: { kind: 'ClusterSPIFFEID' } });
    expect(event.message).toMatch(/spiffeIDTemplate/);
    k('delete', 'clusterspiffeid', `bad-${RUN}`);

    // only the leader writes; the other says it is not leading
    expect(logLines(leader, 'created entry').length).toBeGreaterThan(0);
    expect(logLines(follower, 'created entry')).toEqual([]);
    expect(logLines(follower, 'not leading: another replica holds the Lease').length).toBeGreaterThan(0);

    const writers = async () => {
      const events = (await adminCall<{ events: { principal: string; action: string; at: number }[] }>(issuer, 'GET', `/audit?since=${encodeURIComponent(since)}&pageSize=1000`)).events;
      return events.filter((e) => e.action.startsWith('entry.batch_') || e.action.startsWith('federation.'));
    };
    expect(new Set((await writers()).map((e) => e.principal))).toEqual(new Set([leader.principal]));

    // a label change moves the pod out: its entry goes; the ReplicaSet's replacement gets one
    k('label', 'pod', pod!.name, '-n', NS, 'app=moved', '--overwrite');
    await withLogs(waitFor('the moved pod\'s entry to go', async () => ((await podEntry(pod!.uid)) ? undefined : true), 20_000, 250));
    const [replacement] = await runningPods('web', 1);
    expect(replacement!.uid).not.toBe(pod!.uid);
    await withLogs(waitFor('the replacement\'s entry', () => podEntry(replacement!.uid), 20_000, 250));

    // a ClusterFederatedTrustDomain becomes a federation relationship
    apply({
      apiVersion: 'spire.spiffe.io/v1alpha1', kind: 'ClusterFederatedTrustDomain', metadata: { name: `partner-${RUN}`, labels: { 'wisp-e2e': RUN } },
      spec: { className: CLASS, trustDomain: PARTNER_TD, bundleEndpointURL: 'https://partner.example/bundle', bundleEndpointProfile: { type: 'https_web' } },
    });
    const relationships = async () => (await adminCall<{ relationships: { trustDomain: string; bundleEndpointUrl: string }[] }>(issuer, 'GET', '/federation')).relationships;
    const rel = await withLogs(waitFor('the relationship', async () => (await relationships()).find((r) => r.trustDomain === PARTNER_TD), 20_000, 250));
    expect(rel.bundleEndpointUrl).toBe('https://partner.example/bundle');

    // the leader is killed: the other replica takes the Lease and keeps reconciling
    leader.process.kill('SIGKILL');
    const killedAt = Math.ceil(Date.now() / 1000); // audit times are whole seconds: only events surely after the kill
    await withLogs(waitFor('the other replica to lead', async () => (holder() === follower.identity() ? true : undefined), 30_000, 250));
    k('scale', 'deployment', 'web', '-n', NS, '--replicas=2');
    const pods = await runningPods('web', 2);
    for (const p of pods) await withLogs(waitFor(`the entry of ${p.name}`, () => podEntry(p.uid), 20_000, 250));
    expect(logLines(follower, 'created entry').length).toBeGreaterThan(0);
    const after = (await writers()).filter((e) => e.at >= killedAt);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after.map((e) => e.principal))).toEqual(new Set([follower.principal]));

    // deleting the ClusterFederatedTrustDomain deletes its relationship (and only that one)
    k('delete', 'clusterfederatedtrustdomain', `partner-${RUN}`, '--timeout=30s');
    expect((await relationships()).map((r) => r.trustDomain)).toContain(`hand-${RUN}.test`);
    expect((await relationships()).map((r) => r.trustDomain)).not.toContain(PARTNER_TD);

    // deleting the ClusterSPIFFEID deletes its entries; the hand-made one stays untouched
    k('delete', 'clusterspiffeid', `web-${RUN}`);
    await withLogs(waitFor('its entries to go', async () => ((await entries()).some((e) => e.id.startsWith(`${CLUSTER}.`)) ? undefined : true), 20_000, 250));
    const left = await entries();
    expect(left.find((e) => e.id === handMade.entry.id)).toEqual(handMade.entry);
  });
});
