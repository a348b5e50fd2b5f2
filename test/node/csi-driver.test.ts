// wisp-csi-driver's parts in process (src/csi): the upstream driver's flags in both spellings, which
// NodePublishVolume requests are refused with which CSI code, mountinfo parsing, and (as root) real read-only
// bind mounts published, re-published, discovered after a restart and unpublished; the CSI services on a
// real unix socket through grpc-js. The kubelet and csi-sanity run against the bin in test/k8s/csi-driver.test.ts.
import { create } from '@bufbuild/protobuf';
import { Client, credentials, makeGenericClientConstructor, status, type ServiceError } from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeGoFlags, parseCsiArgs } from '../../src/csi/config.js';
import {
  GetPluginInfoRequestSchema,
  Identity,
  Node,
  NodeGetInfoRequestSchema,
  NodePublishVolumeRequestSchema,
  NodeUnpublishVolumeRequestSchema,
  VolumeCapability_AccessMode_Mode as Mode,
  VolumeCapability_BlockVolumeSchema,
  type GetPluginInfoResponse,
  type NodeGetInfoResponse,
} from '../../src/csi/gen/csi/v1/csi_pb.js';
import { createCsiLogger } from '../../src/csi/log.js';
import { createSystemMounter } from '../../src/csi/mounter.js';
import { parseMountInfo, readMountInfo, topMountAt } from '../../src/csi/mountinfo.js';
import { createNodeService, publishRequestProblem, type NodeService } from '../../src/csi/node-service.js';
import { createCsiServer, listenUnix, VENDOR_VERSION } from '../../src/csi/server.js';
import { grpcServiceDefinition } from '../../src/node/workload-api/service.js';

const log = createCsiLogger('error');
const isRoot = process.getuid?.() === 0;

describe('flags (the upstream driver manifest args, one dash or two)', () => {
  it('parses the upstream DaemonSet args with the node name from MY_NODE_NAME, and the defaults', () => {
    const config = parseCsiArgs(['-workload-api-socket-dir', '/spire-agent-socket', '-csi-socket-path', '/spiffe-csi/csi.sock'], { MY_NODE_NAME: 'node-a' });
    expect(config).toEqual({
      workloadApiSocketDir: '/spire-agent-socket',
      csiSocketPath: '/spiffe-csi/csi.sock',
      pluginName: 'csi.spiffe.io',
      nodeId: 'node-a',
      logLevel: 'info',
      kubeletRegistrationPath: '/spiffe-csi/csi.sock',
    });
  });

  it('takes -name=value and --name=value, -node-id over the environment, and -node-id-env', () => {
    const config = parseCsiArgs(
      ['--workload-api-socket-dir=/run/sock', '-plugin-name=csi.wisp.test', '--node-id', 'explicit', '-log-level', 'debug', '-kubelet-registration-socket', '/var/lib/kubelet/plugins_registry/csi.wisp.test-reg.sock', '--kubelet-registration-path=/var/lib/kubelet/plugins/csi.wisp.test/csi.sock'],
      { MY_NODE_NAME: 'from-env' },
    );
    expect(config).toMatchObject({ workloadApiSocketDir: '/run/sock', pluginName: 'csi.wisp.test', nodeId: 'explicit', logLevel: 'debug' });
    expect(config.kubeletRegistrationSocket).toBe('/var/lib/kubelet/plugins_registry/csi.wisp.test-reg.sock');
    expect(config.kubeletRegistrationPath).toBe('/var/lib/kubelet/plugins/csi.wisp.test/csi.sock');
    expect(parseCsiArgs(['-workload-api-socket-dir', '/s', '-node-id-env', 'NODE'], { NODE: 'n2', MY_NODE_NAME: 'no' }).nodeId).toBe('n2');
  });

  it('rewrites only single-dash long flags, and nothing after --', () => {
    expect(normalizeGoFlags(['-plugin-name', '-x', '-h', '--node-id', 'v', '-ab=c', '--', '-csi-socket-path'])).toEqual(['--plugin-name', '-x', '-h', '--node-id', 'v', '--ab=c', '--', '-csi-socket-path']);
  });

  it.each([
    ['no socket dir', ['-node-id', 'n'], {}, /-workload-api-socket-dir is required/],
    ['a relative socket dir', ['-workload-api-socket-dir', 'run/sock', '-node-id', 'n'], {}, /-workload-api-socket-dir must be an absolute path/],
    ['a relative CSI socket', ['-workload-api-socket-dir', '/s', '-csi-socket-path', 'csi.sock', '-node-id', 'n'], {}, /-csi-socket-path must be an absolute path/],
    ['no node ID', ['-workload-api-socket-dir', '/s'], {}, /no node ID: pass -node-id or set MY_NODE_NAME/],
    ['an unknown flag', ['-workload-api-socket-dir', '/s', '-node-id', 'n', '-trust-domain', 'x'], {}, /unknown option '--trust-domain'/],
    ['a bad log level', ['-workload-api-socket-dir', '/s', '-node-id', 'n', '-log-level', 'loud'], {}, /loud/],
    ['a plugin name that is no domain name', ['-workload-api-socket-dir', '/s', '-node-id', 'n', '-plugin-name', 'csi_spiffe'], {}, /not a valid CSI driver name/],
    ['a plugin name over 63 characters', ['-workload-api-socket-dir', '/s', '-node-id', 'n', '-plugin-name', `${'a'.repeat(60)}.io.x`], {}, /longer than 63/],
  ])('refuses %s', (_name, args, env, message) => {
    expect(() => parseCsiArgs(args, env)).toThrow(message);
  });

  it('answers -h and -help with the usage', () => {
    for (const flag of ['-h', '-help', '--help']) {
      expect(() => parseCsiArgs([flag], {})).toThrow(expect.objectContaining({ help: true, message: expect.stringContaining('--workload-api-socket-dir <dir>') }));
    }
  });
});

