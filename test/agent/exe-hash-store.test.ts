// The unix attestor's executable hashes kept in the data dir (exe-hash-store.ts): a restarted agent reuses a
// hash only for the same file in the same state, in the same boot.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXE_HASHES_FILE, openExeHashStore, type ExeHashStore } from '../../src/agent/workload-api/exe-hash-store.js';
import { createUnixAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { createLogger } from '../../src/agent/log.js';

const dir = mkdtempSync(join(tmpdir(), 'wisp-exe-hashes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const log = createLogger('silent');
const sha = (content: string) => `unix:sha256:${createHash('sha256').update(content).digest('hex')}`;

// a fake /proc with one process running `exe`
const proc = join(dir, 'proc');
const pid = 4321;
const exe = join(dir, 'bin', 'app');
mkdirSync(join(proc, String(pid)), { recursive: true });
mkdirSync(join(dir, 'bin'));
writeFileSync(exe, 'binary v1');
const MTIME_S = 1_700_000_000; // whole seconds: put back exactly after a change
utimesSync(exe, MTIME_S, MTIME_S);
symlinkSync(exe, join(proc, String(pid), 'exe'));
writeFileSync(join(proc, String(pid), 'stat'), `${pid} (app) S 1 ${Array.from({ length: 17 }, (_, i) => String(i + 5)).join(' ')} 99887766 0 0\n`);
writeFileSync(join(proc, String(pid), 'status'), 'Name:\tapp\nUid:\t1001\t1001\t1001\t1001\nGid:\t101\t101\t101\t101\nGroups:\t\n');
writeFileSync(join(dir, 'passwd'), '');
writeFileSync(join(dir, 'group'), '');
const bootIdFile = join(dir, 'boot_id');
writeFileSync(bootIdFile, '6c1f5b7e-0d7e-4a55-9a57-3c3c1e0b1a11\n');
const peer = { pid, uid: 1001, gid: 101, startTime: '99887766' };

/** The store, counting the hashes the attestor had to compute (each one is `set`). */
function counting(store: ExeHashStore): { store: ExeHashStore; computed: () => number } {
  let sets = 0;
  return {
    store: { get: (k) => store.get(k), set: (k, v) => (sets++, store.set(k, v)), flush: () => store.flush() },
    computed: () => sets,
  };
}

/** A new agent process over `dataDir`: a fresh attestor (empty memory) with the store read from disk. */
async function restartedAttestor(dataDir: string) {
  const opened = await openExeHashStore(dataDir, { log, bootIdFile });
  if (!opened) throw new Error('no store');
  const { store, computed } = counting(opened);
  const attest = createUnixAttestor({ procRoot: proc, passwdPath: join(dir, 'passwd'), groupPath: join(dir, 'group'), attestationCacheMs: 0, knownHashes: store });
  return { attest, store, computed };
}

describe('executable hashes across restarts', () => {
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });

  it('a restarted agent reuses the hash of an unchanged executable instead of reading it again', async () => {
    const first = await restartedAttestor(dataDir);
    expect((await first.attest(peer)).map((s) => `${s.type}:${s.value}`)).toContain(sha('binary v1'));
    expect(first.computed()).toBe(1);
    await first.store.flush();
    expect(statSync(join(dataDir, EXE_HASHES_FILE)).mode & 0o777).toBe(0o600);

    const second = await restartedAttestor(dataDir);
    expect((await second.attest(peer)).map((s) => `${s.type}:${s.value}`)).toContain(sha('binary v1'));
    expect(second.computed()).toBe(0);
  });

  it('hashes again when the file changed in place, even with its size and mtime put back (ctime moved)', async () => {
    const before = statSync(exe);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(exe, 'binary v2'); // same length as v1
    utimesSync(exe, MTIME_S, MTIME_S);
    expect(statSync(exe).mtimeMs).toBe(before.mtimeMs);
    const restarted = await restartedAttestor(dataDir);
    const selectors = (await restarted.attest(peer)).map((s) => `${s.type}:${s.value}`);
    expect(selectors).toContain(sha('binary v2'));
    expect(selectors).not.toContain(sha('binary v1'));
    expect(restarted.computed()).toBe(1);
    await restarted.store.flush();
  });

  it('ignores the hashes of another boot, and a file that is not its own shape', async () => {
    writeFileSync(bootIdFile, '0a0b0c0d-0000-4000-8000-000000000000\n');
    const afterReboot = await restartedAttestor(dataDir);
    expect((await afterReboot.attest(peer)).map((s) => `${s.type}:${s.value}`)).toContain(sha('binary v2'));
    expect(afterReboot.computed()).toBe(1);
    await afterReboot.store.flush();
    const written = JSON.parse(readFileSync(join(dataDir, EXE_HASHES_FILE), 'utf8')) as { bootId: string; hashes: Record<string, string> };
    expect(written.bootId).toBe('0a0b0c0d-0000-4000-8000-000000000000');

    // a value that is not a SHA-256 is never served; a corrupt file is an empty start
    const key = Object.keys(written.hashes)[0]!;
    writeFileSync(join(dataDir, EXE_HASHES_FILE), JSON.stringify({ ...written, hashes: { [key]: 'not-a-hash' } }));
    expect((await openExeHashStore(dataDir, { log, bootIdFile }))!.get(key)).toBeUndefined();
    writeFileSync(join(dataDir, EXE_HASHES_FILE), '{"version":1,');
    expect((await openExeHashStore(dataDir, { log, bootIdFile }))!.get(key)).toBeUndefined();
  });

  it('keeps nothing without a boot id', async () => {
    expect(await openExeHashStore(dataDir, { log, bootIdFile: join(dir, 'missing') })).toBeUndefined();
  });
});
