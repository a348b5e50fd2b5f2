/**
 * Workload attestation on Linux from the caller's kernel credentials (SPIRE's `unix` workload attestor).
 * Everything comes from SO_PEERCRED, /proc and the local user and group databases; nothing the client says
 * is used. Selectors:
 *   unix:uid:<n>  unix:gid:<n>  unix:user:<name>  unix:group:<name>
 *   unix:supplementary_gid:<n>  unix:supplementary_group:<name>
 *   unix:path:<exe>  unix:sha256:<hex of the exe>
 *
 * A selector that cannot be determined (no passwd entry, exe unreadable) is left out: entries match when
 * their selectors are a subset of the workload's, so fewer selectors can never grant more.
 *
 * PID reuse: the pid in SO_PEERCRED may belong to another process by the time /proc is read. The process
 * start time (/proc/<pid>/stat field 22) is taken when the connection is accepted (`processStartTime`) and
 * compared before and after /proc is read, and the effective uid/gid in /proc/<pid>/status must equal the
 * peer credentials. Any mismatch fails attestation.
 * @module
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { readFile, readlink, stat } from 'node:fs/promises';
import { WispError } from '../../shared/errors.js';
import type { Selector } from '../../shared/registry/selectors.js';
import type { ExeHashStore } from './exe-hash-store.js';
import type { PeerCredentials } from './peer.js';

/** Peer credentials plus the process start time read when the connection was accepted. */
export interface PeerInfo extends PeerCredentials {
  /** /proc/<pid>/stat start time (clock ticks since boot) at accept time; undefined if it could not be read */
  startTime?: string;
}

export interface UnixAttestorOptions {
  /** default `/proc` */
  procRoot?: string;
  /** default `/etc/passwd` */
  passwdPath?: string;
  /** default `/etc/group` */
  groupPath?: string;
  /** executables larger than this get no sha256 selector (SPIRE `workload_size_limit`); default 256 MiB */
  maxHashBytes?: number;
  /** how long one process's selectors are reused, keyed by pid, start time, uid and gid; default 1 s, 0: never */
  attestationCacheMs?: number;
  /** ms clock for that cache; default Date.now */
  now?: () => number;
  /** executable hashes kept across restarts (exe-hash-store.ts); default: this process's memory only */
  knownHashes?: Pick<ExeHashStore, 'get' | 'set'>;
}

/**
 * Selectors of a process are reused for this long (same pid, same start time: not a reused pid). Within it
 * a process that exec()s another binary, or changes its effective ids, keeps its earlier selectors; 1 s
 * bounds that window while a burst of calls from one workload costs one /proc walk.
 */
export const DEFAULT_ATTESTATION_CACHE_MS = 1_000;
/** Processes whose selectors are kept at most. */
const ATTESTATION_CACHE_MAX = 4096;

/** Default cap on the size of an executable that is hashed for `unix:sha256`. */
export const DEFAULT_MAX_HASH_BYTES = 256 * 1024 * 1024;
/** Hashes kept, keyed by device, inode, size and mtime of the executable. */
const HASH_CACHE_MAX = 256;

/** Attests a caller; rejects with WispError ERR_UNAVAILABLE (SPIRE: workload attestation failed = Unavailable). */
export type WorkloadAttestor = (peer: PeerInfo) => Promise<Selector[]>;

/**
 * Reads the start time of `pid` from /proc/<pid>/stat, synchronously: call it right after accepting a
 * connection, next to `peerCredentials`. Returns undefined when the process is already gone.
 */
export function processStartTime(pid: number, procRoot = '/proc'): string | undefined {
  try {
    return parseStartTime(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may contain spaces and parentheses. */
export function parseStartTime(stat: string): string | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19]
  const start = fields[19];
  return start && /^\d+$/.test(start) ? start : undefined;
}

interface ProcStatus {
  euid: number;
  egid: number;
  groups: number[];
}

export function parseStatus(status: string): ProcStatus {
  // [ \t]* and not \s*: an empty `Groups:` line must not swallow the next line
  const line = (key: string) => status.match(new RegExp(`^${key}:[ \\t]*([^\\n]*)$`, 'm'))?.[1]?.trim() ?? '';
  const ids = (key: string) => line(key).split(/\s+/).filter(Boolean).map(Number);
  if ([...ids('Uid'), ...ids('Gid'), ...ids('Groups')].some((n) => !Number.isInteger(n))) throw new Error('unexpected /proc status format');
  const uids = ids('Uid');
  const gids = ids('Gid');
  if (uids.length < 2 || gids.length < 2) throw new Error('unexpected /proc status format');
  return { euid: uids[1]!, egid: gids[1]!, groups: ids('Groups') };
}

/** id → name from a passwd(5) or group(5) file (name:x:id:...). */
function parseIdFile(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const [name, , id] = raw.split(':');
    if (!name || !id || raw.startsWith('#') || !/^\d+$/.test(id)) continue;
    if (!names.has(Number(id))) names.set(Number(id), name);
  }
  return names;
}

/** A small cache of a file parsed once per mtime. */
function cachedIdFile(path: string): () => Promise<Map<number, string>> {
  let cached: { mtimeMs: number; size: number; names: Map<number, string> } | undefined;
  return async () => {
    try {
      const st = await stat(path);
      if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.names;
      cached = { mtimeMs: st.mtimeMs, size: st.size, names: parseIdFile(await readFile(path, 'utf8')) };
      return cached.names;
    } catch {
      return new Map();
    }
  };
}

