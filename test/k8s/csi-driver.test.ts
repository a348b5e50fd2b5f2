// wisp-csi-driver against the real testbed (../shared/k8s-testbed): csi-sanity (kubernetes-csi/csi-test v5, the
// node specs that apply to a node-only driver) on its CSI socket, and the real kubelet: registration through
// plugins_registry, the CSIDriver object, a pod with an inline read-only volume that reaches Running, the
// published target a read-only bind of the agent's socket directory, a real Workload API client getting an
// X509-SVID through it, a driver restart between publish and unpublish, and the pod's deletion unmounting it.
// The agent is a real wisp-agent with the real issuer (wrangler dev). Needs root (mounts, the kubelet).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, stopProcess, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { parseMountInfo, topMountAt } from '../../src/csi/mountinfo.js';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';

const tb = testbed();
const runs = tb.ready && tb.node;
const skipReason = !tb.ready ? tb.skipReason : !tb.node ? tb.nodeSkipReason : undefined;

const TD = 'csi.example.org';
const WORKLOAD_ID = `spiffe://${TD}/workload/csi-pod`;
/** a name of our own, so nothing else on the shared testbed (csi.spiffe.io, minicsi) clashes */
const PLUGIN = 'csi.wisp.test';
const VOLUME = 'spiffe-workload-api';
const BIN = join(REPO_ROOT, 'bin', 'wisp-csi-driver.js');
const run = promisify(execFile);

interface Driver {
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts bin/wisp-csi-driver.js and waits for its CSI socket (and registration socket, if any). */
async function startDriver(args: string[], sockets: string[]): Promise<Driver> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  await waitFor('the driver sockets', async () => {
    if (child.exitCode !== null) throw new Error(`wisp-csi-driver exited ${child.exitCode}:\n${output}`);
    return sockets.every((s) => existsSync(s)) && output.includes('wisp-csi-driver started') ? true : undefined;
  }, 30_000);
  return { process: child, output: () => output, stop: () => stopProcess(child) };
}

const mountsNow = () => parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));

