/**
 * Wire types of the agent API (issuer ⇄ wisp-agent), JSON over HTTPS. Binary values are base64 (standard
 * alphabet) DER. Times are seconds since the epoch. Every call but `attest` carries an agent proof
 * (see agent-proof.ts). Documented in README "Agent API".
 * @module
 */
import type { Entry } from './registry/entry.js';
import type { RevocationSet } from './registry/revocation.js';

export const AGENT_API_PREFIX = '/agent/v1';

export interface X509SvidWire {
  spiffeId: string;
  /** leaf first, then intermediates; base64 DER */
  certChain: string[];
  expiresAt: number;
}

/** A SPIFFE bundle document (SPIFFE_Trust_Domain_and_Bundle.md §4), as served on GET /bundle. */
export interface SpiffeBundleJson {
  keys: Array<Record<string, unknown>>;
  spiffe_sequence?: number;
  spiffe_refresh_hint?: number;
}

/** POST /agent/v1/attest: unauthenticated; the attestation payload is the credential. */
export interface AttestRequest {
  /** node attestor, e.g. `join_token` (cloud attestors later: aws_iid, gcp_iit, azure_msi) */
  attestationType: string;
  /** attestor-specific, e.g. `{ token }` for join_token */
  payload: Record<string, unknown>;
  /** base64 DER PKCS#10 CSR for the agent's own key */
  csr: string;
}

/** `POST /agent/v1/attest/challenge`: for attestors that prove possession of a key (x509pop). */
export interface AttestChallengeRequest {
  attestationType: string;
}

/** x509pop: a single-use nonce (base64url, 32 bytes) valid until `expiresAt` (seconds). */
export interface AttestChallengeResponse {
  nonce: string;
  expiresAt: number;
}

export interface AttestResponse {
  svid: X509SvidWire;
  bundle: SpiffeBundleJson;
}

/** POST /agent/v1/renew */
export interface RenewRequest {
  csr: string;
}
export interface RenewResponse {
  svid: X509SvidWire;
}

/** POST /agent/v1/sync: the agent's authorized entries, and the bundle, only when they changed. */
export interface SyncRequest {
  /** the `revision` of the last sync, if any */
  revision?: string;
  /** the `spiffe_sequence` of the bundle the agent holds, if any */
  bundleSequence?: number;
}
export interface SyncResponse {
  /** opaque to the agent (the issuer folds "<registry>.<federation>.<revocations>" revisions into it) */
  revision: string;
  /** present only when the registry part of the revision differs from the request's */
  entries?: Entry[];
  /** present only when the bundle sequence differs from the request's */
  bundle?: SpiffeBundleJson;
  /**
   * Sent with `bundle` (SPIRE marks them tainted in the bundle it sends agents): the authorities of the
   * bundle an operator tainted, X.509 by authority ID (subject key ID, lowercase hex), JWT by kid. The
   * agent replaces at once every X509-SVID (its own too) whose chain one of them signed, and drops cached
   * JWT-SVIDs signed with a tainted kid.
   */
  taintedAuthorities?: { x509: string[]; jwt: string[] };
  /**
   * The federated bundles of the trust domains the agent's entries federate with, keyed by trust domain name
   * (`partner.example`). Absent: unchanged, keep what you have. Present: the complete new set; a trust domain
   * missing from it is no longer trusted (relationship or bundle deleted). Sent when either part of the
   * revision differs from the request's.
   */
  federatedBundles?: Record<string, SpiffeBundleJson>;
  /**
   * The revocations that concern the agent (its own ID and its entries' SPIFFE IDs, and serials of unknown
   * SPIFFE ID) and the trust domain's CRLs. Absent: unchanged. Present: the complete set; the agent drops
   * every SVID it holds that the set revokes and fetches a new one.
   */
  revocations?: SyncRevocations;
}

export interface SyncRevocations extends RevocationSet {
  /** DER X.509 CRLs, base64, one per CA key that may have signed unexpired SVIDs (X509SVIDResponse.crl) */
  crls: string[];
}

/** POST /agent/v1/x509-svids: batch-sign workload CSRs; every entry must be authorized for the agent. */
export interface X509SvidsRequest {
  requests: Array<{ entryId: string; csr: string }>;
}
export interface X509SvidsResponse {
  svids: Array<{ entryId: string; svid: X509SvidWire }>;
}

/** POST /agent/v1/jwt-svids: mint JWT-SVIDs for authorized entries. */
export interface JwtSvidsRequest {
  requests: Array<{ entryId: string; audience: string[] }>;
}
export interface JwtSvidsResponse {
  svids: Array<{ entryId: string; spiffeId: string; token: string; expiresAt: number }>;
}

/**
 * POST /agent/v1/wit-svids: sign WIT-SVIDs (WIT-SVID.md) for authorized entries, each bound to the public JWK
 * the agent generated for it (`cnf.jwk`, with its `alg`). 501 ERR_UNIMPLEMENTED when the issuer has the profile off.
 */
export interface WitSvidsRequest {
  requests: Array<{ entryId: string; publicKey: Record<string, unknown> }>;
}
export interface WitSvidsResponse {
  svids: Array<{ entryId: string; spiffeId: string; token: string; expiresAt: number }>;
}

/** GET /agent/v1/bundle */
export interface BundleResponse {
  bundle: SpiffeBundleJson;
  /** the complete set for the agent's entries' federatesWith, keyed by trust domain name */
  federatedBundles?: Record<string, SpiffeBundleJson>;
}

/**
 * GET /agent/v1/federation/refresh-tasks: the https_spiffe relationships this agent is assigned to refresh
 * (relationship `refreshAgentId`), with the stored bundle that authenticates each endpoint.
 */
export interface FederationRefreshTask {
  trustDomain: string;
  bundleEndpointUrl: string;
  endpointSpiffeId: string;
  /** the stored bundle of `trustDomain`: its X.509 authorities are the only TLS roots for the endpoint */
  bundle?: SpiffeBundleJson;
}
export interface FederationRefreshTasksResponse {
  tasks: FederationRefreshTask[];
}

/** POST /agent/v1/federation/bundles: the outcome of one refresh; exactly one of `bundle` and `error`. */
export interface SubmitFederatedBundleRequest {
  trustDomain: string;
  bundle?: SpiffeBundleJson;
  error?: string;
}
export interface SubmitFederatedBundleResponse {
  status: 'updated' | 'unchanged' | 'failed';
}

/** Limits the issuer enforces on agent requests. */
export const AGENT_API_LIMITS = {
  MAX_CSR_BYTES: 8 * 1024,
  MAX_BATCH_CSRS: 500,
  MAX_BATCH_JWTS: 500,
  MAX_BATCH_WITS: 500,
  MAX_AUDIENCES: 16,
  MAX_AUDIENCE_BYTES: 512,
  MAX_BODY_BYTES: 4 * 1024 * 1024,
} as const;
