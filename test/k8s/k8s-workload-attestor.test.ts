// The k8s workload attestor against the testbed's real kubelet (pods API on 10250): a Deployment's pod with
// labels, a (sidecar) init container and two containers, a cgroup file in the containerd shape for a fake pid,
// and every selector checked against the values the API server reports. Client-certificate and service-account
// token authentication (nodes/proxy granted by RBAC), a wrong CA, an unknown token and a token without the grant
// are refused with clear errors. Then a real wisp-agent with the k8s block still serves a unix-attested workload.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createK8sAttestor, type K8sAttestorConfig } from '../../src/agent/workload-api/k8s-attestor.js';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { adminCall, startAgent, startIssuer, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';

const tb = testbed();
const skip = !tb.ready ? tb.skipReason : !tb.node ? tb.nodeSkipReason : undefined;
const NS = `wisp-k8satt-${process.pid}`;
const ROLE = `${NS}-nodes-proxy`;
const PID = 4242;

interface ApiPod {
  metadata: { name: string; uid: string; labels: Record<string, string>; ownerReferences: { kind: string; name: string; uid: string }[] };
  spec: { nodeName: string };
  status: { phase: string; containerStatuses?: { name: string; containerID?: string }[]; initContainerStatuses?: { name: string; containerID?: string }[] };
}

