// For tests that run a process as another uid (setpriv, `asUid`): that uid must reach what it runs. The pinned Node
// lives under ~/.cache/wisp and Envoy in a venv under ~/.cache, and a fresh root home is 0700, so a test runs
// the binary from its own temporary directory, and says why it skips when even that cannot work (a checkout
// under a closed home, for one).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * `binary` as `dir/<its name>`, executable by every uid: a hard link when it already is (no 120 MB copy), else
 * (another file system, or a mode closed to others) a copy made 0755, leaving the original's mode alone.
 */
export function runnableByOtherUids(binary: string, dir: string): string {
  const target = join(dir, basename(binary));
  if ((statSync(binary).mode & 0o005) === 0o005) {
    try {
      linkSync(binary, target);
      return target;
    } catch {
      // another file system: copy
    }
  }
  copyFileSync(binary, target);
  chmodSync(target, 0o755);
  return target;
}

/** `argv` as the command and its arguments, run as `uid` (group `uid`, no supplementary groups) through setpriv; as itself without `uid`. */
export function asUid(uid: number | undefined, argv: string[]): [string, string[]] {
  return uid === undefined ? [argv[0]!, argv.slice(1)] : ['setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv]];
}

/** Why `uid` cannot read `files` through `node` (the reason a test skips with), or undefined when it can. */
export function otherUidCannotRead(uid: number, node: string, files: string[]): string | undefined {
  const probe = `for (const f of ${JSON.stringify(files)}) require('node:fs').accessSync(f, require('node:fs').constants.R_OK)`;
  const r = spawnSync(...asUid(uid, [node, '-e', probe]), { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return undefined;
  const why = r.error ? String(r.error) : (r.stderr.split('\n').find((l) => /Error|EACCES/.test(l)) ?? r.stderr.trim());
  return `uid ${uid} cannot read the checkout (${why}): put it where other users can traverse, as a workload's files would be`;
}
