// Peer credentials (SO_PEERCRED addon), the unix workload attestor against the real /proc and a fake one,
// and the client's endpoint address parsing.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEndpointAddress, resolveEndpointAddress } from '../../src/node/workload-api/client.js';
import { peerCredentials, type PeerCredentials } from '../../src/agent/workload-api/peer.js';
import { createUnixAttestor, parseStartTime, parseStatus, processStartTime } from '../../src/agent/workload-api/unix-attestor.js';
import { formatSelector } from '../../src/shared/registry/selectors.js';
import { WispError } from '../../src/shared/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'wisp-peer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function credentialsOfConnection(): Promise<PeerCredentials> {
  const path = join(dir, `p-${Math.random().toString(36).slice(2)}.sock`);
  const server = net.createServer();
  const creds = new Promise<PeerCredentials>((resolve, reject) =>
    server.on('connection', (socket) => {
      try {
        resolve(peerCredentials(socket));
      } catch (err) {
        reject(err);
      } finally {
        socket.destroy();
      }
    }),
  );
  await new Promise<void>((r) => server.listen(path, r));
  const client = net.connect(path);
  client.on('error', () => {});
  try {
    return await creds;
  } finally {
    client.destroy();
    server.close();
  }
}

describe('peerCredentials', () => {
  it('reads pid, uid and gid of the connecting process from the kernel', async () => {
    expect(await credentialsOfConnection()).toEqual({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
  });

  it('refuses a socket without a file descriptor', () => {
    expect(() => peerCredentials(new net.Socket())).toThrow(/file descriptor/);
  });
});

describe('unix workload attestor (real /proc)', () => {
  it('derives uid, gid, user, group, supplementary groups, exe path and sha256 from the caller', async () => {
    const peer = await credentialsOfConnection();
    const selectors = (await createUnixAttestor()({ ...peer, startTime: processStartTime(peer.pid) })).map(formatSelector);
    const exe = realpathSync(process.execPath);
    const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(peer.uid))!.split(':')[0];
    const group = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[2] === String(peer.gid))!.split(':')[0];
    const groups = readFileSync(`/proc/${process.pid}/status`, 'utf8').match(/^Groups:[ \t]*([^\n]*)$/m)![1]!.trim().split(/\s+/).filter(Boolean);
    expect(selectors).toEqual(
      expect.arrayContaining([
        `unix:uid:${peer.uid}`,
        `unix:gid:${peer.gid}`,
        `unix:user:${passwd}`,
        `unix:group:${group}`,
        ...groups.map((g) => `unix:supplementary_gid:${g}`),
        `unix:path:${exe}`,
        `unix:sha256:${createHash('sha256').update(readFileSync(exe)).digest('hex')}`,
      ]),
    );
  });

  it('fails with Unavailable when the pid now belongs to a process that started later (pid reuse)', async () => {
    const peer = await credentialsOfConnection();
    const err = await createUnixAttestor()({ ...peer, startTime: '1' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WispError);
    expect((err as WispError).code).toBe('ERR_UNAVAILABLE');
  });

  it('fails when the process now runs as another uid than the one that connected', async () => {
    const peer = await credentialsOfConnection();
    await expect(createUnixAttestor()({ ...peer, uid: peer.uid + 1 })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  });

  it('fails when the process is gone', async () => {
    await expect(createUnixAttestor()({ pid: 2 ** 22 + 17, uid: 0, gid: 0 })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  });
});

describe('unix workload attestor (fake /proc)', () => {
  const proc = join(dir, 'proc');
  const pid = 4321;
  const exe = join(dir, 'bin', 'my app');
  mkdirSync(join(proc, String(pid)), { recursive: true });
  mkdirSync(join(dir, 'bin'));
  writeFileSync(exe, 'binary v1');
  symlinkSync(exe, join(proc, String(pid), 'exe'));
  writeFileSync(join(proc, String(pid), 'stat'), `${pid} (we (ird) name) S 1 ${Array.from({ length: 17 }, (_, i) => String(i + 5)).join(' ')} 99887766 0 0\n`);
  writeFileSync(join(proc, String(pid), 'status'), 'Name:\tx\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\nGroups:\t5 7 \n');
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n# comment\nalice:x:1001:101::/home/alice:/bin/sh\n');
  writeFileSync(join(dir, 'group'), 'root:x:0:\nstaff:x:101:\ntty:x:5:\n');
  const attest = createUnixAttestor({ procRoot: proc, passwdPath: join(dir, 'passwd'), groupPath: join(dir, 'group') });

  it('parses the start time after a command name with spaces and parentheses', () => {
    expect(parseStartTime(readFileSync(join(proc, String(pid), 'stat'), 'utf8'))).toBe('99887766');
    expect(processStartTime(pid, proc)).toBe('99887766');
  });

  it('reads an empty Groups line as no supplementary groups', () => {
    expect(parseStatus('Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nNStgid:\t14715\n')).toEqual({ euid: 0, egid: 0, groups: [] });
  });

  it('matches the effective uid/gid and names them; unnamed groups get only the gid selector', async () => {
    const selectors = (await attest({ pid, uid: 1001, gid: 101, startTime: '99887766' })).map(formatSelector);
    expect(selectors).toEqual([
      'unix:uid:1001',
      'unix:gid:101',
      'unix:user:alice',
      'unix:group:staff',
      'unix:supplementary_gid:5',
      'unix:supplementary_group:tty',
      'unix:supplementary_gid:7',
      `unix:path:${exe}`,
      `unix:sha256:${createHash('sha256').update('binary v1').digest('hex')}`,
    ]);
  });

  it('hashes the executable again when it changes (cache keyed by inode, size and mtime)', async () => {
    writeFileSync(exe, 'binary version 2');
    const selectors = (await attest({ pid, uid: 1001, gid: 101 })).map(formatSelector);
    expect(selectors).toContain(`unix:sha256:${createHash('sha256').update('binary version 2').digest('hex')}`);
  });

  it('reuses the selectors of a process for attestationCacheMs (same pid and start time), then reads /proc again', async () => {
    let t = 1_000_000;
    const cached = createUnixAttestor({ procRoot: proc, passwdPath: join(dir, 'passwd'), groupPath: join(dir, 'group'), attestationCacheMs: 1000, now: () => t });
    const peer = { pid, uid: 1001, gid: 101, startTime: '99887766' };
    const sha = (content: string) => `unix:sha256:${createHash('sha256').update(content).digest('hex')}`;
    writeFileSync(exe, 'binary v3');
    expect((await cached(peer)).map(formatSelector)).toContain(sha('binary v3'));
    writeFileSync(exe, 'binary version 4');
    t += 999;
    expect((await cached(peer)).map(formatSelector)).toContain(sha('binary v3'));
    // another start time is another process: never served from the cache
    await expect(cached({ ...peer, startTime: '1' })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    t += 1;
    expect((await cached(peer)).map(formatSelector)).toContain(sha('binary version 4'));
  });

  it('rejects the real uid when it differs from the effective one the kernel reported', async () => {
    await expect(attest({ pid, uid: 1000, gid: 101 })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  });

  it('omits path and sha256 when the executable cannot be read, and the hash when it is too large', async () => {
    const small = createUnixAttestor({ procRoot: proc, passwdPath: join(dir, 'passwd'), groupPath: join(dir, 'group'), maxHashBytes: 3 });
    const selectors = (await small({ pid, uid: 1001, gid: 101 })).map(formatSelector);
    expect(selectors).toContain(`unix:path:${exe}`);
    expect(selectors.some((s) => s.startsWith('unix:sha256:'))).toBe(false);
  });
});

describe('Workload API endpoint addresses', () => {
  it.each([
    ['unix:///run/wisp/agent.sock', 'unix:///run/wisp/agent.sock'],
    ['unix:/run/wisp/agent.sock', 'unix:///run/wisp/agent.sock'],
    ['/run/wisp/agent.sock', 'unix:///run/wisp/agent.sock'],
    ['tcp://127.0.0.1:8000', '127.0.0.1:8000'],
  ])('parses %s', (address, target) => {
    expect(parseEndpointAddress(address)).toBe(target);
  });

  it.each([
    'unix://host/run/agent.sock',
    'unix:relative.sock',
    'unix:///run/a.sock?x=1',
    'tcp://localhost:8000',
    'tcp://127.0.0.1:8000/foo',
    'tcp://127.0.0.1',
    'http://127.0.0.1:8000',
    'agent.sock',
  ])('rejects %s', (address) => {
    expect(() => parseEndpointAddress(address)).toThrow(WispError);
  });

  it('falls back to SPIFFE_ENDPOINT_SOCKET', () => {
    expect(resolveEndpointAddress(undefined, { SPIFFE_ENDPOINT_SOCKET: 'unix:///a.sock' })).toBe('unix:///a.sock');
    expect(resolveEndpointAddress('unix:///b.sock', { SPIFFE_ENDPOINT_SOCKET: 'unix:///a.sock' })).toBe('unix:///b.sock');
    expect(() => resolveEndpointAddress(undefined, {})).toThrow(/SPIFFE_ENDPOINT_SOCKET/);
  });
});
