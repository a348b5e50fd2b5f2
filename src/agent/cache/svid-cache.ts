/**
 * The agent's cache: authorized entries, the X509-SVIDs issued for them (keys generated on this node),
 * the trust bundle and federated bundles, and the JWT-SVID cache (jwt-svid-cache.ts). It implements `IdentitySource` for
 * the Workload API; the sync loop (sync.ts, rotator.ts) pushes into it. It notifies subscribers after
 * every change. `snapshot()` and `restore()` let cache-file.ts persist it in the data dir (workload keys
 * included) so a restarted agent serves unexpired SVIDs before it reaches the issuer; `onStateChange`
 * tells the persister when there is something new to write. A revoked SVID (revocations.ts, the shared
 * rule) is dropped at once, never served, and re-signed in the same round; a restored cache re-applies the
 * persisted revocations and taint before it serves. Over 400 lines: the cache's state and the sync's
 * changes to it (entries, bundles, taint, revocations) are one concept; the JWT side is already split out.
 * @module
 */
import type { SpiffeBundleJson, SyncResponse, SyncRevocations, X509SvidWire } from '../../shared/agent-api.js';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import type { Entry } from '../../shared/registry/entry.js';
import { selectorsMatch, type Selector } from '../../shared/registry/selectors.js';
import { serverId, type TrustDomain } from '../../shared/spiffe/id.js';
import type { IssuerClient } from '../issuer-client.js';
import { LOG_FIELDS, type Logger } from '../log.js';
import { shouldRotate } from '../rotation-policy.js';
import { JwtSvidCache } from './jwt-svid-cache.js';
import { WitSvidCache, type MintedWitSvid } from './wit-svid-cache.js';
import { bundleFromJson, bundleSequenceOf, emptyBundle } from './bundle-view.js';
import { NO_REVOCATIONS, readRevocations, type HeldRevocations } from './revocations.js';
import type { BundleSet, IdentitySource, MintedJwtSvid, TrustDomainBundle, WorkloadX509Svid } from './identity-source.js';

/** Most selector sets whose matching entries are memoized (distinct callers' selector sets). */
const WORKLOAD_MATCH_MEMO_MAX = 1024;

/** An X509-SVID held for an entry, with what rotation needs. */
interface HeldSvid {
  svid: WorkloadX509Svid;
  /** the leaf's, normalized (revocation by serial) */
  serialNumber: string;
  /** ms */
  notBefore: number;
  notAfter: number;
  /** ∈ [0, 1): fixed per SVID, pulls its renewal a little earlier (rotation-policy.ts) */
  jitter: number;
  /** the entry revision it was issued for; an update of the entry re-issues it */
  entryRevision: number;
  /** replace at the next signing pass, whatever its age (renewMatching: a tainted or revoked signer) */
  renewNow?: boolean;
}

/** What `snapshot()` gives and `restore()` takes (cache-file.ts turns it into JSON and back). */
export interface CacheSnapshot {
  revision?: string;
  bundle?: SpiffeBundleJson;
  federatedBundles: Record<string, SpiffeBundleJson>;
  /** the last revocations received (absent in older files: none) */
  revocations?: SyncRevocations;
  /** authority IDs of the own bundle's tainted X.509 authorities (absent in older files: none) */
  taintedX509?: string[];
  /** every authorized entry, with or without an SVID: the revision stands for all of them */
  entries: Entry[];
  svids: Array<{
    entryId: string;
    spiffeId: string;
    entryRevision: number;
    /** the leaf's, normalized */
    serialNumber: string;
    /** leaf first, DER */
    certChain: Uint8Array[];
    /** PKCS#8 DER */
    privateKey: Uint8Array;
    /** ms */
    notBefore: number;
    notAfter: number;
  }>;
}

/** A freshly issued SVID for `putSvids`. */
export interface IssuedSvid {
  entryId: string;
  wire: X509SvidWire;
  /** the leaf's, normalized */
  serialNumber: string;
  certChain: Uint8Array[];
  privateKey: Uint8Array;
  notBefore: number;
  notAfter: number;
}

