// For tests that run a process as another uid (setpriv): that uid must reach what it runs. The pinned Node
// lives under ~/.cache/wisp, and a fresh root home is 0700, so a test runs a copy of the binary from its own
// temporary directory (as envoy-sds.test.ts does for Envoy) and says why it skips when even that cannot work
// (a checkout under a closed home, for one).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';

/** A hard link (or, across file systems, a copy) of this process's Node binary in `dir`, mode 0755. */
export function nodeForOtherUids(dir: string): string {
  const node = join(dir, 'node');
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
  }
  chmodSync(node, 0o755);
  return node;
}

/** Why `uid` cannot read `files` through `node` (the reason a test skips with), or undefined when it can. */
export function otherUidCannotRead(uid: number, node: string, files: string[]): string | undefined {
  const probe = `for (const f of ${JSON.stringify(files)}) require('node:fs').accessSync(f, require('node:fs').constants.R_OK)`;
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', node, '-e', probe], { encoding: 'utf8', timeout: 30_000 });
  if (r.status === 0) return undefined;
  const why = r.error ? String(r.error) : (r.stderr.split('\n').find((l) => /Error|EACCES/.test(l)) ?? r.stderr.trim());
  return `uid ${uid} cannot read the checkout (${why}): put it where other users can traverse, as a workload's files would be`;
}
