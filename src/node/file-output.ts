/**
 * Files the agent and the CLI write, written one way: atomically (temp file, fsync, rename, fsync of the
 * directory), so a crash leaves the old file or the new one, never a torn one, and with an explicit mode
 * (a private key 0600; the umask can narrow a mode, never widen it, so it is set again after writing).
 * Used for the agent's data directory (src/agent/data-dir.ts) and for the SVIDs, keys, bundles and tokens
 * that `wisp-agent api fetch x509 --write`, `wisp x509 mint --write` and `wisp jwt mint --write` write.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** A private key, a token, anything secret. */
export const PRIVATE_FILE_MODE = 0o600;
/** Certificates and bundles, readable by the workloads that trust them. */
export const PUBLIC_FILE_MODE = 0o644;
/** A directory created for output: it holds a private key. */
export const OUTPUT_DIR_MODE = 0o700;

/** Writes `data` (or its pieces, in order, each taken once the one before is written) to `file` atomically with `mode`. */
export async function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<string>, mode: number = PRIVATE_FILE_MODE): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, 'wx', mode);
  try {
    // writeFile on a handle writes from the current position: the pieces follow one another
    for (const piece of typeof data === 'string' || data instanceof Uint8Array ? [data] : data) await handle.writeFile(piece);
    await handle.chmod(mode); // umask may have narrowed, never widened, but be explicit
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

export interface OutputFile {
  name: string;
  data: string;
  mode: number;
}

/**
 * Writes `files` into `dir` (created, OUTPUT_DIR_MODE, when missing), each atomically with its mode;
 * returns their paths.
 * @example await writeOutputFiles('/etc/db/svid', [{ name: 'key.pem', data: keyPem, mode: PRIVATE_FILE_MODE }])
 */
export async function writeOutputFiles(dir: string, files: readonly OutputFile[]): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: OUTPUT_DIR_MODE });
  const paths: string[] = [];
  for (const f of files) {
    const path = join(dir, f.name);
    await writeFileAtomic(path, f.data, f.mode);
    paths.push(path);
  }
  return paths;
}
