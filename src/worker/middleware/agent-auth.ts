/**
 * Authenticates agent-API requests signed with an agent proof (shared/agent-proof.ts): the proof must
 * verify against the trust domain's published X.509 authorities, its jti must be new (AgentRequestStore), and the
 * agent must be attested, not banned, presenting an SVID that is not revoked, and its current SVID, or the previous one until the
 * current one is first used (then the previous is forgotten: a renewed-away SVID stops working).
 *
 * The body is read once here (the proof covers its exact bytes) and kept for the handler, which parses it
 * with `signedJsonBody`. Every authentication failure gets one generic message on the wire; the reason
 * goes to the log.
 * @module
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { AGENT_PROOF_SCHEME, normalizeSerialNumber } from '../../shared/agent-proof.js';
import { createAgentChainCache, verifyAgentProof, type AgentChainCache } from '../../shared/agent-proof-verify.js';
import { fromBase64 } from '../../shared/encoding/base64.js';
import { WispError } from '../../shared/errors.js';
import type { AgentRequestStore, AgentStore, AttestedAgent } from '../../shared/registry/ports.js';
import { issuedBefore } from '../../shared/registry/revocation.js';
import type { Clock } from '../../shared/clock.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';
import type { TrustDomainCaApi } from '../ca/ca-api.js';
import type { WorkerConfig } from '../config.js';
import { parseJsonBytes, readBodyBytes } from '../http-json.js';
import { logEvent } from '../log.js';
import { readPublishedKeys } from '../ca/published-keys.js';
import type { PublishedKeys } from '../ca/ca-api.js';

/** The one message every agent authentication failure carries on the wire. */
export const AGENT_AUTH_FAILED_MESSAGE = 'agent authentication failed';

export interface AuthenticatedAgent {
  agentId: SpiffeId;
  /** serial of the SVID that signed this request (normalized) */
  serialNumber: string;
  /** the agent's registration record as read for this request */
  record: AttestedAgent;
}

export type AgentAuthVariables = {
  agent: AuthenticatedAgent;
  /** the raw request body, as covered by the proof */
  agentRequestBody: Uint8Array;
  /** registry and federation revisions read with the agent's record (handlers need no extra round trip) */
  revisions: { registry: string; federation: string; revocation: string };
};

export type AgentAuthEnv = { Variables: AgentAuthVariables };

/** A part of what the agent route groups get (AgentApiDeps, AgentFederationDeps): they pass theirs as is. */
export interface AgentAuthDeps {
  config: Pick<WorkerConfig, 'trustDomain' | 'agentRequestMaxSkewSeconds'>;
  ca: () => Pick<TrustDomainCaApi, 'getPublishedKeys'>;
  /** the jti, the agent's record and the revisions, in one round trip */
  requests: AgentRequestStore;
  agents: Pick<AgentStore, 'forgetPreviousSerial'>;
  clock: Clock;
  /** one per app (AppDeps.caches), shared by every agent route */
  authorities: PublishedAuthoritiesCache;
}

export interface AgentAuthOptions {
  /** body limit of this route, bytes */
  maxBodyBytes: number;
}

/**
 * Agent authentication needs the trust domain's published X.509 authorities (the CA DO holds them) to verify
 * the agent's chain, and /sync the whole published view (the bundle's sequence, X.509 and JWT authorities,
 * the tainted list). Neither asks the DO per request: this isolate's read is reused while it is younger than
 * PUBLISHED_AUTHORITIES_CACHE_MS (its age counted from when the read began, so a change the CA stored after
 * that is seen by every request that starts at most that long after the change), and one read in flight
 * serves every request that needs one meanwhile.
 * A key published meanwhile is picked up early by authentication (a proof that fails against the cached set
 * is checked again against a fresh one, at most once per FORCED_REFRESH_MIN_INTERVAL_MS, so bad proofs cannot
 * turn into a DO call each); a key withdrawn from the bundle still authenticates agents for at most the cache
 * time. Rotation never needs the early pick-up: a CA key is published at least a third of CA_TTL (>= 20 s)
 * before it signs, longer than the cache lives; it is there for key sets replaced outside rotation.
 * A change made through this isolate (the admin API's authority steps) is seen by it at once:
 * `forgetPublishedKeys`. The bound for agents is in docs/agent-api.md ("How fresh the bundle is").
 */
