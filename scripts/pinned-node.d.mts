// Types of scripts/pinned-node.mjs (plain ESM so it runs before `npm ci`, on any Node).
export declare const PINNED_NODE_VERSION: string;
export declare const TESTED_NODE_VERSIONS: Record<number, string>;
export declare function enginesFloor(): [number, number, number];
export declare function resolveVersion(spec: string): string;
export declare function defaultCacheDir(env?: NodeJS.ProcessEnv): string;
export interface EnsureNodeOptions {
  cacheDir?: string;
  useRunning?: boolean;
  npmCommand?: string;
}
export declare function ensureNode(version?: string, opts?: EnsureNodeOptions): string;
