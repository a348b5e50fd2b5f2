/**
 * The storage port of federation (STYLE G10): relationships and foreign bundles. Every write changes
 * `revision()`, which the issuer folds into the agents' sync revision, so an unchanged federation costs one
 * single-row read per sync.
 * @module
 */
import type { TrustDomain } from '../spiffe/id.js';
import type { ForeignBundle } from './foreign-bundle.js';
import type { FederationRelationship, RelationshipInput } from './relationship.js';

export type NewRelationship = Omit<RelationshipInput, 'trustDomainBundle'>;

export interface RefreshRecord {
  /** set on success: the time of this refresh */
  lastRefreshAt?: number;
  /** '' on success */
  lastRefreshError: string;
  nextRefreshAt: number;
}

export interface FederationStore {
  listRelationships(): Promise<FederationRelationship[]>;
  getRelationship(trustDomain: TrustDomain): Promise<FederationRelationship | undefined>;
  /** Creates a relationship, and its bootstrap bundle when given, atomically. ERR_FEDERATION_EXISTS if it exists. */
  createRelationship(rel: NewRelationship, bundle: ForeignBundle | undefined, now: number): Promise<FederationRelationship>;
  /** Replaces the endpoint settings (and stores `bundle` when given). ERR_FEDERATION_NOT_FOUND if absent. */
  updateRelationship(rel: NewRelationship, bundle: ForeignBundle | undefined, now: number): Promise<FederationRelationship>;
  /** Deletes the relationship and the foreign bundle of its trust domain; false if there was none. */
  deleteRelationship(trustDomain: TrustDomain): Promise<boolean>;
  /** Records the outcome of a refresh attempt (no revision bump: agents do not see it). */
  recordRefresh(trustDomain: TrustDomain, record: RefreshRecord): Promise<void>;
  /** The https_spiffe relationships `agentId` refreshes, with their stored bundles. */
  refreshTasksFor(agentId: string): Promise<Array<{ relationship: FederationRelationship; bundle?: ForeignBundle }>>;
  /** https_web relationships due for a refresh at `now`, oldest first. */
  dueForRefresh(now: number, limit: number): Promise<FederationRelationship[]>;

  listBundles(): Promise<ForeignBundle[]>;
  getBundle(trustDomain: TrustDomain): Promise<ForeignBundle | undefined>;
  /** The stored bundles of these trust domains (missing ones are skipped). */
  bundlesOf(trustDomains: readonly string[]): Promise<ForeignBundle[]>;
  /**
   * Stores a bundle unless the stored one has a higher spiffe_sequence (checked in the same statement);
   * returns false when refused for that reason.
   */
  putBundle(bundle: ForeignBundle): Promise<boolean>;
  deleteBundle(trustDomain: TrustDomain): Promise<boolean>;

  /** Changes on every relationship or bundle write. */
  revision(): Promise<string>;
}
