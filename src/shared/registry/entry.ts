/**
 * Registration entries: what a workload (or node alias) matching `selectors` under `parentId` is issued.
 * Field names follow SPIRE's (spiffeId, parentId, x509SvidTtl, jwtSvidTtl, federatesWith, ...) so SPIRE
 * users feel at home. TTLs are seconds; 0 means "the issuer's default".
 * @module
 */
import type { SpiffeId, TrustDomain } from '../spiffe/id.js';
import type { JwtSvidExtraClaims } from './jwt-svid-claims.js';
import type { Selector } from './selectors.js';

export interface Entry {
  id: string;
  spiffeId: SpiffeId;
  parentId: SpiffeId;
  selectors: Selector[];
  /** seconds; 0 = issuer default */
  x509SvidTtl: number;
  /** seconds; 0 = issuer default */
  jwtSvidTtl: number;
  dnsNames: string[];
  /** trust domain names whose bundles this entry's workloads receive */
  federatesWith: TrustDomain[];
  admin: boolean;
  downstream: boolean;
  hint: string;
  /** extra claims of this entry's JWT-SVIDs (jwt-svid-claims.ts); absent = none */
  jwtSvidClaims?: JwtSvidExtraClaims;
  /** seconds since the epoch; 0 = never */
  expiresAt: number;
  /** bumped on every update of this entry */
  revisionNumber: number;
  /** seconds since the epoch */
  createdAt: number;
}

/** What a caller supplies to create an entry (id optional: SPIRE lets operators choose it). */
export type NewEntry = Omit<Entry, 'id' | 'revisionNumber' | 'createdAt'> & { id?: string };

/** SPIRE's per-item status for batch operations. */
export interface BatchItemStatus {
  code: 'OK' | import('../errors.js').WispErrorCode;
  message: string;
}

export interface BatchResult<T> {
  status: BatchItemStatus;
  value?: T;
}
