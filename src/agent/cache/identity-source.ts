/**
 * What the Workload API serves from: the agent's cache seen through a narrow interface (STYLE G16). The
 * cache implements it; the Workload API handler depends only on it; tests can supply their own.
 * @module
 */
import type { JWK } from 'jose';
import type { Selector } from '../../shared/registry/selectors.js';
import type { MintedWitSvid } from './wit-svid-cache.js';

/** An X509-SVID the agent holds for one registration entry. */
export interface WorkloadX509Svid {
  entryId: string;
  spiffeId: string;
  /** leaf first, then intermediates; DER each */
  certChain: Uint8Array[];
  /** PKCS#8 DER; generated on this node, never sent anywhere but to the workload */
  privateKey: Uint8Array;
  /** seconds since the epoch */
  expiresAt: number;
  hint: string;
  /** trust domain names whose bundles this workload also receives */
  federatesWith: string[];
}

/** The trust bundle of one trust domain. */
export interface TrustDomainBundle {
  trustDomain: string;
  /** X.509 authorities, DER each */
  x509Authorities: Uint8Array[];
  /** JWT authorities, public JWKs with kid */
  jwtAuthorities: JWK[];
  /** WIT authorities (`wit-svid` keys), public JWKs with kid; absent: the trust domain issues no WIT-SVIDs */
  witAuthorities?: JWK[];
}

export interface BundleSet {
  /** the agent's own trust domain */
  own: TrustDomainBundle;
  /** federated trust domains, by trust domain name */
  federated: Map<string, TrustDomainBundle>;
}

export interface MintedJwtSvid {
  spiffeId: string;
  token: string;
  /** seconds since the epoch */
  expiresAt: number;
  hint: string;
}

export interface IdentitySource {
  /** false until the agent has its identity and either completed its first sync or loaded its cached SVIDs (else Workload API answers Unavailable) */
  isReady(): boolean;
  /** X509-SVIDs of entries whose selectors are all among `selectors` (SPIRE: entry selectors ⊆ workload's) */
  x509SvidsFor(selectors: Selector[]): WorkloadX509Svid[];
  /** SPIFFE IDs (with entry ids) the workload with `selectors` may hold, whether or not an X509-SVID is cached */
  identitiesFor(selectors: Selector[]): Array<{ entryId: string; spiffeId: string; hint: string; federatesWith: string[] }>;
  bundles(): BundleSet;
  /** the own trust domain's CRLs, DER (X509SVIDResponse.crl); the same array until they change: do not modify */
  crls(): Uint8Array[];
  /** calls `listener` after any change (SVID renewed, entry added/removed, bundle changed); returns unsubscribe */
  subscribe(listener: () => void): () => void;
  /** mints (or returns a cached, still fresh) JWT-SVID for an entry the caller holds */
  fetchJwtSvid(entryId: string, audience: string[]): Promise<MintedJwtSvid>;
  /** WIT-SVIDs (with their private keys) of entries the caller holds, fresh ones from the cache; absent: profile off */
  fetchWitSvids?(entryIds: string[]): Promise<MintedWitSvid[]>;
  /** when the earliest of these entries' held WIT-SVIDs should be renewed (ms), if one is held */
  witRefreshAt?(entryIds: string[]): number | undefined;
}