let env: TestbedEnv;
let root: string;
let pod: ApiPod;
const containerId = (name: string) =>
  [...(pod.status.containerStatuses ?? []), ...(pod.status.initContainerStatuses ?? [])].find((c) => c.name === name)!.containerID!.replace(/^containerd:\/\//, '');

/** A /proc with one fake pid whose cgroup is container `name` of the pod, as containerd + systemd + cgroup v2 write it. */
function procFor(name: string): string {
  const proc = join(root, `proc-${name}`);
  mkdirSync(join(proc, String(PID)), { recursive: true });
  const slice = `kubepods-besteffort-pod${pod.metadata.uid.replace(/-/g, '_')}.slice`;
  writeFileSync(join(proc, String(PID), 'cgroup'), `0::/kubepods.slice/kubepods-besteffort.slice/${slice}/cri-containerd-${containerId(name)}.scope\n`);
  return proc;
}

function config(over: Partial<K8sAttestorConfig>): K8sAttestorConfig {
  return {
    kubeletUrl: env.TESTBED_KUBELET_URL,
    kubeletCa: env.TESTBED_KUBELET_CA,
    skipKubeletVerification: false,
    tokenPath: join(root, 'no-token'),
    certificatePath: env.TESTBED_KUBELET_CLIENT_CERT,
    privateKeyPath: env.TESTBED_KUBELET_CLIENT_KEY,
    nodeName: env.TESTBED_NODE_NAME,
    podWatchIntervalSeconds: 0.5,
    maxPollAttempts: 20,
    ...over,
  };
}

function tokenFile(name: string, token: string): string {
  const path = join(root, name);
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

const values = (selectors: { type: string; value: string }[]) => selectors.map((s) => `${s.type}:${s.value}`).sort();

describe.skipIf(skip !== undefined)(`k8s workload attestor on the testbed kubelet${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    if (!tb.ready) return;
    env = tb.env;
    root = mkdtempSync(join(tmpdir(), 'wisp-k8satt-'));
    kubectl(env, ['create', 'namespace', NS]);
    kubectl(env, ['create', 'serviceaccount', 'web-sa', '-n', NS]);
    kubectl(env, ['create', 'serviceaccount', 'agent', '-n', NS]);
    kubectl(env, ['create', 'serviceaccount', 'not-granted', '-n', NS]);
    // what SPIRE's agent needs on the kubelet: get nodes/proxy (GET /pods)
    kubectl(env, ['create', 'clusterrole', ROLE, '--verb=get', '--resource=nodes/proxy']);
    kubectl(env, ['create', 'clusterrolebinding', ROLE, `--clusterrole=${ROLE}`, `--serviceaccount=${NS}:agent`]);
    kubectl(
      env,
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: NS },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web', tier: 'front' } },
            spec: {
              serviceAccountName: 'web-sa',
              // a sidecar (restartPolicy Always): the fake runtime never ends a container, so a classic init container would keep the pod Pending
              initContainers: [{ name: 'proxy-init', image: 'registry.example/proxy:2.1', restartPolicy: 'Always' }],
              containers: [
                { name: 'app', image: 'registry.example/app:1.0' },
                { name: 'metrics', image: 'registry.example/metrics:0.3' },
              ],
            },
          },
        },
      }),
    );
    pod = await waitFor(
      'the pod Running with container IDs',
      async () => {
        const list = JSON.parse(kubectl(env, ['get', 'pods', '-n', NS, '-l', 'app=web', '-o', 'json'])) as { items: ApiPod[] };
        const p = list.items[0];
        const ids = [...(p?.status.containerStatuses ?? []), ...(p?.status.initContainerStatuses ?? [])].map((c) => c.containerID);
        return p?.status.phase === 'Running' && ids.length === 3 && ids.every((id) => /^containerd:\/\/[0-9a-f]{64}$/.test(id ?? '')) ? p : undefined;
      },
      90_000,
      500,
    );
  }, 180_000);

  afterAll(() => {
    if (!tb.ready) return;
    for (const args of [['delete', 'namespace', NS, '--wait=false'], ['delete', 'clusterrolebinding', ROLE], ['delete', 'clusterrole', ROLE]]) {
      try {
        kubectl(env, [...args, '--ignore-not-found']);
      } catch {
        // best effort
      }
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function expectedFor(container: string): string[] {
    const rs = pod.metadata.ownerReferences.find((o) => o.kind === 'ReplicaSet')!;
    const image = (name: string) => `registry.example/${name}`;
    // the fake runtime reports imageID = image, so each image gives one value
    return [
      `k8s:ns:${NS}`,
      'k8s:sa:web-sa',
      `k8s:node-name:${env.TESTBED_NODE_NAME}`,
      `k8s:pod-uid:${pod.metadata.uid}`,
      `k8s:pod-name:${pod.metadata.name}`,
      'k8s:pod-label:app:web',
      'k8s:pod-label:tier:front',
      `k8s:pod-label:pod-template-hash:${pod.metadata.labels['pod-template-hash']}`,
      `k8s:pod-owner:ReplicaSet:${rs.name}`,
      `k8s:pod-owner-uid:ReplicaSet:${rs.uid}`,
      'k8s:pod-image-count:2',
      `k8s:pod-image:${image('app:1.0')}`,
      `k8s:pod-image:${image('metrics:0.3')}`,
      'k8s:pod-init-image-count:1',
      `k8s:pod-init-image:${image('proxy:2.1')}`,
      `k8s:container-name:${container}`,
      `k8s:container-image:${image(container === 'proxy-init' ? 'proxy:2.1' : container === 'app' ? 'app:1.0' : 'metrics:0.3')}`,
    ].sort();
  }

  it('authenticated by client certificate, returns every selector of the pod and container', async () => {
    expect(pod.metadata.ownerReferences.map((o) => o.kind)).toEqual(['ReplicaSet']);
    const attest = createK8sAttestor(config({}), { procRoot: procFor('app') });
    expect(values(await attest({ pid: PID, uid: 0, gid: 0 }))).toEqual(expectedFor('app'));
    const init = createK8sAttestor(config({}), { procRoot: procFor('proxy-init') });
    expect(values(await init({ pid: PID, uid: 0, gid: 0 }))).toEqual(expectedFor('proxy-init'));
  });

  it('authenticated by a service-account token granted nodes/proxy, returns the same selectors; the token file is read again on each request', async () => {
    const path = tokenFile('agent-token', kubectl(env, ['create', 'token', 'not-granted', '-n', NS]).trim());
    const attest = createK8sAttestor(config({ tokenPath: path, certificatePath: undefined, privateKeyPath: undefined }), { procRoot: procFor('metrics') });
    await expect(attest({ pid: PID, uid: 0, gid: 0 })).rejects.toThrow(/HTTP 403/);
    tokenFile('agent-token', kubectl(env, ['create', 'token', 'agent', '-n', NS]).trim()); // as the kubelet rotates a projected token
    expect(values(await attest({ pid: PID, uid: 0, gid: 0 }))).toEqual(expectedFor('metrics'));
  });

  it('refuses a token without nodes/proxy (403), an unknown token (401) and a kubelet the CA does not vouch for, with clear errors', async () => {
    const notGranted = kubectl(env, ['create', 'token', 'not-granted', '-n', NS]).trim();
    const byToken = (path: string) => config({ tokenPath: path, certificatePath: undefined, privateKeyPath: undefined });
    await expect(createK8sAttestor(byToken(tokenFile('not-granted', notGranted)), { procRoot: procFor('app') })({ pid: PID, uid: 0, gid: 0 })).rejects.toThrow(
      /HTTP 403 Forbidden\).*needs "get" on nodes\/proxy/,
    );
    // a token the API server never issued: the kubelet authenticates nobody (anonymous auth is off) and says 401
    await expect(createK8sAttestor(byToken(tokenFile('bogus', 'not-a-token')), { procRoot: procFor('app') })({ pid: PID, uid: 0, gid: 0 })).rejects.toThrow(
      /refused the agent's credentials \(HTTP 401 Unauthorized\)/,
    );
    const otherCa = join(root, 'other-ca');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${otherCa}.key`, '-out', `${otherCa}.pem`, '-days', '1', '-subj', '/CN=not the kubelet CA'], { stdio: 'ignore' });
    await expect(createK8sAttestor(config({ kubeletCa: `${otherCa}.pem` }), { procRoot: procFor('app') })({ pid: PID, uid: 0, gid: 0 })).rejects.toThrow(
      /cannot verify the kubelet's certificate at https:\/\/127\.0\.0\.1:10250 with the kubelet CA .*other-ca\.pem/,
    );
  });

  it('gives no selectors for a process of this machine (not in a pod), on its real /proc', async () => {
    const attest = createK8sAttestor(config({}));
    expect(await attest({ pid: process.pid, uid: 0, gid: 0 })).toEqual([]);
  });

  describe('a real wisp-agent with the k8s block', () => {
    let issuer: RunningIssuer;
    let agent: RunningAgent;
    afterAll(async () => {
      await agent?.stop();
      await issuer?.stop();
    });

    it('starts, and still serves a unix-attested workload', async () => {
      const td = 'example.org';
      issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: td });
      const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 300 });
      const spiffeId = `spiffe://${td}/k8s-agent-unix-workload`;
      await adminCall(issuer, 'POST', '/entries', {
        spiffeId,
        parentId: `spiffe://${td}/spire/agent/join_token/${token}`,
        selectors: [{ type: 'unix', value: `uid:${process.getuid?.() ?? 0}` }],
      });
      const socketPath = join(root, 'run', 'agent.sock');
      agent = await startAgent({
        serverUrl: issuer.url,
        trustDomain: td,
        dataDir: join(root, 'agent-data'),
        socketPath,
        joinToken: token,
        syncIntervalSeconds: 1,
        extraConfig: {
          workloadAttestors: {
            k8s: {
              kubeletUrl: env.TESTBED_KUBELET_URL,
              kubeletCa: env.TESTBED_KUBELET_CA,
              certificatePath: env.TESTBED_KUBELET_CLIENT_CERT,
              privateKeyPath: env.TESTBED_KUBELET_CLIENT_KEY,
              nodeName: env.TESTBED_NODE_NAME,
            },
          },
        },
      });
      const client = createWorkloadApiClient(`unix://${socketPath}`);
      try {
        const ids = await waitFor(
          'an X509-SVID for the unix-attested workload',
          async () => {
            const ac = new AbortController();
            try {
              for await (const msg of client.fetchX509SVID({ signal: ac.signal })) {
                ac.abort();
                return msg.svids.length > 0 ? msg.svids.map((s) => s.spiffeId) : undefined;
              }
            } catch {
              return undefined; // not ready yet
            }
            return undefined;
          },
          60_000,
          500,
        );
        expect(ids).toEqual([spiffeId]);
        expect(agent.output()).toContain('k8s workload attestor on');
      } finally {
        client.close();
      }
    }, 180_000);
  });
});
