import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config.js';
import { createSystemdAttestor, parseSystemctlShow, systemdCgroupPath, systemdUnitFromCgroupPath } from '../../src/agent/workload-api/systemd-attestor.js';
import { processStartTime } from '../../src/agent/workload-api/unix-attestor.js';
import { createWorkloadAttestor } from '../../src/agent/workload-api/workload-attestors.js';
import { isWispError } from '../../src/shared/errors.js';

const V1_CONTROLLERS = ['cpu,cpuacct', 'memory', 'pids', 'blkio', 'devices', 'freezer', 'name=systemd'];
const v1 = (path: string, v2 = path) => V1_CONTROLLERS.map((c, i) => `${V1_CONTROLLERS.length - i}:${c}:${path}`).join('\n') + `\n0::${v2}\n`;

/** Recorded /proc/<pid>/cgroup shapes of systemd hosts → the unit the system manager's GetUnitByPID names. */
const SHAPES: [string, string, string | undefined][] = [
  ['cgroup v2, a system service', '0::/system.slice/nginx.service\n', 'nginx.service'],
  ['cgroup v2, a service in a nested slice', '0::/system.slice/system-getty.slice/getty@tty1.service\n', 'getty@tty1.service'],
  ['cgroup v2, a delegated service (sub-cgroups of its own)', '0::/system.slice/containerd.service/payload\n', 'containerd.service'],
  ['cgroup v2, a login session', '0::/user.slice/user-1000.slice/session-3.scope\n', 'session-3.scope'],
  ['cgroup v2, a user service: the system manager names the user manager', '0::/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service\n', 'user@1000.service'],
  ['cgroup v2, a user naming a cgroup like a system unit below its manager', '0::/user.slice/user-1000.slice/user@1000.service/nginx.service\n', 'user@1000.service'],
  ['cgroup v2, a Docker container (systemd cgroup driver)', `0::/system.slice/docker-${'a'.repeat(64)}.scope\n`, `docker-${'a'.repeat(64)}.scope`],
  ['cgroup v2, PID 1', '0::/init.scope\n', 'init.scope'],
  ['the root cgroup', '0::/\n', '-.slice'],
  ['only in a slice', '0::/system.slice\n', 'system.slice'],
  ['a mount helper running in its mount unit', '0::/system.slice/home.mount\n', 'home.mount'],
  ['cgroup v1 (hybrid): the name=systemd line, not the controllers', v1('/system.slice/cron.service').replace('4:memory:/system.slice/cron.service', '4:memory:/other'), 'cron.service'],
  ['cgroup v1 only (legacy, no 0:: line)', '2:cpu,cpuacct:/system.slice/sshd.service\n1:name=systemd:/system.slice/sshd.service\n', 'sshd.service'],
  ["systemd's escape of a component that would clash with a kernel file", '0::/system.slice/_cpu.foo.service\n', 'cpu.foo.service'],
  ['outside the agent\'s cgroup namespace', '0::/../../system.slice/a.service\n', undefined],
  ['a cgroup systemd did not make', '0::/docker/' + 'b'.repeat(64) + '\n', undefined],
];

describe('systemd: cgroup → unit (recorded shapes)', () => {
  it.each(SHAPES)('%s', (_name, file, unit) => {
    const path = systemdCgroupPath(file);
    expect(path === undefined ? undefined : systemdUnitFromCgroupPath(path)).toBe(unit);
  });

  it('a file with neither a name=systemd nor a v2 line has no systemd path', () => {
    expect(systemdCgroupPath('4:memory:/system.slice/a.service\n')).toBeUndefined();
  });

  it('parses systemctl show output (recorded from systemd 252: Id and FragmentPath, any order)', () => {
    expect(parseSystemctlShow('FragmentPath=/lib/systemd/system/nginx.service\nId=nginx.service\n')).toEqual({ id: 'nginx.service', fragmentPath: '/lib/systemd/system/nginx.service' });
    expect(parseSystemctlShow('Id=session-3.scope\nFragmentPath=\n')).toEqual({ id: 'session-3.scope', fragmentPath: '' });
    expect(() => parseSystemctlShow('')).toThrow(/no Id/);
  });
});

