// deploy/install-agent.sh into a temporary root: every path it creates, the config skeleton, the system user,
// `systemd-analyze verify` of the unit as installed, and --uninstall / --uninstall --purge leaving exactly what
// should stay. The binary installed here is a stand-in (the script copies whatever it is given); the real one
// runs in test/e2e/agent-binary.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAgentConfig, readAgentConfigFile } from '../../src/agent/config.js';

const REPO = join(import.meta.dirname, '..', '..');
const SCRIPT = join(REPO, 'deploy', 'install-agent.sh');
const UNIT = join(REPO, 'deploy', 'systemd', 'wisp-agent.service');
const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// systemd-analyze needs no systemd as PID 1 (verify loads the unit files offline); Debian's systemd package has it
if (isRoot && !has('systemd-analyze') && has('apt-get')) spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'systemd'], { stdio: 'ignore' });
const canRun = isRoot && has('useradd') && has('systemd-analyze');
const skipReason = !isRoot ? 'not root: the script creates a system user' : 'useradd or systemd-analyze missing';

let base: string;
let root: string;
let stub: string;

/** Every path under the root with its type and mode, e.g. "-rwxr-xr-x /usr/local/bin/wisp-agent"; the host's unit files left out. */
function tree(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const rel = `/${relative(root, p)}`;
      if (rel === '/usr/lib/systemd/system') continue;
      const st = lstatSync(p);
      out.push(`${st.isDirectory() ? 'd' : '-'}${(st.mode & 0o7777).toString(8)} ${rel}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  const path = (l: string) => l.slice(l.indexOf(' ') + 1);
  return out.sort((a, b) => (path(a) < path(b) ? -1 : path(a) > path(b) ? 1 : 0));
}

function sh(...args: string[]) {
  const r = spawnSync('sh', [SCRIPT, '--root', root, ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

function verify(unitPath: string) {
  return spawnSync('systemd-analyze', ['verify', `--root=${root}`, unitPath], { encoding: 'utf8' });
}

beforeAll(() => {
  if (!canRun) return;
  base = mkdtempSync(join(tmpdir(), 'wisp-install-'));
  root = join(base, 'root');
  // a minimal system root: the user databases (with shadow's backups, as a real system has) and systemd's own units
  mkdirSync(join(root, 'etc'), { recursive: true });
  const db = { passwd: 'root:x:0:0:root:/root:/bin/sh\n', group: 'root:x:0:\n', shadow: 'root:*::0:99999:7:::\n', gshadow: 'root:*::\n' };
  for (const [name, content] of Object.entries(db)) {
    for (const f of [name, `${name}-`]) writeFileSync(join(root, 'etc', f), content, { mode: name.includes('shadow') ? 0o600 : 0o644 });
  }
  cpSync('/usr/lib/systemd/system', join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true, verbatimSymlinks: true });
  stub = join(base, 'wisp-agent');
  writeFileSync(stub, '#!/bin/sh\necho stand-in\n');
  chmodSync(stub, 0o755);
});

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

describe.skipIf(!canRun)(`deploy/install-agent.sh --root (${canRun ? 'runs' : skipReason})`, () => {
  let before: string[];
  const userDb = () => ['passwd', 'group', 'shadow', 'gshadow'].map((f) => readFileSync(join(root, 'etc', f), 'utf8'));
  let dbBefore: string[];

  it('installs the binary, the unit, a config skeleton and the user, and records each path it created', () => {
    before = tree();
    dbBefore = userDb();
    sh('--binary', stub);
    const added = tree().filter((l) => !before.includes(l));
    expect(added).toEqual([
      'd755 /etc/systemd',
      'd755 /etc/systemd/system',
      '-644 /etc/systemd/system/wisp-agent.service',
      'd755 /etc/wisp',
      '-640 /etc/wisp/agent.json',
      'd755 /usr/local',
      'd755 /usr/local/bin',
      '-755 /usr/local/bin/wisp-agent',
      'd755 /var',
      'd755 /var/lib',
      'd755 /var/lib/wisp-agent-install',
      '-644 /var/lib/wisp-agent-install/manifest',
    ]);
    expect(readFileSync(join(root, 'usr/local/bin/wisp-agent'), 'utf8')).toBe(readFileSync(stub, 'utf8'));
    expect(readFileSync(join(root, 'etc/systemd/system/wisp-agent.service'), 'utf8')).toBe(readFileSync(UNIT, 'utf8'));
    const user = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('wisp-agent:'))!.split(':');
    expect(user[5]).toBe('/var/lib/wisp-agent');
    expect(user[6]).toBe('/usr/sbin/nologin');
    expect(Number(user[2])).toBeLessThan(1000); // a system user
    const gid = readFileSync(join(root, 'etc/group'), 'utf8').split('\n').find((l) => l.startsWith('wisp-agent:'))!.split(':')[2];
    expect(lstatSync(join(root, 'etc/wisp/agent.json')).gid).toBe(Number(gid));
    // the skeleton is a config the agent accepts, with the unit's paths
    const config = parseAgentConfig(readAgentConfigFile(join(root, 'etc/wisp/agent.json')), {}, {});
    expect(config).toMatchObject({ dataDir: '/var/lib/wisp-agent', socketPath: '/run/wisp-agent/api.sock' });
  });

  it('installs a unit that systemd-analyze verify accepts without a warning, and would catch a broken one', () => {
    const ok = verify(join(root, 'etc/systemd/system/wisp-agent.service'));
    expect({ status: ok.status, output: ok.stdout + ok.stderr }).toEqual({ status: 0, output: '' });
    // the check can fail: a bad value warns, and a unit whose binary is missing is refused
    const broken = join(root, 'etc/systemd/system/wisp-agent-broken.service');
    writeFileSync(broken, readFileSync(UNIT, 'utf8').replace(/^RestartSec=.*$/m, 'RestartSec=soon').replace('/usr/local/bin/wisp-agent', '/usr/local/bin/missing'));
    const bad = verify(broken);
    rmSync(broken);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/RestartSec|sec value/);
    expect(bad.stderr).toMatch(/missing.*not executable|not executable.*missing/s);
  });

  it('runs again as an upgrade, keeping an edited config', () => {
    const edited = '{"serverUrl": "https://issuer.example.com", "trustDomain": "corp.example"}\n';
    writeFileSync(join(root, 'etc/wisp/agent.json'), edited);
    const stub2 = join(base, 'wisp-agent-2');
    writeFileSync(stub2, '#!/bin/sh\necho stand-in 2\n');
    expect(sh('--binary', stub2)).toContain('keeping the existing /etc/wisp/agent.json');
    expect(readFileSync(join(root, 'usr/local/bin/wisp-agent'), 'utf8')).toContain('stand-in 2');
    expect(readFileSync(join(root, 'etc/wisp/agent.json'), 'utf8')).toBe(edited);
    expect(existsSync(join(root, 'var/lib/wisp-agent-install/manifest.new'))).toBe(false);
  });

  it('--uninstall removes what it installed and keeps config, state and the user', () => {
    mkdirSync(join(root, 'var/lib/wisp-agent'), { mode: 0o700 }); // what systemd's StateDirectory= creates
    writeFileSync(join(root, 'var/lib/wisp-agent/agent-identity.pem'), 'key');
    sh('--uninstall');
    const left = tree().filter((l) => !before.includes(l));
    expect(left).toEqual([
      'd755 /etc/wisp',
      '-640 /etc/wisp/agent.json',
      'd755 /var',
      'd755 /var/lib',
      'd700 /var/lib/wisp-agent',
      'd755 /var/lib/wisp-agent-install',
      '-644 /var/lib/wisp-agent-install/manifest',
      '-644 /var/lib/wisp-agent/agent-identity.pem',
    ]);
    expect(tree().filter((l) => !left.includes(l))).toEqual(before);
    expect(readFileSync(join(root, 'etc/passwd'), 'utf8')).toMatch(/^wisp-agent:/m);
  });

  it('--uninstall --purge (after a reinstall) leaves the root as it was, user databases included', () => {
    sh('--binary', stub);
    writeFileSync(join(root, 'etc/wisp/agent.env'), 'WISP_JOIN_TOKEN=x\n', { mode: 0o600 });
    sh('--uninstall', '--purge');
    expect(tree()).toEqual(before);
    expect(userDb()).toEqual(dbBefore);
  });
});
