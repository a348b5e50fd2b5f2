/**
 * The agent's data directory: its private key (PKCS#8 PEM), its X509-SVID chain (PEM) and the last trust
 * bundle (SPIFFE bundle JSON), so a restart reuses them without a join token and without re-attesting.
 * The directory is 0700 and every file 0600, written atomically (temp file, fsync, rename, fsync dir), so a
 * crash leaves either the old or the new file, never a torn one. Key and SVID are separate files: a crash
 * between the two writes leaves a key that does not match the certificate, which `loadAgentState`'s caller
 * detects (`certificateMatchesKey`) and treats as "no identity".
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { SpiffeBundleJson } from '../shared/agent-api.js';
import { WispError } from '../shared/errors.js';
import { fromPem, toPem } from './keys.js';

export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

export const DATA_FILES = {
  AGENT_KEY: 'agent-key.pem',
  AGENT_SVID: 'agent-svid.pem',
  BUNDLE: 'bundle.json',
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
  saveAgentKey(pkcs8: Uint8Array): Promise<void>;
  saveAgentSvid(chain: readonly Uint8Array[]): Promise<void>;
  saveBundle(bundle: SpiffeBundleJson): Promise<void>;
  /** forgets the agent's identity (before re-attesting); the bundle stays */
  clearAgentIdentity(): Promise<void>;
}

/** Writes `data` to `file` atomically with mode 0600. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', DATA_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.chmod(DATA_FILE_MODE); // umask may have narrowed, never widened, but be explicit
    await handle.sync();
  } catch (e) {
    await handle.close();
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await handle.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dir = await open(join(file, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
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

  return {
    path,
    async load() {
      const state: StoredAgentState = {};
      const keyPem = await readOptional(file(DATA_FILES.AGENT_KEY));
      const key = keyPem ? fromPem('PRIVATE KEY', keyPem)[0] : undefined;
      if (key) state.agentKey = key;
      const svidPem = await readOptional(file(DATA_FILES.AGENT_SVID));
      const chain = svidPem ? fromPem('CERTIFICATE', svidPem) : [];
      if (chain.length > 0) state.agentSvidChain = chain;
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
    saveAgentKey: (pkcs8) => writeFileAtomic(file(DATA_FILES.AGENT_KEY), toPem('PRIVATE KEY', pkcs8)),
    saveAgentSvid: (chain) => writeFileAtomic(file(DATA_FILES.AGENT_SVID), chain.map((c) => toPem('CERTIFICATE', c)).join('')),
    saveBundle: (bundle) => writeFileAtomic(file(DATA_FILES.BUNDLE), `${JSON.stringify(bundle)}\n`),
    async clearAgentIdentity() {
      for (const name of [DATA_FILES.AGENT_SVID, DATA_FILES.AGENT_KEY]) {
        await unlink(file(name)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
      }
    },
  };
}