/**
 * Real cgroups of this machine: a child process is moved into cgroups named like systemd's
 * (`system.slice/wisp-test-<pid>.service`) in the machine's name=systemd v1 hierarchy and its v2 one, and
 * the kernel's /proc/<pid>/cgroup is read. Needs root and those hierarchies mounted writable.
 */
const V1_ROOT = '/sys/fs/cgroup/systemd';
const V2_ROOT = '/sys/fs/cgroup/unified';
const canMakeCgroups = process.getuid?.() === 0 && existsSync(`${V1_ROOT}/cgroup.procs`);
const systemdRuns = existsSync('/run/systemd/system');

describe.skipIf(!canMakeCgroups)('systemd: real cgroups of this machine (root, name=systemd hierarchy)', () => {
  const unit = `wisp-test-${process.pid}.service`;
  const made: string[] = [];
  let child: ChildProcess;
  let dir: string;
  let systemctl: string;

  beforeAll(() => {
    child = spawn('/bin/sleep', ['60'], { stdio: 'ignore' });
    for (const root of [V1_ROOT, ...(existsSync(`${V2_ROOT}/cgroup.procs`) ? [V2_ROOT] : [])]) {
      const cg = join(root, 'system.slice', unit);
      if (!existsSync(join(root, 'system.slice'))) {
        mkdirSync(join(root, 'system.slice'));
        made.push(join(root, 'system.slice'));
      }
      mkdirSync(cg);
      made.unshift(cg);
      writeFileSync(join(cg, 'cgroup.procs'), String(child.pid));
    }
    dir = mkdtempSync(join(tmpdir(), 'wisp-systemd-'));
    mkdirSync(join(dir, 'run-systemd-system'));
    // recorded systemd 252 answers for the unit, printed by a stand-in that also checks its arguments
    systemctl = join(dir, 'systemctl');
    writeFileSync(
      systemctl,
      `#!/bin/sh\necho "$@" >> ${dir}/argv\n[ "$*" = "show --property=Id --property=FragmentPath -- ${unit}" ] || { echo "Unit name $4 is not valid." >&2; exit 1; }\nprintf 'Id=%s\\nFragmentPath=/etc/systemd/system/%s\\n' ${unit} ${unit}\n`,
    );
    chmodSync(systemctl, 0o755);
    writeFileSync(join(dir, 'systemctl-no-file'), `#!/bin/sh\nprintf 'FragmentPath=\\nId=%s\\n' ${unit}\n`);
    chmodSync(join(dir, 'systemctl-no-file'), 0o755);
  });

  afterAll(() => {
    child.kill('SIGKILL');
    for (const root of [V1_ROOT, V2_ROOT]) if (existsSync(`${root}/cgroup.procs`)) try { writeFileSync(`${root}/cgroup.procs`, String(child.pid)); } catch { /* gone */ }
    for (const cg of made) try { rmdirSync(cg); } catch { /* a process still leaving it */ }
    rmSync(dir, { recursive: true, force: true });
  });

  it("the kernel's cgroup file of a process in a systemd-named cgroup names its unit", () => {
    const file = readFileSync(`/proc/${child.pid}/cgroup`, 'utf8');
    expect(file).toContain(`name=systemd:/system.slice/${unit}`);
    expect(systemdUnitFromCgroupPath(systemdCgroupPath(file)!)).toBe(unit);
  });

  it('this test process, in the root of name=systemd on this machine (not run by systemd), is in -.slice', () => {
    const file = readFileSync('/proc/self/cgroup', 'utf8');
    const path = systemdCgroupPath(file)!;
    expect(path).toBeDefined();
    if (path === '/') expect(systemdUnitFromCgroupPath(path)).toBe('-.slice');
  });

  it('attests the child: systemd:id and systemd:fragment_path from systemctl show (recorded answer)', async () => {
    const attest = createSystemdAttestor({ systemctl, systemdRunDir: join(dir, 'run-systemd-system') });
    const peer = { pid: child.pid!, uid: 0, gid: 0, startTime: processStartTime(child.pid!)! };
    expect(await attest(peer)).toEqual([
      { type: 'systemd', value: `id:${unit}` },
      { type: 'systemd', value: `fragment_path:/etc/systemd/system/${unit}` },
    ]);
    await attest(peer); // within 1 s: the unit's answer is reused
    expect(readFileSync(join(dir, 'argv'), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('a unit without a unit file: fragment_path with an empty path, as SPIRE (recorded answer)', async () => {
    const attest = createSystemdAttestor({ systemctl: join(dir, 'systemctl-no-file'), systemdRunDir: join(dir, 'run-systemd-system') });
    expect(await attest({ pid: child.pid!, uid: 0, gid: 0 })).toEqual([
      { type: 'systemd', value: `id:${unit}` },
      { type: 'systemd', value: 'fragment_path:' },
    ]);
  });

  it('refuses a reused pid (start time differs from the one taken at accept)', async () => {
    const attest = createSystemdAttestor({ systemctl, systemdRunDir: join(dir, 'run-systemd-system') });
    const err = await attest({ pid: child.pid!, uid: 0, gid: 0, startTime: '1' }).catch((e: unknown) => e);
    expect(isWispError(err) && err.code === 'ERR_UNAVAILABLE' && err.message).toMatch(/was reused/);
  });

  it.skipIf(systemdRuns)("the real systemctl on this machine (systemd is not PID 1 here): its own error reaches the caller as Unavailable", async () => {
    const attest = createSystemdAttestor({ systemdRunDir: join(dir, 'run-systemd-system') });
    const err = await attest({ pid: child.pid!, uid: 0, gid: 0 }).catch((e: unknown) => e);
    expect(isWispError(err) && err.code).toBe('ERR_UNAVAILABLE');
    expect((err as Error).message).toMatch(new RegExp(`systemctl show ${unit}: .*(systemd|bus)`, 'i'));
  });
});

describe('systemd: a host not running systemd', () => {
  it.skipIf(systemdRuns)('this machine has no /run/systemd/system (PID 1 is not systemd): every call fails with the reason', async () => {
    const attest = await createWorkloadAttestor({ systemd: {} });
    const err = await attest({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() }).catch((e: unknown) => e);
    expect(isWispError(err) && err.code).toBe('ERR_UNAVAILABLE');
    expect((err as Error).message).toMatch(/systemd is not running on this host \(no \/run\/systemd\/system\)/);
  });
});

/**
 * A real systemd unit lookup needs systemd as PID 1; this machine's PID 1 is not (the test above says so).
 * Where it is, the unit must be the one systemd's own GetUnitByPID names (busctl), and the fragment path its.
 */
describe.skipIf(!systemdRuns)('systemd: the real system manager (runs only where systemd is PID 1)', () => {
  it('attests this test process as systemd does', async () => {
    const path = execFileSync('busctl', ['call', '--json=short', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'GetUnitByPID', 'u', String(process.pid)], { encoding: 'utf8' });
    const unitPath = (JSON.parse(path) as { data: string[] }).data[0]!;
    const id = (JSON.parse(execFileSync('busctl', ['get-property', '--json=short', 'org.freedesktop.systemd1', unitPath, 'org.freedesktop.systemd1.Unit', 'Id'], { encoding: 'utf8' })) as { data: string }).data;
    const selectors = await createSystemdAttestor()({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), startTime: processStartTime(process.pid)! });
    expect(selectors[0]).toEqual({ type: 'systemd', value: `id:${id}` });
  });
});

describe('config: workloadAttestors.systemd', () => {
  const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };
  const parse = (systemd: unknown) => parseAgentConfig({ path: '/etc/wisp/agent.json', content: { ...base, workloadAttestors: { systemd } } }, {}, {}).workloadAttestors;
  it('takes {} (SPIRE: no options) and refuses keys', () => {
    expect(parse({})).toEqual({ systemd: {} });
    expect(() => parse({ socket: '/x' })).toThrow(/socket.*unknown key/);
  });
});
