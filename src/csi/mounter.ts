/**
 * The driver's mounts: a read-only bind of the Workload API socket directory onto a target path, and its
 * removal. Node has no mount(2), so this runs util-linux `mount` / `umount` with argument arrays (no shell).
 * What is mounted where is always read back from /proc/self/mountinfo and stat(2), never remembered.
 * @module
 */
import { execFile } from 'node:child_process';
import { lstat, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { isReadOnly, readMountInfo, topMountAt, type MountInfoEntry } from './mountinfo.js';

const run = promisify(execFile);

/** What is at a target path now. */
export type TargetState =
  | { kind: 'absent' }
  | { kind: 'unmounted' }
  /** a file or a symlink: never a target this driver mounts on */
  | { kind: 'notDirectory' }
  /** the socket directory itself is mounted there (same device and inode), read-only or not */
  | { kind: 'ours'; readOnly: boolean; mount: MountInfoEntry }
  /** something else is mounted there */
  | { kind: 'other'; mount: MountInfoEntry };

export interface Mounter {
  state(target: string): Promise<TargetState>;
  /** binds `source` onto `target`, then remounts the bind read-only */
  bindReadOnly(source: string, target: string): Promise<void>;
  /** makes an existing bind at `target` read-only */
  remountReadOnly(target: string): Promise<void>;
  /** unmounts the top mount at `target` */
  unmount(target: string): Promise<void>;
}

async function runMountCommand(binary: string, args: string[]): Promise<void> {
  try {
    await run(binary, args, { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${binary} ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/**
 * A mounter on the system's binaries over `socketDir`. Paths go to `mount` as given (`--no-canonicalize`:
 * util-linux does not resolve them itself); `state` has already checked that the target is a directory and
 * not a symlink.
 */
export function createSystemMounter(socketDir: string, mountinfoFile?: string): Mounter {
  return {
    async state(target) {
      let resolved: string;
      try {
        if (!(await lstat(target)).isDirectory()) return { kind: 'notDirectory' };
        resolved = await realpath(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
        throw err;
      }
      const mount = topMountAt(await readMountInfo(mountinfoFile), resolved);
      if (!mount) return { kind: 'unmounted' };
      const [here, source] = await Promise.all([stat(resolved), stat(socketDir)]);
      return here.dev === source.dev && here.ino === source.ino ? { kind: 'ours', readOnly: isReadOnly(mount), mount } : { kind: 'other', mount };
    },
    async bindReadOnly(source, target) {
      await runMountCommand('mount', ['--no-canonicalize', '--bind', source, target]);
      try {
        await this.remountReadOnly(target);
      } catch (err) {
        // never leave a writable bind behind
        await runMountCommand('umount', [target]).catch(() => undefined);
        throw err;
      }
    },
    remountReadOnly: (target) => runMountCommand('mount', ['--no-canonicalize', '-o', 'remount,bind,ro', target]),
    unmount: (target) => runMountCommand('umount', [target]),
  };
}