/** What the kubelet sends for an inline `csi: {driver, readOnly: true}` volume (CSI ephemeral volume). */
function kubeletRequest(targetPath = '/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/spiffe/mount', overrides: { readonly?: boolean } = {}) {
  return create(NodePublishVolumeRequestSchema, {
    volumeId: 'csi-0123abcd',
    targetPath,
    volumeCapability: { accessType: { case: 'mount', value: {} }, accessMode: { mode: Mode.SINGLE_NODE_WRITER } },
    readonly: true,
    volumeContext: { 'csi.storage.k8s.io/ephemeral': 'true', 'csi.storage.k8s.io/pod.name': 'p', 'csi.storage.k8s.io/pod.namespace': 'ns' },
    ...overrides,
  });
}

describe('NodePublishVolume request validation (CSI codes)', () => {
  it('accepts the kubelet request for an inline read-only volume, in each single-node access mode', () => {
    expect(publishRequestProblem(kubeletRequest())).toBeUndefined();
    for (const mode of [Mode.SINGLE_NODE_READER_ONLY, Mode.SINGLE_NODE_SINGLE_WRITER, Mode.SINGLE_NODE_MULTI_WRITER]) {
      const req = kubeletRequest();
      req.volumeCapability!.accessMode!.mode = mode;
      expect(publishRequestProblem(req)).toBeUndefined();
    }
  });

  const cases: [string, (r: ReturnType<typeof kubeletRequest>) => void, status, RegExp][] = [
    ['no volume id', (r) => (r.volumeId = ''), status.INVALID_ARGUMENT, /missing required volume id/],
    ['no target path', (r) => (r.targetPath = ''), status.INVALID_ARGUMENT, /missing required target path/],
    ['a relative target path', (r) => (r.targetPath = 'pods/x/mount'), status.INVALID_ARGUMENT, /absolute path/],
    ['no volume capability', (r) => (r.volumeCapability = undefined), status.INVALID_ARGUMENT, /missing required volume capability$/],
    ['no access type', (r) => (r.volumeCapability!.accessType = { case: undefined }), status.INVALID_ARGUMENT, /access type/],
    ['a block volume', (r) => (r.volumeCapability!.accessType = { case: 'block', value: create(VolumeCapability_BlockVolumeSchema) }), status.FAILED_PRECONDITION, /block volumes/],
    ['an fs_type', (r) => r.volumeCapability!.accessType.case === 'mount' && (r.volumeCapability!.accessType.value.fsType = 'ext4'), status.FAILED_PRECONDITION, /fs_type/],
    ['mount flags', (r) => r.volumeCapability!.accessType.case === 'mount' && r.volumeCapability!.accessType.value.mountFlags.push('rw'), status.FAILED_PRECONDITION, /mount_flags/],
    ['no access mode', (r) => (r.volumeCapability!.accessMode = undefined), status.INVALID_ARGUMENT, /access mode/],
    ['a multi-node access mode', (r) => (r.volumeCapability!.accessMode!.mode = Mode.MULTI_NODE_READER_ONLY), status.FAILED_PRECONDITION, /MULTI_NODE_READER_ONLY/],
    ['readonly false', (r) => (r.readonly = false), status.INVALID_ARGUMENT, /readOnly: true/],
    ['a persistent (not ephemeral) volume', (r) => delete r.volumeContext['csi.storage.k8s.io/ephemeral'], status.INVALID_ARGUMENT, /only ephemeral inline volumes/],
    ['ephemeral "false"', (r) => (r.volumeContext['csi.storage.k8s.io/ephemeral'] = 'false'), status.INVALID_ARGUMENT, /only ephemeral inline volumes/],
  ];
  it.each(cases)('refuses %s', (_name, mutate, code, message) => {
    const req = kubeletRequest();
    mutate(req);
    const problem = publishRequestProblem(req);
    expect(problem?.code).toBe(code);
    expect(problem?.details).toMatch(message);
  });
});

