/**
 * Peer credentials of a Unix socket caller, straight from the kernel (SO_PEERCRED). Node and libuv expose
 * none, so a tiny node-addon-api addon (native/peercred, built at install time into build/) reads them.
 * They are read once per connection, when it is accepted, and are the only thing about a caller the
 * Workload API trusts (SPIFFE Workload Endpoint §5: no direct client authentication).
 * @module
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The kernel's view of the process on the other end of a Unix socket, at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface PeerCredAddon {
  getPeerCred(fd: number): PeerCredentials;
}

/**
 * Where scripts/build-native.mjs puts the addon, relative to this module's URL: src/agent/workload-api/peer.ts,
 * a dist/ layout of separate files, and the agent bundle dist/agent/agent.cjs (scripts/build-agent.mjs).
 */
const ADDON_CANDIDATES = ['../../../build/peercred.node', '../../../../build/peercred.node', '../../build/peercred.node'];

let addon: PeerCredAddon | undefined;

function loadAddon(): PeerCredAddon {
  if (addon) return addon;
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
