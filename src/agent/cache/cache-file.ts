/**
 * The workload SVID cache on disk (`svid-cache.json` in the data dir, 0600, written atomically): every
 * authorized entry with its X509-SVID chain, PKCS#8 private key and expiry, plus the last sync revision,
 * the trust bundle and the federated bundles, the last revocations and CRLs and the tainted X.509
 * authorities (so a restart re-applies them before serving; files without them read as none). It lets a restarted agent serve unexpired SVIDs before it
 * reaches the issuer. It holds workload private keys, so it is as sensitive as the agent's own key.
 *
 * Writes follow the cache's changes, coalesced: the first change arms a timer, changes until it fires
 * ride along, and one write at a time is in flight; `flush()` writes at once (shutdown). A crash can lose
 * at most the changes of the last `delayMs`; what is on disk is always a whole, earlier snapshot.
 *
 * Loading is strict about the file's shape: anything unexpected (not JSON, another version or trust
 * domain, a malformed entry) discards the whole file with a warning and the agent starts from its first
 * sync as if there were none. An SVID whose certificate does not parse or does not match its key is
 * dropped alone (its entry gets a fresh SVID on the first sync).
 * @module
 */
import type { SpiffeBundleJson, SyncRevocations } from '../../shared/agent-api.js';
import { fromBase64, toBase64 } from '../../shared/encoding/base64.js';
import type { Entry } from '../../shared/registry/entry.js';
import type { DataDir } from '../data-dir.js';
import { importPkcs8, matchingSvidInfo } from '../keys.js';
import { LOG_FIELDS, type Logger } from '../log.js';
import type { CacheSnapshot, SvidCache } from './svid-cache.js';

export const CACHE_FILE_VERSION = 1;
/** default coalescing window of the persister */
export const CACHE_WRITE_DELAY_MS = 250;

interface FileSvid {
  /** base64 DER, leaf first */
  certChain: string[];
  /** base64 PKCS#8 DER */
  privateKey: string;
  /** ms since the epoch */
  notBefore: number;
  notAfter: number;
  entryRevision: number;
}

interface CacheFile {
  version: typeof CACHE_FILE_VERSION;
  trustDomain: string;
  /** the agent the entries were authorized for */
  agentId: string;
  writtenAt: string;
  revision?: string;
  bundle?: SpiffeBundleJson;
  federatedBundles: Record<string, SpiffeBundleJson>;
  /** absent in files of older agents: none (checked when the cache restores it) */
  revocations?: SyncRevocations;
  taintedX509?: string[];
  entries: Array<{ entry: Entry; svid?: FileSvid }>;
}

export interface CacheFileOwner {
  trustDomain: string;
  agentId: string;
}

/** Largest piece `encodeCacheFileParts` returns, characters (the file is ASCII JSON). */
export const CACHE_FILE_PART_CHARS = 64 * 1024;

/**
 * The cache file's JSON text in pieces of at most about CACHE_FILE_PART_CHARS, entry by entry; joined, they
 * are `JSON.stringify` of the whole file plus a newline. With 1,000 SVIDs the file is ~2.5 MB: written
 * whole, it became one string on the V8 heap and one malloc'd buffer of that size at every write, and
 * freeing a block that large raises glibc's mmap threshold for good, after which every thread's malloc
 * arena keeps megabytes it has freed (docs/agent-config.md, memory). Pieces stay far below it.
 *
 * The pieces are made as they are consumed (a generator over `snap`, which holds the state of one moment):
 * a writer that takes one, writes it and only then takes the next keeps one piece alive at a time, young
 * garbage for V8, instead of megabytes of strings that outlive the write's I/O and fill the old generation.
 */
export function* encodeCacheFileParts(snap: CacheSnapshot, owner: CacheFileOwner, now: number): Generator<string, void, undefined> {
  const svids = new Map(snap.svids.map((s) => [s.entryId, s]));
  const head: Omit<CacheFile, 'entries'> = {
    version: CACHE_FILE_VERSION,
    trustDomain: owner.trustDomain,
    agentId: owner.agentId,
    writtenAt: new Date(now).toISOString(),
    ...(snap.revision !== undefined ? { revision: snap.revision } : {}),
    ...(snap.bundle ? { bundle: snap.bundle } : {}),
    federatedBundles: snap.federatedBundles,
    ...(snap.revocations ? { revocations: snap.revocations } : {}),
    ...(snap.taintedX509 ? { taintedX509: snap.taintedX509 } : {}),
  };
  // `entries` goes last, as JSON.stringify of the whole CacheFile would put it
  let part = `${JSON.stringify(head).slice(0, -1)},"entries":[`;
  for (const [i, entry] of snap.entries.entries()) {
    const s = svids.get(entry.id);
    const item: CacheFile['entries'][number] = {
      entry,
      ...(s && s.spiffeId === entry.spiffeId
        ? { svid: { certChain: s.certChain.map(toBase64), privateKey: toBase64(s.privateKey), notBefore: s.notBefore, notAfter: s.notAfter, entryRevision: s.entryRevision } }
        : {}),
    };
    part += `${i === 0 ? '' : ','}${JSON.stringify(item)}`;
    if (part.length >= CACHE_FILE_PART_CHARS) {
      yield part;
      part = '';
    }
  }
  yield `${part}]}\n`;
}

