/**
 * What the routes depend on, built once per request from the bindings. Tests build their own.
 * @module
 */
import type { Clock } from '../shared/clock.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import type { WorkerConfig } from './config.js';

export interface AppDeps {
  config: WorkerConfig;
  /** The trust domain's CA Durable Object (one per trust domain: idFromName(trustDomain)). */
  ca: () => TrustDomainCaApi;
  db: D1Database;
  clock: Clock;
  /** outbound fetch (federated bundle endpoints); default: the global fetch */
  fetch?: typeof fetch;
}
