/**
 * The on-disk layout of `npm start` (scripts/start-local.ts), in one place so the tests lay a socket out the
 * same way. Every local user must reach the Workload API socket (the agent learns who they are from the
 * kernel, SO_PEERCRED), while the state behind it stays the owner's:
 *
 * ```
 * .wisp-local/        0711  others may pass through, not list
 *   the state file    0600  admin token, key-encryption secret
 *   issuer/           0700  D1 and the CA's keys (wrangler's persisted state)
 *   agent/            0700  the agent's data dir: its key, SVID, the workloads' SVID cache
 *   run/              0755  the socket's directory (SPIRE's agent uses a world-traversable one too)
 *     workload.sock   0777  set by the agent (src/agent/workload-api/server.ts)
 * ```
 * @module
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const LOCAL_MODES = { root: 0o711, private: 0o700, socketDir: 0o755 } as const;

export interface LocalLayout {
  root: string;
  stateFile: string;
  issuerDir: string;
  agentDataDir: string;
  socketDir: string;
  socketPath: string;
}

/** Creates (or fixes the modes of) the layout under `root`; an existing 0700 root from an older run is opened up to 0711. */
export function prepareLocalLayout(root: string): LocalLayout {
  const layout: LocalLayout = {
    root,
    stateFile: join(root, 'local.json'),
    issuerDir: join(root, 'issuer'),
    agentDataDir: join(root, 'agent'),
    socketDir: join(root, 'run'),
    socketPath: join(root, 'run', 'workload.sock'),
  };
  const dir = (path: string, mode: number) => {
    mkdirSync(path, { recursive: true, mode });
    chmodSync(path, mode); // mkdir's mode is filtered by the umask and leaves an existing directory as it was
  };
  dir(layout.root, LOCAL_MODES.root);
  dir(layout.issuerDir, LOCAL_MODES.private);
  dir(layout.agentDataDir, LOCAL_MODES.private);
  dir(layout.socketDir, LOCAL_MODES.socketDir);
  return layout;
}

/** The ancestors of `path` that other users cannot pass through (no o+x): they make the socket unreachable. */
export function closedAncestors(path: string): string[] {
  const closed: string[] = [];
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) closed.push(dir);
    if (dirname(dir) === dir) return closed.reverse();
  }
}