describe('mountinfo', () => {
  it('parses fields, optional fields and the kernel octal escapes', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '412 29 259:2 /run/spire/agent\\040sockets /var/lib/kubelet/pods/u\\011x/mount ro,relatime shared:1 master:2 - ext4 /dev/nvme0n1p2 rw',
      'garbage line',
      '',
    ].join('\n');
    const entries = parseMountInfo(text);
    expect(entries).toHaveLength(2);
    expect(entries[0]).toEqual({ mountId: 36, parentId: 35, device: '98:0', root: '/mnt1', mountPoint: '/mnt2', options: ['rw', 'noatime'], fsType: 'ext3', source: '/dev/root' });
    expect(entries[1]).toMatchObject({ root: '/run/spire/agent sockets', mountPoint: '/var/lib/kubelet/pods/u\tx/mount', options: ['ro', 'relatime'], fsType: 'ext4' });
  });

  it('finds the last mount stacked at a path, and reads the real table', async () => {
    const entries = parseMountInfo('1 0 0:1 / /t rw - tmpfs a rw\n2 1 0:2 / /t ro - tmpfs b rw\n');
    expect(topMountAt(entries, '/t')?.source).toBe('b');
    expect(topMountAt(entries, '/u')).toBeUndefined();
    expect(topMountAt(await readMountInfo(), '/')).toBeDefined();
  });
});

