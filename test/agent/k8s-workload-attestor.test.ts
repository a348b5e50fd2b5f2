import { status as grpcStatus } from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import { createKubeletClient } from '../../src/agent/workload-api/kubelet-client.js';
import { startWorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createUnixAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { createWorkloadApiClient, isGrpcError } from '../../src/node/workload-api/client.js';
import { createTrustDomain } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { createK8sAttestor, type K8sAttestorConfig } from '../../src/agent/workload-api/k8s-attestor.js';
import { podContainerFromCgroupFile } from '../../src/agent/workload-api/k8s-cgroup.js';
import { findContainer, parsePodList, podSelectors } from '../../src/agent/workload-api/k8s-pods.js';
import { combineWorkloadAttestors } from '../../src/agent/workload-api/workload-attestors.js';
import { isWispError } from '../../src/shared/errors.js';

const CID = 'a3f1c0d2e4b5968778695a4b3c2d1e0f0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const UID = '5e1c7b2a-9d3f-4c6e-8a1b-0f2e3d4c5b6a';
const V1_CONTROLLERS = ['cpu,cpuacct', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'name=systemd'];
const v1 = (path: string) => V1_CONTROLLERS.map((c, i) => `${V1_CONTROLLERS.length - i}:${c}:${path}`).join('\n') + '\n';

/** Recorded shapes (a node's /proc/<pid>/cgroup per runtime, cgroup driver and version), with our IDs. */
const SHAPES: [string, string, { containerId: string; podUid?: string } | undefined][] = [
  ['containerd, cgroup v1, cgroupfs driver, burstable', v1(`/kubepods/burstable/pod${UID}/${CID}`), { containerId: CID, podUid: UID }],
  ['containerd, cgroup v1, cgroupfs driver, guaranteed (no QoS dir)', v1(`/kubepods/pod${UID}/${CID}`), { containerId: CID, podUid: UID }],
  [
    'containerd, cgroup v2, systemd driver, besteffort',
    `0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope\n`,
    { containerId: CID, podUid: UID },
  ],
  ['containerd, cgroup v2, cgroupfs driver', `0::/kubepods/besteffort/pod${UID}/${CID}\n`, { containerId: CID, podUid: UID }],
  [
    "containerd's colon form of a systemd path",
    `0::/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice:cri-containerd:${CID}\n`,
    { containerId: CID, podUid: UID },
  ],
  [
    'CRI-O, cgroup v1, systemd driver (rdma unset)',
    v1(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/crio-${CID}.scope`) + '12:rdma:/\n0::/system.slice/crio.service\n',
    { containerId: CID, podUid: UID },
  ],
  ['CRI-O, cgroup v2 seen from a cgroup namespace, no pod UID (KubeEdge)', `0::/../crio-${CID}.scope\n`, { containerId: CID }],
  ['Docker (dockershim), cgroup v1, cgroupfs driver', v1(`/kubepods/besteffort/pod${UID}/${CID}`), { containerId: CID, podUid: UID }],
  [
    'Docker, cgroup v1, systemd driver',
    v1(`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/docker-${CID}.scope`),
    { containerId: CID, podUid: UID },
  ],
  [
    'kind: the node is a Docker container, the pod inside it (v1 lines win over the node container on 0::)',
    v1(`/docker/${'7'.repeat(64)}/kubepods/besteffort/pod${UID}/${CID}`) + `0::/docker/${'7'.repeat(64)}/system.slice/containerd.service\n`,
    { containerId: CID, podUid: UID },
  ],
  ['a pod seen from another pod (cgroup namespace)', `0::/../../pod${UID}/${CID}\n`, { containerId: CID, podUid: UID }],
  ['a login session (not a pod)', v1('/user.slice/user-1000.slice/session-2.scope'), undefined],
  ['a systemd user delegation naming a pod (forgeable, ignored)', `0::/user.slice/user-1000.slice/user@1000.service/app.slice/pod${UID}/${CID}\n`, undefined],
];

describe('pid → pod container (/proc/<pid>/cgroup)', () => {
  it.each(SHAPES)('%s', (_name, text, expected) => {
    expect(podContainerFromCgroupFile(text)).toEqual(expected);
  });

  it("this machine's real /proc/self/cgroup is not a pod", () => {
    const text = readFileSync('/proc/self/cgroup', 'utf8');
    expect(text).toMatch(/^\d+:[^:]*:\//m); // a real cgroup file
    expect(podContainerFromCgroupFile(text)).toBeUndefined();
  });

  it('refuses cgroups that name two containers or two pods', () => {
    const other = 'b'.repeat(64);
    expect(() => podContainerFromCgroupFile(`1:cpu:/kubepods/pod${UID}/${CID}\n2:memory:/kubepods/pod${UID}/${other}\n`)).toThrow(/two containers/);
    const otherUid = UID.replace('5e1c', '6e1c');
    expect(() => podContainerFromCgroupFile(`1:cpu:/kubepods/pod${UID}/${CID}\n2:memory:/kubepods/pod${otherUid}/${CID}\n`)).toThrow(/two pods/);
  });
});

const status = (name: string, id: string | undefined, image = `registry.example/${name}:1.0`) => ({
  name,
  image,
  imageID: `registry.example/${name}@sha256:${'c'.repeat(64)}`,
  ...(id ? { containerID: `containerd://${id}` } : {}),
});
const POD = {
  metadata: {
    name: 'web-7d9f-abcde',
    namespace: 'shop',
    uid: UID,
    labels: { app: 'web', tier: 'front' },
    ownerReferences: [{ kind: 'ReplicaSet', name: 'web-7d9f', uid: '11111111-2222-3333-4444-555555555555', controller: true }],
  },
  spec: { serviceAccountName: 'web-sa', nodeName: 'node-1' },
  status: {
    initContainerStatuses: [status('init', 'd'.repeat(64))],
    containerStatuses: [status('app', CID), status('sidecar', 'e'.repeat(64), 'registry.example/app:1.0')],
    ephemeralContainerStatuses: [status('debug', 'f'.repeat(64))],
  },
};
const LIST = JSON.stringify({ kind: 'PodList', items: [POD] });

describe('pod list → selectors', () => {
  it("gives SPIRE's selectors for the workload's container", () => {
    const index = parsePodList(LIST);
    const hit = findContainer(index, CID, UID)!;
    const values = podSelectors(hit.pod, hit.container).map((s) => `${s.type}:${s.value}`);
    const digest = (n: string) => `registry.example/${n}@sha256:${'c'.repeat(64)}`;
    expect(values.sort()).toEqual(
      [
        'k8s:ns:shop',
        'k8s:sa:web-sa',
        'k8s:node-name:node-1',
        `k8s:pod-uid:${UID}`,
        'k8s:pod-name:web-7d9f-abcde',
        'k8s:pod-label:app:web',
        'k8s:pod-label:tier:front',
        'k8s:pod-owner:ReplicaSet:web-7d9f',
        'k8s:pod-owner-uid:ReplicaSet:11111111-2222-3333-4444-555555555555',
        'k8s:pod-image-count:2', // ephemeral containers are not counted (SPIRE)
        'k8s:pod-init-image-count:1',
        'k8s:pod-image:registry.example/app:1.0', // app and sidecar share the tag: once
        `k8s:pod-image:${digest('app')}`,
        `k8s:pod-image:${digest('sidecar')}`,
        'k8s:pod-init-image:registry.example/init:1.0',
        `k8s:pod-init-image:${digest('init')}`,
        'k8s:container-name:app',
        'k8s:container-image:registry.example/app:1.0',
        `k8s:container-image:${digest('app')}`,
      ].sort(),
    );
  });

  it('finds init containers, not ephemeral ones, and not in another pod', () => {
    const index = parsePodList(LIST);
    expect(findContainer(index, 'd'.repeat(64), UID)?.container.name).toBe('init');
    expect(findContainer(index, 'f'.repeat(64), UID)).toBeUndefined();
    expect(findContainer(index, CID, UID.replace('5e1c', '6e1c'))).toBeUndefined();
    expect(findContainer(index, CID)?.pod.name).toBe('web-7d9f-abcde'); // CRI-O without a pod UID
  });

  it('refuses a body that is not a pod list', () => {
    expect(() => parsePodList('<html>')).toThrow(/not JSON/);
    expect(() => parsePodList('{"kind":"Status"}')).toThrow(/not a pod list/);
  });
});

function procRoot(pid: number, cgroup: string): string {
  const root = mkdtempSync(join(tmpdir(), 'wisp-k8s-proc-'));
  mkdirSync(join(root, String(pid)));
  writeFileSync(join(root, String(pid), 'cgroup'), cgroup);
  return root;
}

const CONFIG: K8sAttestorConfig = {
  kubeletUrl: 'https://127.0.0.1:1',
  kubeletCa: '/nonexistent',
  skipKubeletVerification: false,
  tokenPath: '/nonexistent',
  podWatchIntervalSeconds: 0.5,
  maxPollAttempts: 3,
};

describe('k8s attestor: polling and composition', () => {
  it('polls until a just-started container is listed, attempts one interval apart', async () => {
    const lists = [JSON.stringify({ items: [] }), JSON.stringify({ items: [] }), LIST];
    let t = 0;
    const starts: number[] = [];
    const attest = createK8sAttestor(CONFIG, {
      procRoot: procRoot(42, `0::/kubepods/pod${UID}/${CID}\n`),
      kubelet: { listPods: async () => (starts.push(t), lists.shift()!) },
      now: () => t,
      sleep: async (ms) => void (t += ms),
    });
    const selectors = await attest({ pid: 42, uid: 0, gid: 0 });
    expect(selectors).toContainEqual({ type: 'k8s', value: 'container-name:app' });
    expect(starts).toEqual([0, 500, 1000]);
  });

  it('gives up after maxPollAttempts with a clear error, and fails at once when the kubelet fails', async () => {
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += ms) };
    const notListed = createK8sAttestor(CONFIG, { procRoot: procRoot(7, `0::/kubepods/pod${UID}/${CID}\n`), kubelet: { listPods: async () => '{"items":[]}' }, ...clock });
    await expect(notListed({ pid: 7, uid: 0, gid: 0 })).rejects.toThrow(`container ${CID} of pod ${UID} is not in the kubelet's pod list after 3 attempts`);
    let calls = 0;
    const broken = createK8sAttestor(CONFIG, { procRoot: procRoot(7, `0::/kubepods/pod${UID}/${CID}\n`), ...clock });
    const err: unknown = await broken({ pid: 7, uid: 0, gid: 0 }).catch((e: unknown) => e);
    expect(isWispError(err) && err.code).toBe('ERR_UNAVAILABLE');
    expect((err as Error).message).toMatch(/kubelet: cannot read the kubelet CA file \/nonexistent/);
    const counting = createK8sAttestor(CONFIG, { procRoot: procRoot(7, `0::/kubepods/pod${UID}/${CID}\n`), kubelet: { listPods: async () => (calls++, Promise.reject(new Error('boom'))) }, ...clock });
    await expect(counting({ pid: 7, uid: 0, gid: 0 })).rejects.toThrow('boom');
    expect(calls).toBe(1);
  });

  it('gives no selectors outside a pod, without asking the kubelet', async () => {
    const attest = createK8sAttestor(CONFIG, { procRoot: procRoot(9, v1('/user.slice')), kubelet: { listPods: () => Promise.reject(new Error('must not be called')) } });
    expect(await attest({ pid: 9, uid: 0, gid: 0 })).toEqual([]);
  });

  it('unions the selectors of every attestor; one attestor is itself', async () => {
    const unix = async () => [{ type: 'unix', value: 'uid:0' }];
    const k8s = async () => [{ type: 'k8s', value: 'ns:shop' }];
    expect(combineWorkloadAttestors([unix])).toBe(unix);
    expect(await combineWorkloadAttestors([unix, k8s])({ pid: 1, uid: 0, gid: 0 })).toEqual([
      { type: 'unix', value: 'uid:0' },
      { type: 'k8s', value: 'ns:shop' },
    ]);
  });
});