describe.skipIf(!runs)(`wisp-csi-driver on the testbed${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const env = (tb.ready ? tb.env : {}) as TestbedEnv;
  const ns = `wisp-csi-${randomBytes(4).toString('hex')}`;
  const pluginDir = join(env.TESTBED_KUBELET_ROOT ?? '/nonexistent', 'plugins', PLUGIN);
  const csiSocket = join(pluginDir, 'csi.sock');
  const regSocket = join(env.TESTBED_PLUGINS_REGISTRY ?? '/nonexistent', `${PLUGIN}-reg.sock`);
  let root: string;
  let socketDir: string;
  let issuer: RunningIssuer | undefined;
  let agent: RunningAgent | undefined;
  const drivers: Driver[] = [];
  const podUids: string[] = [];

  const kubeletDriverArgs = () => [
    '-workload-api-socket-dir', socketDir,
    '-csi-socket-path', csiSocket,
    '-plugin-name', PLUGIN,
    '-node-id', env.TESTBED_NODE_NAME,
    '-kubelet-registration-socket', regSocket,
  ];
  const startKubeletDriver = async () => {
    const d = await startDriver(kubeletDriverArgs(), [csiSocket, regSocket]);
    drivers.push(d);
    return d;
  };
  const csinodeDrivers = () => (JSON.parse(kubectl(env, ['get', 'csinode', env.TESTBED_NODE_NAME, '-o', 'json'])) as { spec: { drivers?: { name: string; nodeID: string }[] } }).spec.drivers ?? [];
  const targetOf = (uid: string) => join(env.TESTBED_KUBELET_ROOT, 'pods', uid, 'volumes', 'kubernetes.io~csi', VOLUME, 'mount');
  const pod = (name: string, readOnly: boolean) =>
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns },
      spec: {
        containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', volumeMounts: [{ name: VOLUME, mountPath: '/spiffe-workload-api', readOnly: true }] }],
        volumes: [{ name: VOLUME, csi: { driver: PLUGIN, readOnly } }],
      },
    });
  const getPod = (name: string) => {
    try {
      return JSON.parse(kubectl(env, ['get', 'pod', name, '-n', ns, '-o', 'json'])) as { metadata: { uid: string }; status: { phase: string } };
    } catch {
      return undefined;
    }
  };

  beforeAll(async () => {
    root = mkdtempSync('/tmp/wcsi-'); // short: unix socket paths are at most 108 bytes
    socketDir = join(root, 'agent-sockets');
    mkdirSync(socketDir, { mode: 0o755 });
    ({ issuer, agent } = await startTwoWorkloads({
      trustDomain: TD,
      serverId: WORKLOAD_ID,
      clientId: `spiffe://${TD}/workload/unused`,
      clientUid: 65534,
      x509SvidTtl: '10m',
      issuerStateDir: join(root, 'issuer'),
      agentDataDir: join(root, 'agent-data'),
      socketPath: join(socketDir, 'agent.sock'),
    }));
    kubectl(env, ['create', 'namespace', ns]);
    kubectl(env, ['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'CSIDriver',
      metadata: { name: PLUGIN },
      spec: { attachRequired: false, podInfoOnMount: true, fsGroupPolicy: 'None', volumeLifecycleModes: ['Ephemeral'] },
    }));
    await waitFor('the namespace default service account', async () => (kubectl(env, ['get', 'serviceaccount', 'default', '-n', ns, '-o', 'name']).trim() ? true : undefined), 30_000);
  }, 240_000);

  afterAll(async () => {
    // pods first, while a driver still serves NodeUnpublishVolume; then anything left mounted by hand
    if (drivers.every((d) => d.process.exitCode !== null)) await startKubeletDriver().catch(() => undefined);
    try {
      kubectl(env, ['delete', 'pod', '--all', '-n', ns, '--wait=true', '--timeout=60s']);
    } catch {
      /* forced below */
    }
    for (const uid of podUids) {
      for (const m of mountsNow().reverse()) if (m.mountPoint.startsWith(join(env.TESTBED_KUBELET_ROOT, 'pods', uid))) await run('umount', [m.mountPoint]).catch(() => undefined);
    }
    try {
      kubectl(env, ['delete', 'pod', '--all', '-n', ns, '--grace-period=0', '--force']);
    } catch {
      /* none left */
    }
    for (const args of [['delete', 'namespace', ns, '--wait=false'], ['delete', 'csidriver', PLUGIN, '--ignore-not-found']]) {
      try {
        kubectl(env, args);
      } catch {
        /* already gone */
      }
    }
    for (const d of drivers) await d.stop();
    rmSync(regSocket, { force: true });
    rmSync(pluginDir, { recursive: true, force: true });
    await agent?.stop();
    await issuer?.stop();
    if (root) {
      for (const m of mountsNow().reverse()) if (m.mountPoint.startsWith(root)) await run('umount', [m.mountPoint]).catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    }
  }, 180_000);

  it('passes csi-sanity (the node specs of a node-only driver)', async () => {
    const dir = join(root, 'sanity');
    mkdirSync(dir);
    const socket = join(dir, 'csi.sock');
    const driver = await startDriver(['-workload-api-socket-dir', socketDir, '-csi-socket-path', socket, '-node-id', 'sanity-node'], [socket]);
    drivers.push(driver);
    const junit = join(dir, 'junit.xml');
    const result = await run(
      join(env.TESTBED_BIN, 'csi-sanity'),
      [`--csi.endpoint=unix://${socket}`, `--csi.mountdir=${dir}/mnt`, `--csi.stagingdir=${dir}/stage`, `--csi.junitfile=${junit}`, '--ginkgo.skip=Controller Server|should remove target path|volume does not exist on the specified path'],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    ).catch((err: { stdout?: string; code?: number }) => ({ stdout: err.stdout ?? '', failedWith: err.code }));
    await driver.stop();
    expect(result, result.stdout.slice(-4000)).not.toHaveProperty('failedWith');
    const xml = readFileSync(junit, 'utf8');
    const passed = [...xml.matchAll(/<testcase name="\[It\] ([^"]+)"[^>]*status="passed"/g)].map((m) => m[1]);
    expect(xml).toMatch(/<testsuite [^>]*failures="0"/);
    expect(passed).toEqual(
      expect.arrayContaining([
        'Identity Service GetPluginCapabilities should return appropriate capabilities',
        'Identity Service Probe should return appropriate information',
        'Identity Service GetPluginInfo should return appropriate information',
        'Node Service NodeGetCapabilities should return appropriate capabilities',
        'Node Service NodeGetInfo should return appropriate values',
        'Node Service NodePublishVolume should fail when no volume id is provided',
        'Node Service NodePublishVolume should fail when no target path is provided',
        'Node Service NodePublishVolume should fail when no volume capability is provided',
        'Node Service NodeUnpublishVolume should fail when no volume id is provided',
        'Node Service NodeUnpublishVolume should fail when no target path is provided',
      ]),
    );
    expect(existsSync(socket)).toBe(false); // removed on SIGTERM
  });

  it('registers with the kubelet, publishes a read-only bind of the agent socket dir into a Running pod, survives a restart, and unpublishes on delete', async () => {
    const first = await startKubeletDriver();
    await waitFor('the kubelet to register the driver (CSINode)', async () => (csinodeDrivers().some((d) => d.name === PLUGIN && d.nodeID === env.TESTBED_NODE_NAME) ? true : undefined), 60_000, 500);
    // the kubelet tells the plugin (NotifyRegistrationStatus) after it has written CSINode, so this can come a moment later
    await waitFor('the kubelet to notify the driver of its registration', async () => (/registered with the kubelet/.test(first.output()) ? true : undefined), 15_000, 100);

    kubectl(env, ['apply', '-f', '-'], pod('workload', true));
    const running = await waitFor('the pod to reach Running', async () => {
      const p = getPod('workload');
      return p?.status.phase === 'Running' ? p : undefined;
    }, 90_000, 500);
    podUids.push(running.metadata.uid);
    const target = targetOf(running.metadata.uid);

    // the kubelet's target path: a read-only bind mount of the socket directory (same inode), holding the socket
    const mount = topMountAt(mountsNow(), target);
    expect(mount, `no mount at ${target}`).toBeDefined();
    expect(mount!.options).toContain('ro');
    const [t, s] = [statSync(target), statSync(socketDir)];
    expect([t.dev, t.ino]).toEqual([s.dev, s.ino]);
    expect(statSync(join(target, 'agent.sock')).isSocket()).toBe(true);

    // a real Workload API client through the published path (a short symlink: the path passes 108 bytes)
    const link = join(root, 'pod');
    symlinkSync(target, link);
    const client = createWorkloadApiClient(`unix://${link}/agent.sock`);
    try {
      const svidIds = await waitFor('an X509-SVID through the CSI volume', async () => {
        const ac = new AbortController();
        for await (const msg of client.fetchX509SVID({ signal: ac.signal, timeoutMs: 10_000 })) {
          ac.abort();
          return msg.svids.length > 0 ? msg.svids.map((x) => x.spiffeId) : undefined;
        }
        return undefined;
      }, 60_000, 1000);
      expect(svidIds).toEqual([WORKLOAD_ID]);
    } finally {
      client.close();
    }

    // restart between publish and unpublish: the registration socket goes with the driver, the mount stays
    await first.stop();
    expect(existsSync(regSocket)).toBe(false);
    expect(topMountAt(mountsNow(), target)?.options).toContain('ro');
    const second = await startKubeletDriver();
    await waitFor('the kubelet to register the restarted driver', async () => (second.output().includes('registered with the kubelet') ? true : undefined), 60_000, 500);

    kubectl(env, ['delete', 'pod', 'workload', '-n', ns, '--wait=true', '--timeout=90s']);
    expect(topMountAt(mountsNow(), target)).toBeUndefined();
    expect(existsSync(target)).toBe(false);
    // kubectl blocked this event loop: read the driver's pipe before looking at its log
    await waitFor('the restarted driver to log the unpublish', async () => (/volume unpublished/.test(second.output()) ? true : undefined), 10_000);
  });

  it('leaves a pod whose inline volume is not read-only without a mount, with the reason in its events', async () => {
    if (drivers.every((d) => d.process.exitCode !== null)) await startKubeletDriver();
    kubectl(env, ['apply', '-f', '-'], pod('writable', false));
    const event = await waitFor('a FailedMount event', async () => {
      const events = JSON.parse(kubectl(env, ['get', 'events', '-n', ns, '--field-selector', 'involvedObject.name=writable', '-o', 'json'])) as { items: { reason: string; message: string }[] };
      return events.items.find((e) => e.reason === 'FailedMount');
    }, 90_000, 1000);
    expect(event.message).toMatch(/InvalidArgument.*published read-only/);
    const p = getPod('writable');
    expect(p?.status.phase).toBe('Pending');
    podUids.push(p!.metadata.uid);
    expect(mountsNow().some((m) => m.mountPoint.startsWith(join(env.TESTBED_KUBELET_ROOT, 'pods', p!.metadata.uid, 'volumes', 'kubernetes.io~csi')))).toBe(false);
  });
});