/** The whole cache file text (`encodeCacheFileParts` joined). */
export function encodeCacheFile(snap: CacheSnapshot, owner: CacheFileOwner, now: number): string {
  return [...encodeCacheFileParts(snap, owner, now)].join('');
}

/** Parses a cache file; throws Error (saying what is wrong) when it cannot be used at all. */
export async function decodeCacheFile(text: string, expected: { trustDomain: string }, log: Logger): Promise<{ snapshot: CacheSnapshot; agentId: string }> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('not JSON');
  }
  if (!isObject(raw)) throw new Error('not a JSON object');
  if (raw.version !== CACHE_FILE_VERSION) throw new Error(`unsupported version ${JSON.stringify(raw.version)}`);
  if (raw.trustDomain !== expected.trustDomain) throw new Error(`written for trust domain ${JSON.stringify(raw.trustDomain)}`);
  if (typeof raw.agentId !== 'string') throw new Error('agentId missing');
  if (raw.revision !== undefined && typeof raw.revision !== 'string') throw new Error('revision is not a string');
  if (raw.bundle !== undefined && !isBundle(raw.bundle)) throw new Error('bundle is malformed');
  if (!isObject(raw.federatedBundles) || !Object.values(raw.federatedBundles).every(isBundle)) throw new Error('federatedBundles is malformed');
  if (!Array.isArray(raw.entries)) throw new Error('entries is not an array');
  if (raw.revocations !== undefined && !isObject(raw.revocations)) throw new Error('revocations is malformed');
  if (raw.taintedX509 !== undefined && !isStrArray(raw.taintedX509)) throw new Error('taintedX509 is malformed');

  const snapshot: CacheSnapshot = {
    ...(raw.revision !== undefined ? { revision: raw.revision } : {}),
    ...(raw.bundle !== undefined ? { bundle: raw.bundle as SpiffeBundleJson } : {}),
    federatedBundles: raw.federatedBundles as Record<string, SpiffeBundleJson>,
    ...(raw.revocations !== undefined ? { revocations: raw.revocations as unknown as SyncRevocations } : {}),
    ...(raw.taintedX509 !== undefined ? { taintedX509: raw.taintedX509 } : {}),
    entries: [],
    svids: [],
  };
  for (const [i, item] of raw.entries.entries()) {
    if (!isObject(item) || !isEntry(item.entry)) throw new Error(`entries[${i}] is malformed`);
    const entry = item.entry;
    snapshot.entries.push(entry);
    if (item.svid === undefined) continue;
    if (!isFileSvid(item.svid)) throw new Error(`entries[${i}].svid is malformed`);
    const svid = checkedSvid(item.svid);
    if (!svid) {
      log.warn({ [LOG_FIELDS.ENTRY_ID]: entry.id, [LOG_FIELDS.SPIFFE_ID]: entry.spiffeId }, 'SVID cache file: certificate unreadable or not matching its key; dropped, a new one is issued at the next sync');
      continue;
    }
    snapshot.svids.push({ entryId: entry.id, spiffeId: svid.spiffeId ?? entry.spiffeId, entryRevision: item.svid.entryRevision, ...svid.held });
  }
  return { snapshot, agentId: raw.agentId };
}

/** The SVID with validity taken from the certificate itself, or undefined if it is unusable. */
function checkedSvid(s: FileSvid): { spiffeId: string | undefined; held: Pick<CacheSnapshot['svids'][number], 'certChain' | 'privateKey' | 'notBefore' | 'notAfter' | 'serialNumber'> } | undefined {
  try {
    const certChain = s.certChain.map((c) => fromBase64(c));
    const privateKey = fromBase64(s.privateKey);
    const leaf = certChain[0];
    const info = leaf ? matchingSvidInfo(leaf, importPkcs8(privateKey)) : undefined;
    if (!info) return undefined;
    return { spiffeId: info.spiffeId, held: { certChain, privateKey, notBefore: info.notBefore, notAfter: info.notAfter, serialNumber: info.serialNumber } };
  } catch {
    return undefined;
  }
}

