// An in-memory IdentitySource for Workload API tests: entries with selectors, real SVIDs and bundles from
// identity-fixtures.ts, JWT-SVIDs signed for real. It keeps the real contract: an entry matches when its
// selectors are a subset of the workload's (SPIRE), and listeners are counted so tests can prove that
// cancelled streams unsubscribe.
import type { BundleSet, IdentitySource, MintedJwtSvid, WorkloadX509Svid } from '../../../../src/agent/cache/identity-source.js';
import { selectorsMatch, type Selector } from '../../../../src/shared/registry/selectors.js';
import { signJwtSvid, type TestTrustDomain } from './identity-fixtures.js';

export interface MemoryEntry {
  entryId: string;
  spiffeId: string;
  selectors: Selector[];
  hint: string;
  federatesWith: string[];
  /** undefined: entitled, but no X509-SVID minted yet */
  svid?: WorkloadX509Svid;
}

export class MemoryIdentitySource implements IdentitySource {
  ready = true;
  entries: MemoryEntry[] = [];
  jwtMints = 0;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly own: TestTrustDomain,
    readonly federated: TestTrustDomain[] = [],
  ) {}

  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Adds or replaces an entry and notifies subscribers. */
  put(entry: MemoryEntry): void {
    this.entries = [...this.entries.filter((e) => e.entryId !== entry.entryId), entry];
    this.notify();
  }

  remove(entryId: string): void {
    this.entries = this.entries.filter((e) => e.entryId !== entryId);
    this.notify();
  }

  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  isReady(): boolean {
    return this.ready;
  }

  private matching(selectors: Selector[]): MemoryEntry[] {
    return this.entries.filter((e) => selectorsMatch(e.selectors, selectors, 'subset'));
  }

  x509SvidsFor(selectors: Selector[]): WorkloadX509Svid[] {
    return this.matching(selectors).flatMap((e) => (e.svid ? [e.svid] : []));
  }

  identitiesFor(selectors: Selector[]) {
    return this.matching(selectors).map(({ entryId, spiffeId, hint, federatesWith }) => ({ entryId, spiffeId, hint, federatesWith }));
  }

  bundles(): BundleSet {
    return { own: this.own.bundle, federated: new Map(this.federated.map((td) => [td.name, td.bundle])) };
  }

  /** DER CRLs served in X509SVIDResponse.crl; set by the test */
  crlList: Uint8Array[] = [];
  crls(): Uint8Array[] {
    return this.crlList;
  }

  subscribe(listener: () => void): () => void {
    const wrapped = () => listener();
    this.listeners.add(wrapped);
    return () => this.listeners.delete(wrapped);
  }

  async fetchJwtSvid(entryId: string, audience: string[]): Promise<MintedJwtSvid> {
    const entry = this.entries.find((e) => e.entryId === entryId);
    if (!entry) throw new Error(`no entry ${entryId}`);
    this.jwtMints++;
    const token = await signJwtSvid(this.own, entry.spiffeId, audience);
    return { spiffeId: entry.spiffeId, token, expiresAt: Math.floor(Date.now() / 1000) + 300, hint: entry.hint };
  }
}