export const PUBLISHED_AUTHORITIES_CACHE_MS = 5_000;
export const FORCED_REFRESH_MIN_INTERVAL_MS = 1_000;

interface CachedAuthorities {
  /** when the read began */
  fetchedAt: number;
  /** the cache's generation at that time (forgetPublishedKeys bumps it) */
  generation: number;
  /** the published view as read (/sync's bundle) */
  keys: PublishedKeys;
  /** the authorities as published (base64 DER), to tell a changed set */
  key: string;
  authorities: Uint8Array[];
  /** verified agent chains under exactly these authorities */
  chains: AgentChainCache;
}

/** The published keys one app verifies agent proofs against and syncs agents to (see createAppDeps). */
export interface PublishedAuthoritiesCache {
  current?: CachedAuthorities;
  /** when the last forced (failure-driven) re-read happened */
  forcedAt?: number;
  /** bumped by forgetPublishedKeys: a read begun before is not reused */
  generation: number;
  /** the read in flight, for requests of the same generation */
  reading?: { generation: number; value: Promise<CachedAuthorities> };
}

export function createPublishedAuthoritiesCache(): PublishedAuthoritiesCache {
  return { generation: 0 };
}

/** Makes the next read ask the CA again (a change this isolate just made); verified chains are kept if the set is unchanged. */
export function forgetPublishedKeys(slot: PublishedAuthoritiesCache): void {
  slot.generation++;
  slot.reading = undefined;
}

type PublishedKeysDeps = Pick<AgentAuthDeps, 'ca' | 'clock' | 'authorities'>;

async function publishedAuthorities(deps: PublishedKeysDeps, fresh: boolean): Promise<CachedAuthorities> {
  const slot = deps.authorities;
  const now = deps.clock();
  const cached = slot.current;
  const reusable = cached && cached.generation === slot.generation && now >= cached.fetchedAt && now - cached.fetchedAt < PUBLISHED_AUTHORITIES_CACHE_MS;
  if (reusable && (!fresh || (slot.forcedAt !== undefined && now >= slot.forcedAt && now - slot.forcedAt < FORCED_REFRESH_MIN_INTERVAL_MS))) return cached;
  if (fresh) slot.forcedAt = now;
  // a read begun after the cached one (or with none cached) is as fresh as a new one would be
  if (slot.reading && slot.reading.generation === slot.generation) return slot.reading.value;
  const generation = slot.generation;
  const value = (async () => {
    const keys = await readPublishedKeys(deps.ca());
    const key = keys.x509Authorities.join(',');
    const previous = slot.current;
    const read: CachedAuthorities =
      previous?.key === key
        ? { ...previous, fetchedAt: now, generation, keys }
        : { fetchedAt: now, generation, keys, key, authorities: keys.x509Authorities.map((b64) => fromBase64(b64, 'ERR_INTERNAL', 'X.509 authority')), chains: createAgentChainCache() };
    // a read begun before a forget is still this request's answer, but not kept for the next one
    if (generation === slot.generation && (!slot.current || slot.current.fetchedAt <= now)) slot.current = read;
    return read;
  })();
  slot.reading = { generation, value };
  try {
    return await value;
  } finally {
    if (slot.reading?.value === value) slot.reading = undefined;
  }
}

/**
 * The trust domain's published keys as this isolate last read them, read again once older than
 * PUBLISHED_AUTHORITIES_CACHE_MS: /sync's bundle and tainted list. A CA that is not ready is ERR_CA_NOT_READY.
 */
export async function cachedPublishedKeys(deps: PublishedKeysDeps): Promise<PublishedKeys> {
  return (await publishedAuthorities(deps, false)).keys;
}

/**
 * The published keys read again now, unless a forced re-read happened less than FORCED_REFRESH_MIN_INTERVAL_MS
 * ago (then the cached ones): for a caller that has seen a newer sequence than the cache holds.
 */
export async function refreshedPublishedKeys(deps: PublishedKeysDeps): Promise<PublishedKeys> {
  return (await publishedAuthorities(deps, true)).keys;
}

