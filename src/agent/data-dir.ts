/**
 * The agent's data directory: its identity (private key and X509-SVID chain, one PEM file), the last trust
 * bundle (SPIFFE bundle JSON) and the workload SVID cache (cache/cache-file.ts: workload private keys
 * too), so a restart reuses them without a join token, without re-attesting and without the issuer.
 * The directory is 0700 and every file 0600, written atomically (temp file, fsync, rename, fsync dir), so a
 * crash leaves either the old or the new file, never a torn one. Key and SVID share one file, so they are
 * replaced together: no crash can leave a key that does not match the certificate.
 *
 * Older agents kept key and SVID in two files (`LEGACY_DATA_FILES`); `load()` still reads them, and when
 * they match rewrites them as the one identity file, then removes them.
 * @module
 */
import { chmod, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { SpiffeBundleJson } from '../shared/agent-api.js';
import { pemDerOf, toPem } from '../shared/encoding/pem.js';
import { WispError } from '../shared/errors.js';
import { writeFileAtomic } from '../node/file-output.js';
import { certificateMatchesKey, importPkcs8 } from './keys.js';

export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

// the one atomic writer (src/node/file-output.ts), mode 0600 by default; re-exported for the tests
export { writeFileAtomic };

export const DATA_FILES = {
  /** PKCS#8 private key block, then the SVID chain (leaf first) */
  AGENT_IDENTITY: 'agent-identity.pem',
  BUNDLE: 'bundle.json',
  /** workload SVIDs and their private keys, entries, revision, bundles (cache/cache-file.ts) */
  SVID_CACHE: 'svid-cache.json',
} as const;

/** The two-file identity layout of earlier agents, read and migrated by `load()`. */
export const LEGACY_DATA_FILES = {
  AGENT_KEY: 'agent-key.pem',
  AGENT_SVID: 'agent-svid.pem',
} as const;

/** What a previous run left; any part may be missing. */
export interface StoredAgentState {
  /** PKCS#8 DER */
  agentKey?: Uint8Array;
  /** leaf first, DER */
  agentSvidChain?: Uint8Array[];
  bundle?: SpiffeBundleJson;
}

export interface DataDir {
  readonly path: string;
  load(): Promise<StoredAgentState>;
  /** key and SVID chain together, in one atomic write */
  saveAgentIdentity(pkcs8: Uint8Array, chain: readonly Uint8Array[]): Promise<void>;
  saveBundle(bundle: SpiffeBundleJson): Promise<void>;
  /** forgets the agent's identity (before re-attesting); the bundle stays */
  clearAgentIdentity(): Promise<void>;
  /** the workload SVID cache file's text, if any */
  readSvidCache(): Promise<string | undefined>;
  /** the text, whole or in pieces written one after the other, each taken once the one before is written (cache-file.ts encodeCacheFileParts) */
  writeSvidCache(text: string | Iterable<string>): Promise<void>;
}

/** Chunk size of `readTextInChunks`, bytes: well below glibc's 128 KiB mmap threshold. */
const READ_CHUNK_BYTES = 64 * 1024;

async function readOptional(file: string, read: (file: string) => Promise<string> = (f) => readFile(f, 'utf8')): Promise<string | undefined> {
  try {
    return await read(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A UTF-8 file's text, read through one 64 KiB buffer. readFile would allocate a buffer the size of the
 * file (the SVID cache: megabytes) and free it, which raises glibc's mmap threshold for good (see
 * cache/cache-file.ts encodeCacheFileParts).
 */
async function readTextInChunks(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    const decoder = new StringDecoder('utf8'); // not TextDecoder: ICU mallocs 4x the chunk per call
    let text = '';
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return text + decoder.end();
      text += decoder.write(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
}

/** Creates (0700) or opens the data directory; tightens its mode if it is wider. */
export async function openDataDir(path: string): Promise<DataDir> {
  try {
    await mkdir(path, { recursive: true, mode: DATA_DIR_MODE });
    const st = await stat(path);
    if (!st.isDirectory()) throw new WispError('ERR_CONFIG_INVALID', `dataDir: ${path} is not a directory`);
    if ((st.mode & 0o777) !== DATA_DIR_MODE) await chmod(path, DATA_DIR_MODE);
  } catch (e) {
    if (e instanceof WispError) throw e;
    throw new WispError('ERR_CONFIG_INVALID', `dataDir: cannot use ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e });
  }
  const file = (name: string) => join(path, name);

  const removeLegacy = async () => {
    for (const name of Object.values(LEGACY_DATA_FILES)) await unlinkOptional(file(name));
  };
  const saveAgentIdentity = async (pkcs8: Uint8Array, chain: readonly Uint8Array[]) => {
    await writeFileAtomic(file(DATA_FILES.AGENT_IDENTITY), toPem('PRIVATE KEY', pkcs8) + chain.map((c) => toPem('CERTIFICATE', c)).join(''));
    await removeLegacy();
  };

  /** the legacy pair, rewritten as one file when key and leaf match (else left for the caller to reject) */
  async function migrateLegacy(): Promise<Pick<StoredAgentState, 'agentKey' | 'agentSvidChain'>> {
    const keyPem = await readOptional(file(LEGACY_DATA_FILES.AGENT_KEY));
    const svidPem = await readOptional(file(LEGACY_DATA_FILES.AGENT_SVID));
    const key = keyPem ? pemDerOf(keyPem, 'PRIVATE KEY')[0] : undefined;
    const chain = svidPem ? pemDerOf(svidPem, 'CERTIFICATE') : [];
    const out: Pick<StoredAgentState, 'agentKey' | 'agentSvidChain'> = {};
    if (key) out.agentKey = key;
    if (chain.length > 0) out.agentSvidChain = chain;
    const leaf = chain[0];
    if (key && leaf && keyMatches(leaf, key)) await saveAgentIdentity(key, chain);
    return out;
  }

  return {
    path,
    async load() {
      const state: StoredAgentState = {};
      const identityPem = await readOptional(file(DATA_FILES.AGENT_IDENTITY));
      if (identityPem !== undefined) {
        const key = pemDerOf(identityPem, 'PRIVATE KEY')[0];
        const chain = pemDerOf(identityPem, 'CERTIFICATE');
        if (key) state.agentKey = key;
        if (chain.length > 0) state.agentSvidChain = chain;
        await removeLegacy(); // a crash after a migration's write, before its unlinks
      } else {
        Object.assign(state, await migrateLegacy());
      }
      const bundleText = await readOptional(file(DATA_FILES.BUNDLE));
      if (bundleText) {
        try {
          const bundle = JSON.parse(bundleText) as SpiffeBundleJson;
          if (bundle && Array.isArray(bundle.keys)) state.bundle = bundle;
        } catch {
          // a corrupt bundle is refetched on the first sync
        }
      }
      return state;
    },
    saveAgentIdentity,
    saveBundle: (bundle) => writeFileAtomic(file(DATA_FILES.BUNDLE), `${JSON.stringify(bundle)}\n`),
    async clearAgentIdentity() {
      await unlinkOptional(file(DATA_FILES.AGENT_IDENTITY));
      await removeLegacy();
    },
    readSvidCache: () => readOptional(file(DATA_FILES.SVID_CACHE), readTextInChunks),
    writeSvidCache: (text) => writeFileAtomic(file(DATA_FILES.SVID_CACHE), text),
  };
}

async function unlinkOptional(path: string): Promise<void> {
  await unlink(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** True when `pkcs8` is a P-256 key whose public half is `leafDer`'s key. */
function keyMatches(leafDer: Uint8Array, pkcs8: Uint8Array): boolean {
  try {
    return certificateMatchesKey(leafDer, importPkcs8(pkcs8));
  } catch {
    return false;
  }
}