describe.skipIf(!isRoot)(`real bind mounts${isRoot ? '' : ' (skipped: mount(8) needs root)'}`, () => {
  let root: string;
  let socketDir: string;
  let agentSocket: NetServer;
  const service = (): NodeService => createNodeService({ socketDir, mounter: createSystemMounter(socketDir), log });
  const targetOf = (name: string) => join(root, 'pods', name, 'mount');
  const mountAt = async (path: string) => topMountAt(await readMountInfo(), path);

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'wisp-csi-unit-'));
    socketDir = join(root, 'agent-sockets');
    mkdirSync(socketDir);
    agentSocket = createServer((c) => c.end('hello'));
    await new Promise<void>((r) => agentSocket.listen(join(socketDir, 'agent.sock'), r));
  });

  afterAll(async () => {
    for (const entry of (await readMountInfo()).reverse()) if (entry.mountPoint.startsWith(root)) execFileSync('umount', [entry.mountPoint]);
    agentSocket?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('publishes a read-only bind of the socket directory, idempotently, and a restarted driver unpublishes it', async () => {
    const target = targetOf('a');
    mkdirSync(join(target, '..'), { recursive: true });
    await service().publish(kubeletRequest(target));
    const mount = await mountAt(target);
    expect(mount?.options).toContain('ro');
    // the agent's socket answers through the published path, and nothing can be written there
    const reply = await new Promise<string>((resolve, reject) => {
      const c = connect(join(target, 'agent.sock'));
      let data = '';
      c.on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
    });
    expect(reply).toBe('hello');
    expect(() => writeFileSync(join(target, 'x'), 'x')).toThrow(/EROFS/);
    await service().publish(kubeletRequest(target)); // again: still one mount
    expect((await readMountInfo()).filter((e) => e.mountPoint === target)).toHaveLength(1);

    await service().unpublish(create(NodeUnpublishVolumeRequestSchema, { volumeId: 'csi-0123abcd', targetPath: target })); // a new instance: state from mountinfo
    expect(await mountAt(target)).toBeUndefined();
    expect(existsSync(target)).toBe(false);
    expect(existsSync(join(socketDir, 'agent.sock'))).toBe(true); // the source is untouched
    await service().unpublish(create(NodeUnpublishVolumeRequestSchema, { volumeId: 'csi-0123abcd', targetPath: target })); // idempotent
  });

  it('makes a bind left writable read-only, and refuses a target holding another mount with ALREADY_EXISTS', async () => {
    const target = targetOf('b');
    mkdirSync(target, { recursive: true });
    execFileSync('mount', ['--bind', socketDir, target]); // a driver stopped between bind and remount
    expect((await mountAt(target))?.options).toContain('rw');
    await service().publish(kubeletRequest(target));
    expect((await mountAt(target))?.options).toContain('ro');

    const other = targetOf('c');
    mkdirSync(other, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', other]);
    await expect(service().publish(kubeletRequest(other))).rejects.toMatchObject({ code: status.ALREADY_EXISTS });
  });

  it('mounts nothing for a refused request', async () => {
    const target = targetOf('d');
    mkdirSync(join(target, '..'), { recursive: true });
    await expect(service().publish(kubeletRequest(target, { readonly: false }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(existsSync(target)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(target);
  });
});

describe('the CSI socket (grpc-js, generated messages)', () => {
  let dir: string;
  let client: Client;
  let server: ReturnType<typeof createCsiServer>;
  const call = <T>(method: string, request: unknown) =>
    new Promise<T>((resolve, reject) => (client as unknown as Record<string, (r: unknown, cb: (e: ServiceError | null, v: T) => void) => void>)[method]!.call(client, request, (e, v) => (e ? reject(e) : resolve(v))));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wisp-csi-grpc-'));
    server = createCsiServer({ pluginName: 'csi.wisp.test', nodeId: 'node-7', socketDir: dir, node: createNodeService({ socketDir: dir, mounter: createSystemMounter(dir), log }), log });
    await listenUnix(server, join(dir, 'csi.sock'));
    const Ctor = makeGenericClientConstructor({ ...grpcServiceDefinition(Identity), ...grpcServiceDefinition(Node) }, 'Csi');
    client = new Ctor(`unix://${join(dir, 'csi.sock')}`, credentials.createInsecure());
  });

  afterAll(() => {
    client?.close();
    server?.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers Identity and Node info on the spec paths (/csi.v1.Identity/GetPluginInfo, …)', async () => {
    expect(grpcServiceDefinition(Identity).getPluginInfo!.path).toBe('/csi.v1.Identity/GetPluginInfo');
    const info = await call<GetPluginInfoResponse>('getPluginInfo', create(GetPluginInfoRequestSchema));
    expect({ name: info.name, vendorVersion: info.vendorVersion }).toEqual({ name: 'csi.wisp.test', vendorVersion: VENDOR_VERSION });
    const node = await call<NodeGetInfoResponse>('nodeGetInfo', create(NodeGetInfoRequestSchema));
    expect(node.nodeId).toBe('node-7');
  });

  it('refuses a bad publish with its code over the wire, and an RPC it does not serve with UNIMPLEMENTED', async () => {
    await expect(call('nodePublishVolume', create(NodePublishVolumeRequestSchema, { targetPath: '/x' }))).rejects.toMatchObject({ code: status.INVALID_ARGUMENT, details: 'request missing required volume id' });
    const raw = new Client(`unix://${join(dir, 'csi.sock')}`, credentials.createInsecure());
    const err = await new Promise<ServiceError>((resolve) =>
      raw.makeUnaryRequest('/csi.v1.Node/NodeStageVolume', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e) => resolve(e!)),
    );
    raw.close();
    expect(err.code).toBe(status.UNIMPLEMENTED);
  });
});
