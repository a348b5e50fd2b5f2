import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config.js';
import { createDockerAttestor } from '../../src/agent/workload-api/docker-attestor.js';
import { createDockerEngine, parseContainerInspect } from '../../src/agent/workload-api/docker-engine.js';
import { processStartTime } from '../../src/agent/workload-api/unix-attestor.js';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import { startWorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createWorkloadAttestor } from '../../src/agent/workload-api/workload-attestors.js';
import { isWispError } from '../../src/shared/errors.js';
import { createTrustDomain, issueX509Svid } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';

const CID = '7c7d1371dd2d04ced83ee7b966d7edbe8636148784e7dc077b3e5806609e5853';

/** An Engine API stand-in on a Unix socket: `answer` decides each request's status and body. */
async function fakeEngine(answer: (url: string) => { status: number; body: unknown } | 'hang'): Promise<{ socketPath: string; urls: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'wisp-docker-api-'));
  const socketPath = join(dir, 'docker.sock');
  const urls: string[] = [];
  const server: Server = createServer((req, res) => {
    urls.push(req.url!);
    const a = answer(req.url!);
    if (a === 'hang') return;
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    socketPath,
    urls,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const procs: string[] = [];
afterAll(() => procs.forEach((p) => rmSync(p, { recursive: true, force: true })));

/** A /proc written by the test: one pid with the given cgroup file (no stat: no start time to compare). */
function fakeProc(cgroup: string): string {
  const proc = mkdtempSync(join(tmpdir(), 'wisp-docker-proc-'));
  procs.push(proc);
  mkdirSync(join(proc, '42'));
  writeFileSync(join(proc, '42', 'cgroup'), cgroup);
  return proc;
}
const PEER = { pid: 42, uid: 1000, gid: 1000 };

/**
 * Container inspect as the Engine API documents it (ContainerInspectResponse, API 1.41; trimmed to the
 * fields around those read), shapes as a real Engine 20.10 answered them on this machine.
 */
const INSPECT = {
  Id: CID,
  Created: '2026-12-07T03:07:26.901Z',
  Path: '/bin/sleep',
  Args: ['30'],
  State: { Status: 'running', Running: true, Pid: 2182 },
  Image: 'sha256:62d0bbe6fe01bb22d87a88b5898ddfa9da1ec0bdd77382d18b02c1e4608097bd',
  Name: '/quizzical_zhukovsky',
  Config: {
    Hostname: '7c7d1371dd2d',
    Env: ['ENVIRONMENT=prod', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Cmd: ['/bin/sleep', '30'],
    Image: 'envoyproxy/envoy:contrib-v1.29.1',
    Labels: { 'com.example.name': 'foo' },
  },
};

describe('docker: recorded Engine API answers (error paths a real Engine does not produce on demand)', () => {
  it('a process in a container: selectors from the container inspect and the image inspect', async () => {
    const engine = await fakeEngine((url) =>
      url === `/v1.41/containers/${CID}/json` ? { status: 200, body: INSPECT } : url === '/v1.41/images/envoyproxy/envoy%3Acontrib-v1.29.1/json' ? { status: 200, body: { Id: 'sha256:' + 'e'.repeat(64) } } : { status: 404, body: { message: 'no such thing' } },
    );
    try {
      const attest = createDockerAttestor({ dockerSocketPath: `unix://${engine.socketPath}`, dockerVersion: '1.41' }, { procRoot: fakeProc(`0::/system.slice/docker-${CID}.scope\n`) });
      expect(await attest(PEER)).toEqual([
        { type: 'docker', value: 'label:com.example.name:foo' },
        { type: 'docker', value: 'env:ENVIRONMENT=prod' },
        { type: 'docker', value: 'env:PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
        { type: 'docker', value: 'image_id:envoyproxy/envoy:contrib-v1.29.1' },
        { type: 'docker', value: `image_config_digest:sha256:${'e'.repeat(64)}` },
      ]);
      expect(engine.urls).toEqual([`/v1.41/containers/${CID}/json`, '/v1.41/images/envoyproxy/envoy%3Acontrib-v1.29.1/json']);
    } finally {
      await engine.close();
    }
  });

  it.each([
    ['cgroup v1, cgroupfs driver', `12:memory:/docker/${CID}\n1:name=systemd:/docker/${CID}\n0::/docker/${CID}\n`],
    ['cgroup v2, systemd driver', `0::/system.slice/docker-${CID}.scope\n`],
    ['cgroup v2 seen from a cgroup namespace', `0::/../docker-${CID}.scope\n`],
  ])('finds the container in %s', async (_name, cgroup) => {
    const engine = await fakeEngine(() => ({ status: 200, body: { Id: CID, Config: { Image: '', Labels: null, Env: null } } }));
    try {
      await createDockerAttestor({ dockerSocketPath: `unix://${engine.socketPath}` }, { procRoot: fakeProc(cgroup) })(PEER);
      expect(engine.urls).toEqual([`/containers/${CID}/json`]);
    } finally {
      await engine.close();
    }
  });

  it('a process in no container gets no docker selectors and Docker is not asked', async () => {
    const attest = createDockerAttestor({ dockerSocketPath: 'unix:///nonexistent/docker.sock' }, { procRoot: fakeProc('0::/user.slice/user-1000.slice/session-2.scope\n') });
    expect(await attest(PEER)).toEqual([]);
  });

  it('a container cgroup below a user delegation is not trusted (the user names those cgroups)', async () => {
    const attest = createDockerAttestor({ dockerSocketPath: 'unix:///nonexistent/docker.sock' }, { procRoot: fakeProc(`0::/user.slice/user-1000.slice/user@1000.service/docker-${CID}.scope\n`) });
    expect(await attest(PEER)).toEqual([]);
  });

  const fails = async (p: Promise<unknown>, message: RegExp) => {
    const err = await p.catch((e: unknown) => e);
    expect(isWispError(err) && err.code).toBe('ERR_UNAVAILABLE');
    expect((err as Error).message).toMatch(message);
  };

  it('an unreachable Docker: Unavailable at once, with the socket and a hint', async () => {
    const attest = createDockerAttestor({ dockerSocketPath: 'unix:///nonexistent/docker.sock' }, { procRoot: fakeProc(`0::/docker/${CID}\n`) });
    const t = Date.now();
    await fails(attest(PEER), /docker: cannot reach the Docker Engine at unix:\/\/\/nonexistent\/docker.sock.*ENOENT.*is dockerd running/);
    expect(Date.now() - t).toBeLessThan(1_000);
  });

  it('a Docker that does not answer: Unavailable after the deadline, not a hang', async () => {
    const engine = await fakeEngine(() => 'hang');
    try {
      await fails(createDockerEngine({ socketPath: engine.socketPath, timeoutMs: 300 }).inspectContainer(CID), /no answer from the Docker Engine at unix:\/\/.* within 300 ms/);
    } finally {
      await engine.close();
    }
  });

  it.each([
    [{ status: 404, body: { message: `No such container: ${CID}` } }, /container 7c7d.*which the Docker Engine at unix:.* does not know/],
    [{ status: 500, body: { message: 'boom' } }, /container inspect of 7c7d.* answered HTTP 500: boom/],
    [{ status: 200, body: { Id: CID, Config: { Labels: { a: 1 } } } }, /Config.Labels is not an object of strings/],
    [{ status: 200, body: { Id: 'f'.repeat(64), Config: {} } }, /answered for container f+, not 7c7d/],
  ])('refuses %j', async (a, message) => {
    const engine = await fakeEngine(() => a);
    try {
      await fails(createDockerAttestor({ dockerSocketPath: `unix://${engine.socketPath}` }, { procRoot: fakeProc(`0::/docker/${CID}\n`) })(PEER), message);
    } finally {
      await engine.close();
    }
  });

  it('two different containers in one cgroup file fail', async () => {
    const attest = createDockerAttestor({ dockerSocketPath: 'unix:///nonexistent/docker.sock' }, { procRoot: fakeProc(`1:name=systemd:/docker/${CID}\n0::/docker/${'a'.repeat(64)}\n`) });
    await fails(attest(PEER), /two containers/);
  });

  it('parses a null Labels/Env (a container created without them)', () => {
    expect(parseContainerInspect(JSON.stringify({ Id: CID, Config: { Image: 'x:1', Labels: null, Env: null } }))).toEqual({ id: CID, image: 'x:1', labels: {}, env: [] });
  });
});

/**
 * A real Docker Engine (Debian's docker.io): the test starts its own dockerd (its own data root, socket and
 * exec root in a temporary directory, no iptables, no bridge), imports a tiny image made from this host's
 * /bin/sleep and its libraries (no registry needed), runs a container with labels and env, and attests the
 * container's process by its real pid. Where the Go toolchain is, the image also holds go-spiffe's client
 * (test/interop/go, static) which calls a real Workload API server from inside a container. Skipped, with
 * the reason, where dockerd is not installed or we are not root (dockerd needs root).
 */
const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));
const DOCKER_CLI = ['/usr/bin/docker', '/usr/local/bin/docker'].find((p) => existsSync(p));
const canRunDocker = DOCKERD !== undefined && DOCKER_CLI !== undefined && process.getuid?.() === 0;

describe.skipIf(!canRunDocker)('docker: a real Docker Engine (dockerd started by this test; needs root and docker.io)', () => {
  let dir: string;
  let dockerd: ChildProcess;
  let socket: string;
  let containerId: string;
  let pid: number;
  /** why the go-spiffe client is not in the image, when it is not */
  let noGoClient: string | undefined;
  const cgroupDirsBefore = new Set<string>();
  const docker = (...args: string[]) => execFileSync(DOCKER_CLI!, ['-H', `unix://${socket}`, ...args], { encoding: 'utf8', input: '' }).trim();

  beforeAll(async () => {
    for (const c of ['systemd', 'unified', 'memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'devices', 'freezer']) if (existsSync(`/sys/fs/cgroup/${c}/docker`)) cgroupDirsBefore.add(c);
    dir = mkdtempSync(join(tmpdir(), 'wisp-dockerd-'));
    socket = join(dir, 'docker.sock');
    dockerd = spawn(DOCKERD!, ['--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'), '-H', `unix://${socket}`, '--iptables=false', '--ip6tables=false', '--bridge=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    dockerd.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    for (let i = 0; ; i++) {
      if (dockerd.exitCode !== null) throw new Error(`dockerd exited ${dockerd.exitCode}: ${log}`);
      try {
        docker('version', '--format', '{{.Server.Version}}');
        break;
      } catch {
        if (i > 150) throw new Error(`dockerd did not answer within 30 s: ${log}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // an image from this host's sleep and the libraries it links (no registry)
    const root = join(dir, 'rootfs');
    const files = ['/bin/sleep', ...(execFileSync('ldd', ['/bin/sleep'], { encoding: 'utf8' }).match(/\/\S+/g) ?? [])];
    for (const f of files) {
      mkdirSync(join(root, dirname(f)), { recursive: true });
      // the file a library symlink points to, copied under the link's name (Node 24's cpSync with dereference
      // refuses /lib64/ld-linux-x86-64.so.2 as "a directory")
      copyFileSync(realpathSync(f), join(root, f));
    }
    try {
      execFileSync('go', ['build', '-o', join(root, 'interop'), '.'], { cwd: fileURLToPath(new URL('../interop/go', import.meta.url)), stdio: 'pipe', env: { ...process.env, CGO_ENABLED: '0' } });
    } catch (e) {
      noGoClient = `the go-spiffe client could not be built here (Go toolchain, module proxy): ${(e as Error).message.slice(0, 200)}`;
    }
    const tar = execFileSync('tar', ['-c', '-C', root, '.'], { maxBuffer: 64 * 1024 * 1024 });
    execFileSync(DOCKER_CLI!, ['-H', `unix://${socket}`, 'import', '-', 'example.org/wisp/sleep:1'], { input: tar });
    containerId = docker('run', '-d', '--network', 'none', '--label', 'com.example.name=foo', '--label', 'com.example.cluster=prod', '-e', 'ENVIRONMENT=prod', 'example.org/wisp/sleep:1', '/bin/sleep', '120');
    pid = Number(docker('inspect', '-f', '{{.State.Pid}}', containerId));
  }, 60_000);

  afterAll(async () => {
    try {
      if (containerId) docker('rm', '-f', containerId);
    } finally {
      if (dockerd && dockerd.exitCode === null) {
        const exited = new Promise((r) => dockerd.once('exit', r));
        dockerd.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (dockerd.exitCode === null) dockerd.kill('SIGKILL');
      }
      // the per-hierarchy `docker` cgroup parent dockerd made (empty once its containers are gone)
      for (const c of ['systemd', 'unified', 'memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'devices', 'freezer']) if (!cgroupDirsBefore.has(c)) try { rmdirSync(`/sys/fs/cgroup/${c}/docker`); } catch { /* not made, or busy */ }
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("attests the container's process by its real pid: labels, env, image name and image ID as docker inspect shows them", async () => {
    const imageId = docker('image', 'inspect', '-f', '{{.Id}}', 'example.org/wisp/sleep:1');
    expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).toContain(containerId);
    const attest = await createWorkloadAttestor({ docker: { dockerSocketPath: `unix://${socket}` } });
    const selectors = await attest({ pid, uid: 0, gid: 0, startTime: processStartTime(pid)! });
    const docker_ = selectors.filter((s) => s.type === 'docker').map((s) => s.value);
    expect(docker_).toEqual(
      expect.arrayContaining(['label:com.example.name:foo', 'label:com.example.cluster:prod', 'env:ENVIRONMENT=prod', 'image_id:example.org/wisp/sleep:1', `image_config_digest:${imageId}`]),
    );
    expect(docker_.filter((v) => v.startsWith('label:'))).toHaveLength(2);
    expect(selectors).toContainEqual({ type: 'unix', value: 'path:/bin/sleep' }); // the unix attestor still ran
  });

  it("go-spiffe in a container gets the SVID of the entry that names the container's label, over a real Workload API server", async (ctx) => {
    if (noGoClient) ctx.skip(noGoClient);
    const td = await createTrustDomain('example.org');
    const source = new MemoryIdentitySource(td);
    const spiffeId = 'spiffe://example.org/docker/foo';
    source.put({ entryId: 'docker-foo', spiffeId, selectors: [{ type: 'docker', value: 'label:com.example.name:foo' }, { type: 'docker', value: 'image_id:example.org/wisp/sleep:1' }], hint: '', federatesWith: [], svid: await issueX509Svid(td, { entryId: 'docker-foo', spiffeId }) });
    const sockets = join(dir, 'agent');
    mkdirSync(sockets);
    const attest = await createWorkloadAttestor({ docker: { dockerSocketPath: `unix://${socket}` } });
    const server = await startWorkloadApiServer({ socketPath: join(sockets, 'agent.sock'), impl: createWorkloadApi({ attest, source }) });
    // asynchronously: the server answers from this process's event loop
    const client = (label: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const args = ['-H', `unix://${socket}`, 'run', '--rm', '--network', 'none', '-v', `${sockets}:/run/wisp:ro`, '--label', `com.example.name=${label}`, 'example.org/wisp/sleep:1', '/interop', '-socket', 'unix:///run/wisp/agent.sock', '-mode', 'x509', '-timeout', '10s'];
        execFile(DOCKER_CLI!, args, { encoding: 'utf8' }, (e, stdout, stderr) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
      });
    try {
      const ok = await client('foo');
      expect(ok.code, ok.stderr).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ spiffeId, svids: 1, bundles: 1 });
      // another label: no entry matches, go-spiffe is refused
      const refused = await client('bar');
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/PermissionDenied/);
    } finally {
      await server.close(200);
    }
  }, 60_000);

  it('with dockerVersion pinned to the Engine API version it reports', async () => {
    const version = docker('version', '--format', '{{.Server.APIVersion}}');
    const attest = createDockerAttestor({ dockerSocketPath: `unix://${socket}`, dockerVersion: version });
    expect(await attest({ pid, uid: 0, gid: 0 })).toContainEqual({ type: 'docker', value: 'env:ENVIRONMENT=prod' });
  });

  it('this test process (not in a container) gets no docker selectors from the real Engine', async () => {
    expect(await createDockerAttestor({ dockerSocketPath: `unix://${socket}` })({ pid: process.pid, uid: 0, gid: 0 })).toEqual([]);
  });

  it('a container removed while its pid is attested: Unavailable, not a hang', async () => {
    const gone = docker('run', '-d', '--network', 'none', 'example.org/wisp/sleep:1', '/bin/sleep', '120');
    const gonePid = Number(docker('inspect', '-f', '{{.State.Pid}}', gone));
    const cgroup = readFileSync(`/proc/${gonePid}/cgroup`, 'utf8');
    docker('rm', '-f', gone);
    const proc = fakeProc(cgroup); // the cgroup file as read just before the removal
    const err = await createDockerAttestor({ dockerSocketPath: `unix://${socket}` }, { procRoot: proc })(PEER).catch((e: unknown) => e);
    expect(isWispError(err) && err.code).toBe('ERR_UNAVAILABLE');
    expect((err as Error).message).toMatch(/does not know/);
  });
});

describe('config: workloadAttestors.docker', () => {
  const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };
  const parse = (docker: unknown) => parseAgentConfig({ path: '/etc/wisp/agent.json', content: { ...base, workloadAttestors: { docker } } }, {}, {}).workloadAttestors;
  it("applies SPIRE's default socket", () => {
    expect(parse({})).toEqual({ docker: { dockerSocketPath: 'unix:///var/run/docker.sock' } });
    expect(parse({ dockerSocketPath: 'unix:///run/docker.sock', dockerVersion: '1.41' })).toEqual({ docker: { dockerSocketPath: 'unix:///run/docker.sock', dockerVersion: '1.41' } });
  });
  it.each([
    [{ dockerSocketPath: '/var/run/docker.sock' }, /dockerSocketPath.*unix:\/\//],
    [{ dockerSocketPath: 'tcp://127.0.0.1:2375' }, /dockerSocketPath.*unix:\/\//],
    [{ dockerVersion: 'v1.41' }, /dockerVersion.*1.41/],
    [{ containerIdCgroupMatchers: ['/docker/<id>'] }, /containerIdCgroupMatchers.*unknown key/],
  ])('refuses %j', (docker, message) => {
    expect(() => parse(docker)).toThrow(message);
  });
});
