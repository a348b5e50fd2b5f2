/**
 * Peer credentials of a Unix socket caller, straight from the kernel (SO_PEERCRED). Node and libuv expose
 * none, so a tiny node-addon-api addon (native/peercred, built at install time into build/) reads them.
 * They are read once per connection, when it is accepted, and are the only thing about a caller the
 * Workload API trusts (SPIFFE Workload Endpoint §5: no direct client authentication).
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEA_ASSETS, seaAsset } from '../sea.js';

/** The kernel's view of the process on the other end of a Unix socket, at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface PeerCredAddon {
  getPeerCred(fd: number): PeerCredentials;
  /** glibc malloc_trim(0) (src/agent/memory.ts); absent in an addon built before it existed */
  trimMalloc?(): boolean;
}

/**
 * Where scripts/build-native.mjs puts the addon, relative to this module's URL: src/agent/workload-api/peer.ts,
 * a dist/ layout of separate files, and the agent bundle dist/agent/agent.cjs (scripts/build-agent.mjs).
 */
const ADDON_CANDIDATES = ['../../../build/peercred.node', '../../../../build/peercred.node', '../../build/peercred.node'];

let addon: PeerCredAddon | undefined;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/**
 * The single executable carries the addon as an asset; the dynamic loader needs a file. It is written into a
 * fresh directory only this user can enter (mkdtemp: 0700, checked), its hash checked against the one
 * recorded at build time before process.dlopen, and the directory removed once the library is mapped.
 * TMPDIR chooses where (the unit's PrivateTmp by default; a directory on an exec-capable mount if /tmp is noexec).
 */
function loadEmbeddedAddon(bytes: Uint8Array): PeerCredAddon {
  const expected = new TextDecoder().decode(seaAsset(SEA_ASSETS.peercredSha256)).trim();
  if (sha256(bytes) !== expected) throw new Error('embedded peer credential addon does not match its recorded SHA-256');
  const dir = mkdtempSync(join(tmpdir(), 'wisp-agent-addon-'));
  try {
    const st = statSync(dir);
    if ((st.mode & 0o077) !== 0 || st.uid !== process.getuid?.()) throw new Error(`${dir} is not private (mode ${(st.mode & 0o777).toString(8)})`);
    const file = join(dir, 'peercred.node');
    writeFileSync(file, bytes, { flag: 'wx', mode: 0o500 });
    if (sha256(readFileSync(file)) !== expected) throw new Error(`${file} changed after it was written`);
    const mod = { exports: {} as PeerCredAddon };
    process.dlopen(mod, file);
    return mod.exports;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function loadAddon(): PeerCredAddon {
  if (addon) return addon;
  const embedded = seaAsset(SEA_ASSETS.peercredAddon);
  if (embedded) return (addon = loadEmbeddedAddon(embedded));
  const require = createRequire(import.meta.url);
  const path = ADDON_CANDIDATES.map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));
  if (!path) {
    throw new Error('peer credential addon build/peercred.node is missing: run `npm run build:native` (needs Linux, python3, make, g++)');
  }
  addon = require(path) as PeerCredAddon;
  return addon;
}

/**
 * Reads SO_PEERCRED from a connected Unix socket. Call it as soon as the connection is accepted: the
 * values describe the peer at connect() time, and the pid may be reused after the peer exits.
 * @throws Error when the socket has no file descriptor (not a Unix socket, already closed) or getsockopt fails
 * @example
 * net.createServer((socket) => { const { pid, uid, gid } = peerCredentials(socket); … });
 */
export function peerCredentials(socket: Socket): PeerCredentials {
  const handle = (socket as unknown as { _handle?: { fd?: number } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor (closed, or not a Unix socket)');
  const { pid, uid, gid } = loadAddon().getPeerCred(fd);
  return { pid, uid, gid };
}

/** Returns freed malloc memory to the kernel through the addon (src/agent/memory.ts says why); false when nothing was released or it cannot. */
export function trimMalloc(): boolean {
  return loadAddon().trimMalloc?.() ?? false;
}
