/**
 * What the app depends on, built once per app by the wiring (wiring.ts; index.ts from the bindings): routes
 * receive these, they make none of them. Tests and Node code build their own with `createAppDeps`.
 * @module
 */
import type { Clock } from '../shared/clock.js';
import type { FederationStore } from '../shared/federation/federation-store.js';
import type { AgentRequestStore, AgentStore, JoinTokenStore } from '../shared/registry/ports.js';
import type { NodeAttestor } from './attestation/types.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import type { AgentNotifierApi } from './notifier/notifier-api.js';
import type { AuditStore } from './db/audit-log.js';
import type { WorkerConfig } from './config.js';
import type { D1EntryStore } from './db/entries.js';
import type { RevocationStore } from './db/revocations.js';
import type { PublishedAuthoritiesCache } from './middleware/agent-auth.js';
import type { RegistryCounts } from './db/counts.js';
import type { TelemetryRecorder } from './telemetry.js';
import type { ExchangeJtiStore } from './db/exchange-jtis.js';
import type { IssuerKeys } from './exchange/issuer-keys.js';

/** The registry, agents and federation state (D1 in production). */
export interface AppStores {
  entries: D1EntryStore;
  agents: AgentStore;
  joinTokens: JoinTokenStore;
  requests: AgentRequestStore;
  federation: FederationStore;
  /** the admin audit log (middleware/audit.ts) */
  audit: AuditStore;
  /** per-SVID revocations (shared/registry/revocation.ts) */
  revocations: RevocationStore;
  /** resolves when the database answers (healthz) */
  ping(): Promise<void>;
  /** registry sizes for the metrics scrape (db/counts.ts) */
  counts(nowSeconds: number): Promise<RegistryCounts>;
  /** exchanged subject tokens of issuers that refuse replays (db/exchange-jtis.ts) */
  exchangeJtis: ExchangeJtiStore;
}

/** State kept across requests by one app (one per isolate in production). */
export interface AppCaches {
  /** the published X.509 authorities and the agent chains verified under them (agent-auth.ts) */
  agentAuthorities: PublishedAuthoritiesCache;
  /** the signing keys of each TOKEN_EXCHANGE issuer, by alias (exchange/issuer-keys.ts) */
  exchangeIssuerKeys: Map<string, IssuerKeys>;
}

export interface AppDeps {
  config: WorkerConfig;
  clock: Clock;
  /** The trust domain's CA (production: a stub of the Durable Object idFromName(trustDomain), made per call). */
  ca: () => TrustDomainCaApi;
  stores: AppStores;
  /** outbound fetch (federated bundle endpoints, cloud attestors' signing keys) */
  fetch: typeof fetch;
  /** the node attestors the issuer accepts, by type */
  nodeAttestors: Record<string, NodeAttestor>;
  caches: AppCaches;
  /** this isolate's agent API and federation metrics, sent to the CA in batches (telemetry.ts) */
  telemetry: TelemetryRecorder;
  /** the agents' notification channel (production: the AgentNotifier Durable Object) */
  notifier: AgentNotifierApi;
}
