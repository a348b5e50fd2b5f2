/**
 * The steady-state traffic of one agent at the default configuration, and the fleet's load from per-operation
 * costs. Rates come from the code's own defaults: the issuer's X509_SVID_TTL and JWT_SVID_TTL
 * (src/worker/config.ts CONFIG_DEFAULTS), the agent's sync interval (src/agent/config.ts), its rotation policy
 * (src/agent/rotation-policy.ts: renewal in [40 %, 50 %] of the lifetime, a JWT-SVID reminted past half) and
 * its federation task poll (12 sync intervals, at most a minute: src/agent/agent.ts).
 */
import { parseDurationSeconds } from '../../src/shared/duration.js';
import { AGENT_CONFIG_DEFAULTS } from '../../src/agent/config.js';
import { ROTATION_JITTER_FRACTION } from '../../src/agent/rotation-policy.js';
import { CONFIG_DEFAULTS } from '../../src/worker/config.js';

/** the operations an agent sends, and a push (one notification message per affected agent) */
export type Op = 'sync_unchanged' | 'sync_changed' | 'x509_batch' | 'jwt_batch' | 'renew' | 'federation_tasks' | 'push';

export interface Assumptions {
  /** X509-SVIDs an agent holds (its own entries plus its pool's) */
  svidsPerAgent: number;
  /** (entry, audience) pairs whose JWT-SVID workloads keep fetching, per agent */
  jwtPairsPerAgent: number;
  /** admin changes per second, fleet-wide (entry create/update/delete) */
  changesPerSecond: number;
  /** agents a change concerns (pushed to) */
  agentsPerChange: number;
}

/** one DO's soft limit (Cloudflare: ~1,000 requests/s per object) */
export const DO_RPS_LIMIT = 1000;
/** one thread: 1,000 ms of work per second (a DO; a D1 database, which runs one query at a time) */
export const THREAD_MS_PER_S = 1000;

export const X509_TTL_S = parseDurationSeconds(CONFIG_DEFAULTS.X509_SVID_TTL)!;
export const JWT_TTL_S = parseDurationSeconds(CONFIG_DEFAULTS.JWT_SVID_TTL)!;
export const SYNC_S = AGENT_CONFIG_DEFAULTS.syncIntervalSeconds;
export const FEDERATION_POLL_S = Math.min(60, Math.max(SYNC_S, 12 * SYNC_S));
/** mean time between two renewals of one X509-SVID: the mean of [40 %, 50 %] of its lifetime, checked at sync ticks */
export const X509_RENEW_S = X509_TTL_S * (0.5 - ROTATION_JITTER_FRACTION / 2) + SYNC_S / 2;
/** the agent's own SVID: at half-life, no jitter (node-attestation.ts renewIfDue) */
export const AGENT_RENEW_S = X509_TTL_S / 2;
/** a JWT-SVID is reminted once less than half of its lifetime remains (isJwtSvidFresh) */
export const JWT_REMINT_S = JWT_TTL_S / 2;

/** Per-agent rates of each operation, per second. */
export function agentRates(a: Assumptions, agents: number): Record<Op, number> {
  // the registry revision is global: a poll after any change anywhere lists the agent's entries again
  const changedPoll = 1 - Math.exp(-a.changesPerSecond * SYNC_S);
  const pushedPerAgent = (a.changesPerSecond * a.agentsPerChange) / agents;
  // renewals due at one tick go in one batch: P(at least one of the SVIDs is due in a tick)
  const dueInTick = 1 - (1 - SYNC_S / X509_RENEW_S) ** a.svidsPerAgent;
  return {
    sync_unchanged: (1 / SYNC_S) * (1 - changedPoll),
    sync_changed: (1 / SYNC_S) * changedPoll + pushedPerAgent,
    x509_batch: dueInTick / SYNC_S,
    jwt_batch: a.jwtPairsPerAgent / JWT_REMINT_S,
    renew: 1 / AGENT_RENEW_S,
    federation_tasks: 1 / FEDERATION_POLL_S,
    push: pushedPerAgent,
  };
}

/** What one operation costs, measured. */
export interface OpCost {
  /** CA Durable Object calls per operation */
  doCalls: number;
  /** the DO's time per operation, ms (its calls × their measured per-call time) */
  doMs: number;
  d1Statements: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** D1 time per operation, ms (its statements replayed in a loop) */
  d1Ms: number;
}

export interface FleetLoad {
  requestsPerSecond: number;
  doRequestsPerSecond: number;
  /** DO busy time per second (1000 = one object's thread full) */
  doMsPerSecond: number;
  d1StatementsPerSecond: number;
  d1RowsReadPerSecond: number;
  d1RowsWrittenPerSecond: number;
  d1MsPerSecond: number;
}

export function fleetLoad(rates: Record<Op, number>, costs: Record<Op, OpCost>, agents: number, shards = 1): FleetLoad {
  const sum = (f: (c: OpCost) => number) => (Object.keys(rates) as Op[]).reduce((t, op) => t + rates[op] * f(costs[op]), 0) * agents;
  return {
    requestsPerSecond: (Object.keys(rates) as Op[]).filter((op) => op !== 'push').reduce((t, op) => t + rates[op], 0) * agents,
    doRequestsPerSecond: sum((c) => c.doCalls) / shards,
    doMsPerSecond: sum((c) => c.doMs) / shards,
    d1StatementsPerSecond: sum((c) => c.d1Statements),
    d1RowsReadPerSecond: sum((c) => c.d1RowsRead),
    d1RowsWrittenPerSecond: sum((c) => c.d1RowsWritten),
    d1MsPerSecond: sum((c) => c.d1Ms),
  };
}

/** Fleet size at which `perAgent` (a load of one agent) reaches `limit`. */
export const saturatingFleet = (limit: number, perAgent: number): number => (perAgent > 0 ? Math.floor(limit / perAgent) : Infinity);