function authFailed(reason: string, fields: Record<string, unknown> = {}): WispError {
  logEvent('warn', 'agent authentication failed', { reason, ...fields });
  return new WispError('ERR_AGENT_AUTH_FAILED', AGENT_AUTH_FAILED_MESSAGE);
}

/**
 * The agent-auth middleware for one route.
 * @example app.post('/sync', agentAuth(deps, { maxBodyBytes: 64 * 1024 }), async (c) => { c.var.agent.agentId })
 */
export function agentAuth(deps: AgentAuthDeps, options: AgentAuthOptions) {
  if (!Number.isSafeInteger(options.maxBodyBytes) || options.maxBodyBytes < 0) throw new Error('agentAuth: maxBodyBytes must be a non-negative integer');
  if (!(deps.config.agentRequestMaxSkewSeconds > 0)) throw new Error('agentAuth: agentRequestMaxSkewSeconds must be positive');
  return createMiddleware<AgentAuthEnv>(async (c, next) => {
    const url = new URL(c.req.url);
    const authorization = c.req.header('authorization');
    // refuse unsigned requests before reading their body
    if (!authorization?.toLowerCase().startsWith(`${AGENT_PROOF_SCHEME.toLowerCase()} `)) {
      throw authFailed('no agent proof', { path: url.pathname });
    }
    const body = await readBodyBytes(c.req.raw, options.maxBodyBytes);
    const now = deps.clock() / 1000;
    const verifyWith = async (authorities: CachedAuthorities) =>
      verifyAgentProof({
        authorization,
        method: c.req.method,
        pathAndQuery: url.pathname + url.search,
        body,
        x509Authorities: authorities.authorities,
        chainCache: authorities.chains,
        trustDomain: deps.config.trustDomain,
        now,
        maxSkewSeconds: deps.config.agentRequestMaxSkewSeconds,
      });
    const cached = await publishedAuthorities(deps, false);
    let verified = await verifyWith(cached);
    if (!verified.ok) {
      // maybe signed under a key published after the cached set was read
      const fresh = await publishedAuthorities(deps, true);
      if (fresh.key !== cached.key) verified = await verifyWith(fresh);
    }
    if (!verified.ok) throw authFailed(verified.error.message, { path: url.pathname });
    const { agentId, serialNumber, jti, expiresAt, svidNotBefore } = verified.value;
    const fields = { agent_id: agentId, serial: serialNumber, path: url.pathname };

    const admitted = await deps.requests.admit({ jti, expiresAt, agentId, serialNumber }, Math.floor(now));
    const { fresh, agent: record, registryRevision, federationRevision, revocationRevision, svidRevocation } = admitted;
    if (!fresh) throw authFailed('replayed jti', fields);

    if (!record) throw authFailed('agent is not attested (never, or evicted)', fields);
    if (record.banned) {
      logEvent('warn', 'banned agent refused', fields);
      throw new WispError('ERR_AGENT_BANNED', 'agent is banned');
    }
    // a revoked agent SVID says so (the agent re-attests on it); the reason is not a secret
    if (svidRevocation.serialRevoked || (svidRevocation.cutoff !== undefined && issuedBefore(svidNotBefore, svidRevocation.cutoff))) {
      logEvent('warn', 'revoked agent SVID refused', fields);
      throw new WispError('ERR_SVID_REVOKED', 'the agent SVID that signed this request is revoked; attest again');
    }
    const current = record.serialNumber ? normalizeSerialNumber(record.serialNumber) : undefined;
    const previous = record.previousSerialNumber ? normalizeSerialNumber(record.previousSerialNumber) : undefined;
    if (serialNumber === current) {
      if (previous !== undefined) await deps.agents.forgetPreviousSerial(agentId);
    } else if (serialNumber !== previous) {
      throw authFailed('SVID is not the agent\'s current one (renewed away or replaced)', fields);
    }
    c.set('agent', { agentId, serialNumber, record });
    c.set('agentRequestBody', body);
    c.set('revisions', { registry: registryRevision, federation: federationRevision, revocation: revocationRevision });
    await next();
  });
}

/** Parses the authenticated request's body (read by `agentAuth`) as JSON, after the content-type check. */
export function signedJsonBody(c: Context<AgentAuthEnv>): unknown {
  return parseJsonBytes(c.req.header('content-type') ?? null, c.var.agentRequestBody);
}
