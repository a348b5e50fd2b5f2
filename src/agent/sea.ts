/**
 * The agent as a single executable (scripts/build-agent-binary.mjs, docs/install-agent.md): files it needs at
 * run time travel inside the executable as SEA assets instead of next to the sources. This module is the one
 * place that asks Node whether it runs as such an executable; elsewhere `seaAsset` is just undefined.
 * @module
 */
import { createRequire } from 'node:module';

/** Asset keys written by scripts/build-agent-binary.mjs. */
export const SEA_ASSETS = {
  /** the SO_PEERCRED addon (native/peercred), built for the embedded Node */
  peercredAddon: 'peercred.node',
  /** hex SHA-256 of the addon, checked on the copy written to disk before it is loaded */
  peercredSha256: 'peercred.node.sha256',
  /** the package version (`wisp-agent --version`) */
  version: 'version',
} as const;

interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

let sea: SeaModule | null | undefined;

function seaModule(): SeaModule | null {
  if (sea === undefined) {
    try {
      // node:sea exists from Node 20.12; created lazily so tests and the tsx path never touch it
      const mod = createRequire(import.meta.url)('node:sea') as SeaModule;
      sea = mod.isSea() ? mod : null;
    } catch {
      sea = null;
    }
  }
  return sea;
}

/** The asset's bytes when this process is the single executable, else undefined (a normal Node run). */
export function seaAsset(key: (typeof SEA_ASSETS)[keyof typeof SEA_ASSETS]): Uint8Array | undefined {
  const mod = seaModule();
  return mod ? new Uint8Array(mod.getAsset(key)) : undefined;
}