function failed(message: string, cause?: unknown): WispError {
  return new WispError('ERR_UNAVAILABLE', `workload attestation failed: ${message}`, { cause });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Creates the unix workload attestor.
 * @example
 * const attest = createUnixAttestor();
 * const selectors = await attest({ ...peerCredentials(socket), startTime: processStartTime(pid) });
 */
export function createUnixAttestor(options: UnixAttestorOptions = {}): WorkloadAttestor {
  const proc = options.procRoot ?? '/proc';
  const users = cachedIdFile(options.passwdPath ?? '/etc/passwd');
  const groups = cachedIdFile(options.groupPath ?? '/etc/group');
  const maxHashBytes = options.maxHashBytes ?? DEFAULT_MAX_HASH_BYTES;
  // promises, so that concurrent first calls from one executable hash it once (bench: 100 clients started
  // at once hashed the 100 MB node binary once each)
  const hashes = new Map<string, Promise<string>>();

  async function readStartTime(pid: number): Promise<string | undefined> {
    try {
      return parseStartTime(await readFile(`${proc}/${pid}/stat`, 'utf8'));
    } catch (err) {
      throw failed(`process ${pid} is gone`, err);
    }
  }

  async function exeSelectors(pid: number): Promise<Selector[]> {
    const exe = `${proc}/${pid}/exe`;
    let path: string;
    try {
      path = await readlink(exe);
    } catch {
      return []; // not permitted (another user's process without CAP_SYS_PTRACE) or a kernel thread
    }
    const selectors: Selector[] = [{ type: 'unix', value: `path:${path}` }];
    try {
      // stat and read through /proc/<pid>/exe: the inode the process runs, even if the path was replaced
      const st = await stat(exe);
      if (st.size <= maxHashBytes) {
        // ctime too: it moves on any change to the file, even one that puts the mtime back (exe-hash-store.ts)
        const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${path}`;
        let digest = hashes.get(key);
        if (!digest) {
          const known = options.knownHashes?.get(key);
          digest = known === undefined ? sha256File(exe) : Promise.resolve(known);
          if (known === undefined && options.knownHashes) void digest.then((hex) => options.knownHashes!.set(key, hex), () => undefined);
          if (hashes.size >= HASH_CACHE_MAX) hashes.delete(hashes.keys().next().value!);
          hashes.set(key, digest);
          digest.catch(() => hashes.delete(key));
        }
        selectors.push({ type: 'unix', value: `sha256:${await digest}` });
      }
    } catch {
      // unreadable executable: no sha256 selector
    }
    return selectors;
  }

  const cacheMs = options.attestationCacheMs ?? DEFAULT_ATTESTATION_CACHE_MS;
  const now = options.now ?? Date.now;
  const attested = new Map<string, { at: number; selectors: Promise<Selector[]> }>();

  const attestCached: WorkloadAttestor = async (peer) => {
    if (cacheMs <= 0 || peer.startTime === undefined) return attest(peer);
    const key = `${peer.pid}:${peer.startTime}:${peer.uid}:${peer.gid}`;
    const t = now();
    const hit = attested.get(key);
    if (hit && t - hit.at >= 0 && t - hit.at < cacheMs) return [...(await hit.selectors)];
    if (attested.size >= ATTESTATION_CACHE_MAX) {
      for (const [k, v] of attested) if (!(t - v.at < cacheMs)) attested.delete(k);
      if (attested.size >= ATTESTATION_CACHE_MAX) attested.clear();
    }
    const selectors = attest(peer);
    attested.set(key, { at: t, selectors });
    selectors.catch(() => attested.delete(key));
    return [...(await selectors)];
  };

  const attest: WorkloadAttestor = async (peer) => {
    if (!Number.isInteger(peer.pid) || peer.pid <= 0) throw failed('no peer pid');
    const before = await readStartTime(peer.pid);
    if (peer.startTime !== undefined && before !== peer.startTime) throw failed(`pid ${peer.pid} was reused`);

    let status: ProcStatus;
    try {
      status = parseStatus(await readFile(`${proc}/${peer.pid}/status`, 'utf8'));
    } catch (err) {
      throw failed(`cannot read status of pid ${peer.pid}`, err);
    }
    if (status.euid !== peer.uid || status.egid !== peer.gid) {
      throw failed(`pid ${peer.pid} no longer runs as the connecting uid/gid`);
    }
    const exe = await exeSelectors(peer.pid);
    const after = await readStartTime(peer.pid);
    if (after !== before) throw failed(`pid ${peer.pid} was reused during attestation`);

    const [userNames, groupNames] = await Promise.all([users(), groups()]);
    const selectors: Selector[] = [
      { type: 'unix', value: `uid:${peer.uid}` },
      { type: 'unix', value: `gid:${peer.gid}` },
    ];
    const user = userNames.get(peer.uid);
    if (user) selectors.push({ type: 'unix', value: `user:${user}` });
    const group = groupNames.get(peer.gid);
    if (group) selectors.push({ type: 'unix', value: `group:${group}` });
    for (const gid of new Set(status.groups)) {
      selectors.push({ type: 'unix', value: `supplementary_gid:${gid}` });
      const name = groupNames.get(gid);
      if (name) selectors.push({ type: 'unix', value: `supplementary_group:${name}` });
    }
    selectors.push(...exe);
    return selectors;
  };
  return attestCached;
}
