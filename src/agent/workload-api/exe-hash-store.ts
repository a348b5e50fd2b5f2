/**
 * The unix attestor's executable hashes (`unix:sha256:`), kept in the data dir so that a restarted agent
 * answers a workload's first call without reading its whole executable again: hashing the 120 MB node
 * binary took ~230 ms of a restart's 390 ms to the first SVID (docs/performance.md, start-up).
 *
 * A hash is reused only for the same file in the same state: the key is device, inode, size, mtime and
 * ctime (unix-attestor.ts `exeHashKey`). ctime cannot be set from user space (any write or utimes() moves it
 * to now), so a binary changed in place, even with its mtime put back, gets a new key. Device and inode
 * numbers are reused across boots (tmpfs, overlay layers), so the file records the boot it was written in
 * (/proc/sys/kernel/random/boot_id) and is ignored after a reboot. No boot id: nothing is kept.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../node/file-output.js';

/** Where a failed write is reported (the agent's logger). */
interface WarnLog {
  warn(fields: { err: unknown }, message: string): void;
}

/** The file, in the data dir. */
export const EXE_HASHES_FILE = 'exe-hashes.json';
/** Hashes kept at most (the attestor's in-memory cache holds as many). */
export const EXE_HASHES_MAX = 256;
const MAX_KEY_LENGTH = 4096;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/** Hashes known from earlier runs, and where new ones go. */
export interface ExeHashStore {
  get(key: string): string | undefined;
  set(key: string, sha256Hex: string): void;
  /** writes a pending change now (shutdown, tests) */
  flush(): Promise<void>;
}

interface FileShape {
  version: 1;
  bootId: string;
  hashes: Record<string, string>;
}

async function readBootId(path: string): Promise<string | undefined> {
  try {
    const id = (await readFile(path, 'utf8')).trim();
    return /^[0-9a-f-]{16,64}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Known hashes of a file that is this boot's and well formed; anything else is an empty start. */
function parseFile(text: string, bootId: string): Map<string, string> {
  const known = new Map<string, string>();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return known;
  }
  const f = parsed as Partial<FileShape> | null;
  if (!f || f.version !== 1 || f.bootId !== bootId || typeof f.hashes !== 'object' || f.hashes === null) return known;
  for (const [key, hex] of Object.entries(f.hashes)) {
    if (known.size >= EXE_HASHES_MAX) break;
    if (key.length <= MAX_KEY_LENGTH && typeof hex === 'string' && SHA256_HEX.test(hex)) known.set(key, hex);
  }
  return known;
}

/**
 * Opens the store in `dataDir`; never throws (the hashes are only a speed-up: an unreadable or foreign file
 * means hashing again). A new hash is written at once, one write at a time (they are rare: one per new
 * executable); the oldest is dropped past `EXE_HASHES_MAX`.
 * @example const exeHashes = await openExeHashStore(config.dataDir, { log });
 */
export async function openExeHashStore(dataDir: string, deps: { log: WarnLog; bootIdFile?: string }): Promise<ExeHashStore | undefined> {
  const bootId = await readBootId(deps.bootIdFile ?? BOOT_ID_FILE);
  if (!bootId) return undefined;
  const file = join(dataDir, EXE_HASHES_FILE);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    // none yet
  }
  const known = text === undefined ? new Map<string, string>() : parseFile(text, bootId);
  let dirty = false;
  let writing: Promise<void> | undefined;
  const write = async (): Promise<void> => {
    while (dirty) {
      dirty = false;
      const body: FileShape = { version: 1, bootId, hashes: Object.fromEntries(known) };
      try {
        await writeFileAtomic(file, `${JSON.stringify(body)}\n`);
      } catch (err) {
        deps.log.warn({ err }, 'cannot write the executable hashes; they are computed again after a restart');
      }
    }
  };
  const schedule = () => {
    dirty = true;
    writing ??= write().finally(() => (writing = undefined));
  };
  return {
    get: (key) => known.get(key),
    set(key, hex) {
      if (key.length > MAX_KEY_LENGTH || !SHA256_HEX.test(hex) || known.get(key) === hex) return;
      known.delete(key);
      known.set(key, hex);
      if (known.size > EXE_HASHES_MAX) known.delete(known.keys().next().value!);
      schedule();
    },
    async flush() {
      await writing;
    },
  };
}