/**
 * Reads the cache file into `cache` (before the first sync). Returns undefined, after logging why, when
 * there is none or it cannot be used; then the agent behaves as without one. When a snapshot was loaded
 * and a trust bundle is held, the cache is marked ready: the Workload API serves at once.
 */
export async function loadSvidCacheFile(deps: {
  dataDir: Pick<DataDir, 'readSvidCache'>;
  cache: SvidCache;
  trustDomain: string;
  agentId: string;
  log: Logger;
}): Promise<{ served: number; expired: number; revoked?: number } | undefined> {
  const { log } = deps;
  let text: string | undefined;
  try {
    text = await deps.dataDir.readSvidCache();
  } catch (e) {
    log.warn({ err: e }, 'cannot read the SVID cache file; ignored, starting from the first sync');
    return undefined;
  }
  if (text === undefined) return undefined;
  let decoded: Awaited<ReturnType<typeof decodeCacheFile>>;
  try {
    decoded = await decodeCacheFile(text, { trustDomain: deps.trustDomain }, log);
  } catch (e) {
    log.warn(`ignored a corrupt SVID cache file (${(e as Error).message}); starting from the first sync`);
    return undefined;
  }
  if (decoded.agentId !== deps.agentId) {
    log.info({ [LOG_FIELDS.AGENT_ID]: deps.agentId, previous_agent_id: decoded.agentId }, 'SVID cache file belongs to another agent identity; ignored');
    return undefined;
  }
  const res = await deps.cache.restore(decoded.snapshot);
  if (deps.cache.bundleJson()) {
    deps.cache.markReady();
    deps.cache.notify();
  }
  log.info({ [LOG_FIELDS.COUNT]: res.served, expired: res.expired, revoked: res.revoked, [LOG_FIELDS.REVISION]: decoded.snapshot.revision }, 'loaded cached X509-SVIDs');
  return res;
}

export interface CachePersister {
  /** notes a change; the write follows within `delayMs`, once for all changes until then */
  schedule(): void;
  /** writes now if anything is pending (waits for a write in flight first) */
  flush(): Promise<void>;
}

export function createCachePersister(o: { write: (text: string | Iterable<string>) => Promise<void>; encode: () => string | Iterable<string> | undefined; log: Logger; delayMs?: number }): CachePersister {
  const delayMs = o.delayMs ?? CACHE_WRITE_DELAY_MS;
  let dirty = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let writing: Promise<void> | undefined;

  async function writeNow(): Promise<void> {
    while (writing) await writing;
    if (!dirty) return;
    dirty = false;
    const p = (async () => {
      const text = o.encode();
      if (text === undefined) return;
      try {
        await o.write(text);
      } catch (e) {
        dirty = true; // retried with the next change or flush
        o.log.error({ err: e }, 'cannot write the SVID cache file');
      }
    })();
    writing = p;
    try {
      await p;
    } finally {
      writing = undefined;
    }
  }

  return {
    schedule() {
      dirty = true;
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void writeNow();
      }, delayMs);
      timer.unref?.();
    },
    async flush() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      await writeNow();
    },
  };
}

// ---- shape checks ----

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isBundle(x: unknown): boolean {
  return isObject(x) && Array.isArray(x.keys);
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isStrArray = (x: unknown): x is string[] => Array.isArray(x) && x.every(isStr);

function isEntry(x: unknown): x is Entry {
  return (
    isObject(x) &&
    isStr(x.id) &&
    isStr(x.spiffeId) &&
    isStr(x.parentId) &&
    Array.isArray(x.selectors) &&
    x.selectors.every((s) => isObject(s) && isStr(s.type) && isStr(s.value)) &&
    isNum(x.x509SvidTtl) &&
    isNum(x.jwtSvidTtl) &&
    isStrArray(x.dnsNames) &&
    isStrArray(x.federatesWith) &&
    typeof x.admin === 'boolean' &&
    typeof x.downstream === 'boolean' &&
    isStr(x.hint) &&
    isNum(x.expiresAt) &&
    isNum(x.revisionNumber) &&
    isNum(x.createdAt)
  );
}

function isFileSvid(x: unknown): x is FileSvid {
  return isObject(x) && isStrArray(x.certChain) && isStr(x.privateKey) && isNum(x.notBefore) && isNum(x.notAfter) && isNum(x.entryRevision);
}
