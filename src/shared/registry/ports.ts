/**
 * Storage ports of the registry (STYLE G10): the Worker implements them over D1 (src/worker/db), tests may
 * implement them in memory with the same limits (uniqueness, single use). Times are seconds since the epoch.
 * @module
 */
import type { SpiffeId, TrustDomain } from '../spiffe/id.js';
import type { BatchResult, Entry, NewEntry } from './entry.js';
import type { Selector, SelectorMatch } from './selectors.js';

export interface EntryFilter {
  spiffeId?: SpiffeId;
  parentId?: SpiffeId;
  selectors?: { selectors: Selector[]; match: SelectorMatch };
  /** SPIRE's ByFederatesWith: the match modes of selectors, over the entry's federated trust domains */
  federatesWith?: { trustDomains: TrustDomain[]; match: SelectorMatch };
  hint?: string;
  downstream?: boolean;
}

export interface EntryPage {
  entries: Entry[];
  /** opaque; absent on the last page */
  nextPageToken?: string;
}

export interface EntryStore {
  createBatch(entries: NewEntry[], now: number): Promise<BatchResult<Entry>[]>;
  /** Replaces the given entries (matched by id) wholesale; revisionNumber is bumped. */
  updateBatch(entries: Entry[], now: number): Promise<BatchResult<Entry>[]>;
  deleteBatch(ids: string[]): Promise<BatchResult<{ id: string }>[]>;
  getById(id: string): Promise<Entry | undefined>;
  list(filter: EntryFilter, page: { pageSize: number; pageToken?: string }): Promise<EntryPage>;
  count(filter: EntryFilter): Promise<number>;
  /**
   * SPIRE's authorized-entries algorithm for one agent: entries parented by the agent ID, entries parented by
   * node-alias entries (parent = the server ID) whose selectors are a subset of the agent's node selectors,
   * then descendants of all of those, recursively. Expired entries excluded.
   */
  listAuthorized(agentId: SpiffeId, nodeSelectors: Selector[], now: number): Promise<Entry[]>;
  /** Changes on every entry write: an unchanged value means an unchanged registry (cheap sync). */
  revision(): Promise<string>;
}

export interface AttestedAgent {
  spiffeId: SpiffeId;
  attestationType: string;
  /** serial of the agent's current X509-SVID (hex) */
  serialNumber: string;
  /** serial of the SVID it had before its last renewal, accepted until the new one is first used */
  previousSerialNumber?: string;
  /** expiry of the current agent SVID, seconds */
  expiresAt: number;
  banned: boolean;
  nodeSelectors: Selector[];
  createdAt: number;
  updatedAt: number;
}

/** What claiming an agent ID for one attestation found (AgentStore.claimAttestation). */
export type AttestationClaim =
  /** the ID is this attestation's until it completes or releases it; `token` names the claim */
  | { claimed: true; token: string }
  /** banned; or attested and the attestor forbids re-attestation, or another attestation of it is in flight */
  | { claimed: false; reason: 'banned' | 'attested' };

/** What the attestation records once its SVID is signed. */
export type AttestationRecord = Omit<AttestedAgent, 'banned' | 'createdAt' | 'updatedAt' | 'previousSerialNumber'>;

/** SPIRE's ListAgents filter (by selector with a match mode, attestation type, banned, expires before). */
export interface AgentFilter {
  selectors?: { selectors: Selector[]; match: SelectorMatch };
  attestationType?: string;
  banned?: boolean;
  /** the agent SVID expires before this (seconds) */
  expiresBefore?: number;
}

export interface AgentStore {
  get(spiffeId: SpiffeId): Promise<AttestedAgent | undefined>;
  /**
   * Claims an agent ID for one attestation, in one atomic step before anything is signed: of concurrent
   * claims at most one succeeds. Refused when the agent is banned, when it is attested (has a serial) and
   * `allowReattestation` is false, or while another claim is in flight (claims older than a minute count
   * as abandoned). The agent's current SVID keeps working until the claim completes.
   */
  claimAttestation(claim: { spiffeId: SpiffeId; attestationType: string; allowReattestation: boolean }, now: number): Promise<AttestationClaim>;
  /** Records the signed SVID of a claim; undefined when the claim was lost meanwhile (evicted, banned, abandoned). */
  completeAttestation(token: string, agent: AttestationRecord, now: number): Promise<AttestedAgent | undefined>;
  /** Gives a claim up (signing failed): the agent is as it was before the claim. */
  releaseAttestation(spiffeId: SpiffeId, token: string): Promise<void>;
  /** Writes an attestation without a claim (tests and seeding; the attest route claims first). */
  upsertAttested(agent: AttestationRecord, now: number): Promise<AttestedAgent>;
  /** Renewal: previous := current, current := serial. */
  renew(spiffeId: SpiffeId, serialNumber: string, expiresAt: number, now: number): Promise<void>;
  /** The new serial was used: forget the previous one. */
  forgetPreviousSerial(spiffeId: SpiffeId): Promise<void>;
  list(page: { pageSize: number; pageToken?: string }, filter?: AgentFilter): Promise<{ agents: AttestedAgent[]; nextPageToken?: string }>;
  count(filter?: AgentFilter): Promise<number>;
  /**
   * SPIRE's `agent purge`: agents whose SVID expired before `expiredBefore` (seconds), deleted in one step
   * (or only listed when `dryRun`). Banned agents are kept (a ban outlives purging, as it outlives eviction),
   * and so are attestations in flight.
   */
  purgeExpired(expiredBefore: number, now: number, dryRun: boolean): Promise<AttestedAgent[]>;
  ban(spiffeId: SpiffeId, now: number): Promise<boolean>;
  /** Deletes the attestation (the agent must re-attest). A banned agent stays banned. */
  evict(spiffeId: SpiffeId): Promise<boolean>;
}

export interface JoinToken {
  /** the agent ID it will produce; default spiffe://<td>/spire/agent/join_token/<token> */
  spiffeId?: SpiffeId;
  expiresAt: number;
}

export interface JoinTokenStore {
  /** Stores SHA-256(token) only. */
  create(token: string, data: JoinToken, now: number): Promise<void>;
  /** Atomically consumes an unexpired, unused token (one statement); undefined when unknown/expired/used. */
  consume(token: string, now: number): Promise<JoinToken | undefined>;
}

/** What admitting one signed agent request found, read together with its jti consumed. */
export interface AgentRequestAdmission {
  /** true the first time the jti is seen, false afterwards (replay protection) */
  fresh: boolean;
  /** the agent's registration; undefined when it is not attested (never, or evicted) */
  agent: AttestedAgent | undefined;
  /** registry and federation revisions (EntryStore.revision, FederationStore.revision) as of this request */
  registryRevision: string;
  federationRevision: string;
  /** revocation_revision (worker/db/revocations.ts) as of this request */
  revocationRevision: string;
  /** whether the request's SVID serial is revoked, and the agent ID's revocation cutoff (seconds), if any */
  svidRevocation: { serialRevoked: boolean; cutoff?: number };
}

/**
 * The storage side of authenticating an agent request: the jti is consumed (single use, also under
 * concurrency; expired ones pruned) and the agent's record and the revisions are read, in one round trip:
 * every agent call pays for it, so it is one D1 batch rather than four queries.
 */
export interface AgentRequestStore {
  admit(request: { jti: string; expiresAt: number; agentId: SpiffeId; serialNumber?: string }, now: number): Promise<AgentRequestAdmission>;
}