export interface SvidCacheOptions {
  trustDomain: TrustDomain;
  clock: Clock;
  jwt: Pick<IssuerClient, 'mintJwtSvids'>;
  /** WIT-SVID minting (the issuer client); absent: FetchWITSVID is Unimplemented */
  wit?: Pick<IssuerClient, 'mintWitSvids'>;
  log: Logger;
  /** per-SVID rotation jitter source, [0, 1) */
  random?: () => number;
  /** JWT-SVID batching window, ms (default JWT_BATCH_WINDOW_MS in jwt-batcher.ts); 0 still gathers the requests of one event-loop turn */
  jwtBatchWindowMs?: number;
}

export class SvidCache implements IdentitySource {
  readonly #opts: SvidCacheOptions;
  readonly #random: () => number;
  #ready = false;
  #revision: string | undefined;
  #entries = new Map<string, Entry>();
  #matchMemo: { entries: Map<string, Entry>; bySelectors: Map<string, Entry[]> } = { entries: this.#entries, bySelectors: new Map() };
  #svids = new Map<string, HeldSvid>();
  #bundleJson: SpiffeBundleJson | undefined;
  #bundle: TrustDomainBundle;
  #federated = new Map<string, TrustDomainBundle>();
  /** the documents behind #federated, for persistence */
  #federatedJson = new Map<string, SpiffeBundleJson>();
  /** authority IDs of the own bundle's tainted X.509 authorities (the last sync that sent the bundle) */
  #taintedX509 = new Set<string>();
  /** true when one of `#taintedX509` signed the chain (set with it, `#setTaintedX509`) */
  #signedByTainted: (chain: readonly Uint8Array[]) => boolean = () => false;
  #revocations: HeldRevocations = NO_REVOCATIONS;
  #stateListeners = new Set<() => void>();
  #listeners = new Set<() => void>();
  readonly #jwts: JwtSvidCache;
  readonly #wits: WitSvidCache | undefined;

  constructor(options: SvidCacheOptions) {
    this.#opts = options;
    this.#random = options.random ?? Math.random;
    this.#bundle = emptyBundle(options.trustDomain);
    this.#jwts = new JwtSvidCache(options.clock, options.jwt, options.jwtBatchWindowMs);
    this.#wits = options.wit ? new WitSvidCache(options.clock, options.wit) : undefined;
  }

  // ---- IdentitySource (the Workload API's view) ----

  isReady(): boolean {
    return this.#ready;
  }

  x509SvidsFor(selectors: Selector[]): WorkloadX509Svid[] {
    const now = this.#opts.clock();
    const out: WorkloadX509Svid[] = [];
    for (const entry of this.#workloadEntries(selectors)) {
      const held = this.#svids.get(entry.id);
      if (held && now < held.notAfter) out.push(held.svid);
    }
    return out;
  }

  identitiesFor(selectors: Selector[]): Array<{ entryId: string; spiffeId: string; hint: string; federatesWith: string[] }> {
    return this.#workloadEntries(selectors).map((e) => ({ entryId: e.id, spiffeId: e.spiffeId, hint: e.hint, federatesWith: [...e.federatesWith] }));
  }

