/**
 * Builds the app's dependencies from their parts, with no runtime in it: index.ts passes the Worker's
 * bindings (one app per isolate), tests and Node code pass theirs (a real D1 from Miniflare, the CA core on
 * memory storage). Nothing else makes stores, attestors or caches.
 * @module
 */
import { systemClock, type Clock } from '../shared/clock.js';
import { createNodeAttestors } from './attestation/node-attestor.js';
import type { NodeAttestor } from './attestation/types.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import type { WorkerConfig } from './config.js';
import { createAgentRequestStore } from './db/agent-requests.js';
import { createAgentStore } from './db/agents.js';
import { createAuditStore } from './db/audit-log.js';
import { createEntryStore } from './db/entries.js';
import { createFederationStore } from './db/federation.js';
import { createJoinTokenStore } from './db/join-tokens.js';
import { createRevocationStore } from './db/revocations.js';
import { createX509popNonceStore } from './db/x509pop-nonces.js';
import type { AppDeps, AppStores } from './deps.js';
import { createPublishedAuthoritiesCache } from './middleware/agent-auth.js';
import { countRegistry } from './db/counts.js';
import { createTelemetryRecorder } from './telemetry.js';
import { createExchangeJtiStore } from './db/exchange-jtis.js';
import { createIssuerKeys } from './exchange/issuer-keys.js';
import { NO_NOTIFIER, type AgentNotifierApi } from './notifier/notifier-api.js';

export interface AppParts {
  config: WorkerConfig;
  ca: () => TrustDomainCaApi;
  db: D1Database;
  /** default: the system clock */
  clock?: Clock;
  /** default: the global fetch */
  fetch?: typeof fetch;
  /** default: join_token plus the cloud attestors the config enables */
  nodeAttestors?: Record<string, NodeAttestor>;
  /** default: none (agents poll; their channel upgrade is refused with 503) */
  notifier?: AgentNotifierApi;
}

export function createD1Stores(db: D1Database): AppStores {
  return {
    entries: createEntryStore(db),
    agents: createAgentStore(db),
    joinTokens: createJoinTokenStore(db),
    requests: createAgentRequestStore(db),
    federation: createFederationStore(db),
    audit: createAuditStore(db),
    revocations: createRevocationStore(db),
    ping: async () => {
      await db.prepare('SELECT 1').first();
    },
    counts: (nowSeconds) => countRegistry(db, nowSeconds),
    exchangeJtis: createExchangeJtiStore(db),
  };
}

export function createAppDeps(parts: AppParts): AppDeps {
  const stores = createD1Stores(parts.db);
  return {
    config: parts.config,
    clock: parts.clock ?? systemClock,
    ca: parts.ca,
    stores,
    // late-bound: the global fetch as it is when called
    fetch: parts.fetch ?? ((input, init) => fetch(input, init)),
    nodeAttestors: parts.nodeAttestors ?? createNodeAttestors({ joinTokens: stores.joinTokens, cloud: parts.config.nodeAttestors, fetch: parts.fetch, x509popNonces: createX509popNonceStore(parts.db) }),
    caches: { agentAuthorities: createPublishedAuthoritiesCache(), exchangeIssuerKeys: createIssuerKeys(parts.config.tokenExchange, parts.fetch ?? ((input, init) => fetch(input, init))) },
    telemetry: createTelemetryRecorder(parts.ca),
    notifier: parts.notifier ?? NO_NOTIFIER,
  };
}