async function listening(onConnection: (socket: import('node:net').Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

describe('k8s attestor: a failing kubelet is a clear error, not a hang', () => {
  it('a token file no bearer token could come from is refused before sending; a kubelet that never answers ends in the timeout', async () => {
    const held: import('node:net').Socket[] = [];
    const { server, port } = await listening((socket) => void held.push(socket));
    try {
      const tokenPath = join(mkdtempSync(join(tmpdir(), 'wisp-k8s-token-')), 'token');
      writeFileSync(tokenPath, 'a\u0000b');
      const kubelet = createKubeletClient({ url: `https://127.0.0.1:${port}`, caPath: '/unused', skipVerification: true, auth: { tokenPath }, timeoutMs: 300 });
      await expect(kubelet.listPods()).rejects.toThrow(`kubelet: the token file ${tokenPath} holds characters no bearer token has`);
      writeFileSync(tokenPath, 'sa-token\n');
      const started = Date.now();
      await expect(kubelet.listPods()).rejects.toThrow(`kubelet: no answer from https://127.0.0.1:${port} within 300 ms`);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      held.forEach((s) => s.destroy());
      server.close();
    }
  });

  it('a caller in a pod gets gRPC Unavailable naming the kubelet, through the real Workload API server', async () => {
    // this process, seen in a pod: its real stat (start time) with a pod's cgroup file
    const proc = procRoot(process.pid, `0::/kubepods/besteffort/pod${UID}/${CID}\n`);
    writeFileSync(join(proc, String(process.pid), 'stat'), readFileSync('/proc/self/stat'));
    const { server: closed, port } = await listening(() => undefined);
    await new Promise((resolve) => closed.close(resolve)); // nothing listens on the port now
    const tokenPath = join(proc, 'token');
    writeFileSync(tokenPath, 'sa-token\n');
    const k8s = createK8sAttestor({ ...CONFIG, kubeletUrl: `https://127.0.0.1:${port}`, skipKubeletVerification: true, tokenPath }, { procRoot: proc });
    const source = new MemoryIdentitySource(await createTrustDomain('example.org'), []);
    const socketPath = join(proc, 'agent.sock');
    const server = await startWorkloadApiServer({ socketPath, impl: createWorkloadApi({ attest: combineWorkloadAttestors([createUnixAttestor(), k8s]), source }) });
    const client = createWorkloadApiClient(`unix://${socketPath}`);
    try {
      const err: unknown = await client.fetchJWTSVID({ audience: ['a'] }).catch((e: unknown) => e);
      expect(isGrpcError(err, grpcStatus.UNAVAILABLE), String(err)).toBe(true);
      expect((err as { details: string }).details).toMatch(new RegExp(`workload attestation failed: kubelet: https://127.0.0.1:${port}: unreachable \\(ECONNREFUSED\\)`));
      expect((err as { details: string }).details).not.toContain('sa-token');
    } finally {
      client.close();
      await server.close(200);
    }
  });
});

describe('config: workloadAttestors.k8s', () => {
  const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };
  const parse = (k8s: unknown, env: Record<string, string> = {}) =>
    parseAgentConfig({ path: '/etc/wisp/agent.json', content: { ...base, workloadAttestors: { k8s } } }, env, {}).workloadAttestors?.k8s;

  it("applies SPIRE's defaults; the node name comes from MY_NODE_NAME", () => {
    expect(parse({}, { MY_NODE_NAME: 'node-1' })).toEqual({
      kubeletUrl: 'https://node-1:10250',
      kubeletCa: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      skipKubeletVerification: false,
      tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      nodeName: 'node-1',
      podWatchIntervalSeconds: 0.5,
      maxPollAttempts: 60,
    });
    expect(parse({})?.kubeletUrl).toBe('https://127.0.0.1:10250');
    expect(parse({ kubeletUrl: 'https://10.0.0.5:10250/' }, { MY_NODE_NAME: 'node-1' })?.kubeletUrl).toBe('https://10.0.0.5:10250');
  });

  it('takes it from the environment as JSON', () => {
    const c = parseAgentConfig({ path: '/a.json', content: base }, { WISP_WORKLOAD_ATTESTORS: '{"k8s":{"certificatePath":"/c.pem","privateKeyPath":"/k.pem"}}' }, {});
    expect(c.workloadAttestors?.k8s).toMatchObject({ certificatePath: '/c.pem', privateKeyPath: '/k.pem' });
  });

  it.each([
    [{ kubeletUrl: 'http://127.0.0.1:10255' }, /kubeletUrl.*must be https/],
    [{ certificatePath: '/c.pem' }, /certificatePath and privateKeyPath go together/],
    [{ certificatePath: '/c.pem', privateKeyPath: '/k.pem', tokenPath: '/t' }, /not both/],
    [{ podWatchIntervalSeconds: 0 }, /podWatchIntervalSeconds.*0.05 to 60/],
    [{ tokenPath: 'relative' }, /tokenPath.*absolute/],
    [{ kubletUrl: 'https://x' }, /kubletUrl.*unknown key/],
  ])('refuses %j', (k8s, message) => {
    expect(() => parse(k8s)).toThrow(message);
  });

  it('refuses a node name from the environment that would change the URL', () => {
    expect(() => parse({}, { MY_NODE_NAME: 'evil.example/x?' })).toThrow(/env MY_NODE_NAME.*not a host name/);
  });
});