  bundles(): BundleSet {
    return { own: this.#bundle, federated: new Map(this.#federated) };
  }

  crls(): Uint8Array[] {
    return this.#revocations.crls;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async fetchJwtSvid(entryId: string, audience: string[]): Promise<MintedJwtSvid> {
    const entry = this.#entries.get(entryId);
    if (!entry || !this.#isLive(entry, this.#opts.clock())) throw new WispError('ERR_NO_IDENTITY', 'no identity issued');
    // kept only if the entry was not updated while the JWT-SVID was being minted
    return this.#jwts.fetch(entry, audience, (minted) => this.#entries.get(minted.id)?.revisionNumber === minted.revisionNumber);
  }

  async fetchWitSvids(entryIds: string[]): Promise<MintedWitSvid[]> {
    if (!this.#wits) throw new WispError('ERR_UNIMPLEMENTED', 'the WIT-SVID profile is not supported');
    const now = this.#opts.clock();
    const entries = entryIds.map((id) => this.#entries.get(id));
    if (entries.some((e) => !e || !this.#isLive(e, now))) throw new WispError('ERR_NO_IDENTITY', 'no identity issued');
    return this.#wits.fetch(entries as Entry[], (minted) => this.#entries.get(minted.id)?.revisionNumber === minted.revisionNumber);
  }

  witRefreshAt(entryIds: string[]): number | undefined {
    return this.#wits?.refreshAt(entryIds);
  }

  // ---- the sync loop's side ----

  /** what the next /sync request sends */
  syncState(): { revision?: string; bundleSequence?: number } {
    const seq = bundleSequenceOf(this.#bundleJson);
    return { ...(this.#revision !== undefined ? { revision: this.#revision } : {}), ...(seq !== undefined ? { bundleSequence: seq } : {}) };
  }

  /** forgets the entry revision so the next sync fetches every entry (after re-attestation) */
  resetRevision(): void {
    this.#revision = undefined;
    this.#stateChanged();
  }

  /** the bundle JSON held, for persistence */
  bundleJson(): SpiffeBundleJson | undefined {
    return this.#bundleJson;
  }

  /** replaces the own-trust-domain bundle; true if it changed. A malformed bundle is logged and ignored. */
  async setBundle(json: SpiffeBundleJson): Promise<boolean> {
    if (this.#bundleJson && JSON.stringify(this.#bundleJson) === JSON.stringify(json)) return false;
    let bundle: TrustDomainBundle;
    try {
      bundle = await bundleFromJson(this.#opts.trustDomain, json);
    } catch (e) {
      this.#opts.log.error({ [LOG_FIELDS.BUNDLE_SEQUENCE]: bundleSequenceOf(json) }, `ignored a malformed trust bundle from the issuer: ${(e as Error).message}`);
      return false;
    }
    this.#bundleJson = json;
    this.#bundle = bundle;
    this.#stateChanged();
    this.#opts.log.info({ [LOG_FIELDS.BUNDLE_SEQUENCE]: bundleSequenceOf(json), [LOG_FIELDS.COUNT]: this.#bundle.x509Authorities.length }, 'trust bundle updated');
    return true;
  }

  /** applies a /sync response; returns what changed (the caller notifies once per tick) */
  async applySync(res: SyncResponse): Promise<{ entries: boolean; bundle: boolean; revocations: boolean }> {
    let entriesChanged = false;
    if (res.entries) {
      const next = new Map(res.entries.map((e) => [e.id, e]));
      for (const [id, old] of this.#entries) {
        const now = next.get(id);
        if (!now) {
          this.#dropEntry(id, old, 'entry deleted');
          entriesChanged = true;
        } else if (now.revisionNumber !== old.revisionNumber) {
          entriesChanged = true;
          if (now.spiffeId !== old.spiffeId) this.#dropEntry(id, old, 'entry SPIFFE ID changed');
          // JWT-SVIDs are cheap to mint again, and the update may have changed their claims or TTL
          else this.#jwts.dropEntry(id);
        }
      }
      for (const id of next.keys()) if (!this.#entries.has(id)) entriesChanged = true;
      this.#entries = next;
    }
    const revisionChanged = typeof res.revision === 'string' && res.revision !== this.#revision;
    if (typeof res.revision === 'string') this.#revision = res.revision;
    const bundleChanged = res.bundle ? await this.setBundle(res.bundle) : false;
    if (res.taintedAuthorities) await this.#applyTaint(res.taintedAuthorities);
    const revocationsChanged = res.revocations !== undefined && this.#applyRevocations(res.revocations);
    let federatedChanged = false;
    if (res.federatedBundles) {
      const next = new Map<string, TrustDomainBundle>();
      const nextJson = new Map<string, SpiffeBundleJson>();
      for (const [td, json] of Object.entries(res.federatedBundles)) {
        try {
          next.set(td, await bundleFromJson(td, json));
          nextJson.set(td, json);
        } catch (e) {
          const old = this.#federated.get(td);
          const oldJson = this.#federatedJson.get(td);
          if (old) next.set(td, old);
          if (oldJson) nextJson.set(td, oldJson);
          this.#opts.log.error({ trust_domain: td }, `ignored a malformed federated bundle: ${(e as Error).message}`);
        }
      }
      federatedChanged = JSON.stringify([...next.entries()]) !== JSON.stringify([...this.#federated.entries()]);
      this.#federated = next;
      this.#federatedJson = nextJson;
    }
    if (entriesChanged || revisionChanged || federatedChanged || revocationsChanged) this.#stateChanged();
    return { entries: entriesChanged, bundle: bundleChanged || federatedChanged, revocations: revocationsChanged };
  }

  /** entries that need an X509-SVID now: none held, entry updated, or rotation due */
  entriesToSign(now: number): Entry[] {
    const due: Entry[] = [];
    for (const entry of this.#entries.values()) {
      if (!this.#isLive(entry, now) || this.#isNodeEntry(entry)) continue;
      const held = this.#svids.get(entry.id);
      if (!held || held.renewNow || held.entryRevision !== entry.revisionNumber || shouldRotate(held.notBefore, held.notAfter, now, held.jitter)) due.push(entry);
    }
    return due;
  }

  /**
   * Renew the SVIDs matching `predicate` now: each is re-signed at the next signing pass (the same sync
   * round when called from applySync) and kept serving until its replacement arrives. Returns how many.
   */
  renewMatching(predicate: (svid: WorkloadX509Svid) => boolean): number {
    let marked = 0;
    for (const held of this.#svids.values()) {
      if (!held.renewNow && predicate(held.svid)) {
        held.renewNow = true;
        marked++;
      }
    }
    return marked;
  }

  /** true when a tainted X.509 authority of the own bundle signed `chain` (the agent's own SVID too) */
  signedByTaintedAuthority(chain: readonly Uint8Array[]): boolean {
    return this.#signedByTainted(chain);
  }

  /**
   * Sets the tainted X.509 authorities. Their check (shared/ca/authority-id.ts) reads a chain's authority key
   * IDs with @peculiar/x509 (node:crypto does not show them), so it is loaded only while one is tainted: an
   * agent without a taint never loads @peculiar/x509 (docs/performance.md, start-up).
   */
  async #setTaintedX509(ids: readonly string[]): Promise<void> {
    const tainted = new Set(ids.map((id) => id.toLowerCase()));
    const signedByAny = tainted.size === 0 ? undefined : (await import('../../shared/ca/authority-id.js')).chainSignedByAny;
    this.#taintedX509 = tainted;
    this.#signedByTainted = signedByAny ? (chain) => signedByAny(chain, tainted) : () => false;
  }

  /** stores freshly issued SVIDs of entries still present; returns how many were stored */
  putSvids(issued: readonly IssuedSvid[]): number {
    let stored = 0;
    for (const s of issued) {
      const entry = this.#entries.get(s.entryId);
      if (!entry) continue;
      if (this.#revocations.index.isRevoked({ serialNumber: s.serialNumber, spiffeId: s.wire.spiffeId, notBeforeMs: s.notBefore })) {
        // a SPIFFE ID cutoff covers SVIDs issued in its own second too: this one is signed again next round
        this.#opts.log.warn({ [LOG_FIELDS.ENTRY_ID]: entry.id, [LOG_FIELDS.SPIFFE_ID]: s.wire.spiffeId }, 'fresh X509-SVID is already revoked; not served, signed again at the next sync');
        continue;
      }
      this.#svids.set(entry.id, {
        svid: {
          entryId: entry.id,
          spiffeId: s.wire.spiffeId,
          certChain: s.certChain,
          privateKey: s.privateKey,
          expiresAt: Math.floor(s.notAfter / 1000),
          hint: entry.hint,
          federatesWith: [...entry.federatesWith],
        },
        serialNumber: s.serialNumber,
        notBefore: s.notBefore,
        notAfter: s.notAfter,
        jitter: this.#random(),
        entryRevision: entry.revisionNumber,
      });
      stored++;
    }
    if (stored > 0) this.#stateChanged();
    return stored;
  }

  /** drops SVIDs past notAfter and entries past expiresAt; true if any was dropped */
  dropExpired(now: number): boolean {
    let dropped = false;
    for (const [id, held] of this.#svids) {
      if (now >= held.notAfter) {
        this.#svids.delete(id);
        this.#opts.log.warn({ [LOG_FIELDS.ENTRY_ID]: id, [LOG_FIELDS.SPIFFE_ID]: held.svid.spiffeId }, 'X509-SVID expired before it could be renewed; no longer served');
        dropped = true;
      }
    }
    this.#jwts.dropExpired(now);
    this.#wits?.dropExpired(now);
    if (dropped) this.#stateChanged();
    return dropped;
  }

  /** what to persist: everything but the JWT-SVIDs (short-lived, minted on demand) */
  snapshot(): CacheSnapshot {
    return {
      ...(this.#revision !== undefined ? { revision: this.#revision } : {}),
      ...(this.#bundleJson ? { bundle: this.#bundleJson } : {}),
      federatedBundles: Object.fromEntries(this.#federatedJson),
      revocations: this.#revocations.wire,
      taintedX509: [...this.#taintedX509],
      entries: [...this.#entries.values()],
      svids: [...this.#svids.values()].map((h) => ({
        entryId: h.svid.entryId,
        spiffeId: h.svid.spiffeId,
        entryRevision: h.entryRevision,
        serialNumber: h.serialNumber,
        certChain: h.svid.certChain,
        privateKey: h.svid.privateKey,
        notBefore: h.notBefore,
        notAfter: h.notAfter,
      })),
    };
  }

  /**
   * Loads a persisted snapshot before the first sync (the cache must be empty but for a bundle): entries,
   * revision, federated bundles, and the SVIDs not yet expired. The snapshot's bundle is taken unless the
   * one already set has a later sequence. SVIDs whose entry is missing or now names another SPIFFE ID are
   * dropped too, and so are those the persisted revocations revoke or a persisted tainted authority signed
   * (the sync that brought them is not repeated; they are signed anew at the first sync). The caller
   * decides readiness.
   */
  async restore(snap: CacheSnapshot): Promise<{ served: number; expired: number; revoked?: number }> {
    if (this.#entries.size > 0 || this.#svids.size > 0) throw new TypeError('restore() into a cache that already holds entries');
    const now = this.#opts.clock();
    if (snap.bundle) {
      const mine = bundleSequenceOf(this.#bundleJson);
      const theirs = bundleSequenceOf(snap.bundle);
      if (!this.#bundleJson || (theirs !== undefined && (mine === undefined || theirs > mine))) await this.setBundle(snap.bundle);
    }
    for (const [td, json] of Object.entries(snap.federatedBundles)) {
      try {
        this.#federated.set(td, await bundleFromJson(td, json));
        this.#federatedJson.set(td, json);
      } catch (e) {
        this.#opts.log.warn({ trust_domain: td }, `ignored a malformed federated bundle in the SVID cache file: ${(e as Error).message}`);
      }
    }
    this.#entries = new Map(snap.entries.map((e) => [e.id, e]));
    if (snap.revision !== undefined) this.#revision = snap.revision;
    if (snap.taintedX509) await this.#setTaintedX509(snap.taintedX509);
    if (snap.revocations) this.#applyRevocations(snap.revocations);
    let served = 0;
    let expired = 0;
    let revoked = 0;
    for (const s of snap.svids) {
      const entry = this.#entries.get(s.entryId);
      if (!entry || entry.spiffeId !== s.spiffeId || now >= s.notAfter) {
        expired++;
        continue;
      }
      if (this.#revocations.index.isRevoked({ serialNumber: s.serialNumber, spiffeId: s.spiffeId, notBeforeMs: s.notBefore }) || this.#signedByTainted(s.certChain)) {
        revoked++;
        continue;
      }
      this.#svids.set(entry.id, {
        svid: { entryId: entry.id, spiffeId: s.spiffeId, certChain: s.certChain, privateKey: s.privateKey, expiresAt: Math.floor(s.notAfter / 1000), hint: entry.hint, federatesWith: [...entry.federatesWith] },
        serialNumber: s.serialNumber,
        notBefore: s.notBefore,
        notAfter: s.notAfter,
        jitter: this.#random(),
        entryRevision: s.entryRevision,
      });
      served++;
    }
    if (revoked > 0) this.#opts.log.warn({ [LOG_FIELDS.COUNT]: revoked }, 'cached X509-SVIDs revoked or signed by a tainted authority; not served, signed anew at the first sync');
    if (expired + revoked > 0) this.#stateChanged();
    return { served, expired, ...(revoked > 0 ? { revoked } : {}) };
  }

  /** calls `listener` (synchronously) after any change worth persisting; returns unsubscribe */
  onStateChange(listener: () => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** what the cache holds, for telemetry (read at scrape time) */
  sizes(): { entries: number; x509Svids: number; jwtSvids: number } {
    return { entries: this.#entries.size, x509Svids: this.#svids.size, jwtSvids: this.#jwts.size };
  }

  markReady(): void {
    this.#ready = true;
  }

  /** calls every subscriber; a throwing subscriber does not stop the others */
  notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (e) {
        this.#opts.log.error({ err: e }, 'cache subscriber failed');
      }
    }
  }

  // ---- internals ----

  #stateChanged(): void {
    for (const listener of [...this.#stateListeners]) {
      try {
        listener();
      } catch (e) {
        this.#opts.log.error({ err: e }, 'cache state listener failed');
      }
    }
  }

  #isLive(entry: Entry, now: number): boolean {
    return entry.expiresAt === 0 || now < entry.expiresAt * 1000;
  }

  /** node (alias) entries describe agents, not workloads: no X509-SVID is minted for them here */
  #isNodeEntry(entry: Entry): boolean {
    return entry.parentId === serverId(this.#opts.trustDomain);
  }

  /**
   * The live workload entries whose selectors are a subset of the caller's, oldest first. Memoized per
   * selector set for the current entry map (replaced, never mutated, on sync): a Workload API call costs a
   * map lookup instead of a selector match over every entry. An entry that has expired since is dropped
   * from a memoized answer by recomputing it; expiry never adds entries.
   */
  #workloadEntries(selectors: Selector[]): Entry[] {
    const now = this.#opts.clock();
    if (this.#matchMemo.entries !== this.#entries || this.#matchMemo.bySelectors.size >= WORKLOAD_MATCH_MEMO_MAX) {
      this.#matchMemo = { entries: this.#entries, bySelectors: new Map() };
    }
    const key = selectors.map((s) => `${s.type}:${s.value}`).join('\n');
    const memo = this.#matchMemo.bySelectors.get(key);
    if (memo && memo.every((e) => this.#isLive(e, now))) return memo;
    const found = [...this.#entries.values()]
      .filter((e) => this.#isLive(e, now) && !this.#isNodeEntry(e) && selectorsMatch(e.selectors, selectors, 'subset'))
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#matchMemo.bySelectors.set(key, found);
    return found;
  }

  /** SPIRE's taint: what a tainted authority signed is replaced at once, JWT-SVIDs minted again on demand */
  async #applyTaint(tainted: NonNullable<SyncResponse['taintedAuthorities']>): Promise<void> {
    await this.#setTaintedX509(Array.isArray(tainted.x509) ? tainted.x509.filter((id) => typeof id === 'string') : []);
    const marked = this.renewMatching((svid) => this.#signedByTainted(svid.certChain));
    const dropped = this.#jwts.dropSignedBy(new Set(Array.isArray(tainted.jwt) ? tainted.jwt : []));
    if (marked + dropped > 0) this.#opts.log.warn({ [LOG_FIELDS.COUNT]: marked + dropped }, 'SVIDs signed by a tainted authority: replacing them now');
  }

  /**
   * Takes a sync's (or the cache file's) revocations and drops at once every held X509-SVID they revoke:
   * none is served from here on, and the next signing pass (this round) replaces it. A malformed set is
   * logged and ignored (the last good one stays). True if the set was taken.
   */
  #applyRevocations(wire: unknown): boolean {
    let next: HeldRevocations;
    try {
      next = readRevocations(wire);
    } catch (e) {
      this.#opts.log.error(`ignored malformed revocations: ${(e as Error).message}`);
      return false;
    }
    this.#revocations = next;
    let dropped = 0;
    for (const [id, held] of this.#svids) {
      if (!next.index.isRevoked({ serialNumber: held.serialNumber, spiffeId: held.svid.spiffeId, notBeforeMs: held.notBefore })) continue;
      this.#svids.delete(id);
      dropped++;
      this.#opts.log.warn({ [LOG_FIELDS.ENTRY_ID]: id, [LOG_FIELDS.SPIFFE_ID]: held.svid.spiffeId }, 'X509-SVID revoked; no longer served, replacing it now');
    }
    this.#opts.log.info({ [LOG_FIELDS.COUNT]: next.wire.serials.length + next.wire.spiffeIds.length, crls: next.crls.length, dropped }, 'revocations updated');
    return true;
  }

  #dropEntry(id: string, entry: Entry, why: string): void {
    if (this.#svids.delete(id)) this.#opts.log.info({ [LOG_FIELDS.ENTRY_ID]: id, [LOG_FIELDS.SPIFFE_ID]: entry.spiffeId }, `X509-SVID dropped: ${why}`);
    this.#jwts.dropEntry(id);
    this.#wits?.dropEntry(id);
  }
}
