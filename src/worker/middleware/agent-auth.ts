/**
 * Authenticates agent-API requests signed with an agent proof (shared/agent-proof.ts): the proof must
 * verify against the trust domain's published X.509 authorities, its jti must be new (AgentRequestStore), and the
 * agent must be attested, not banned, and presenting its current SVID, or the previous one until the
 * current one is first used (then the previous is forgotten: a renewed-away SVID stops working).
 *
 * The body is read once here (the proof covers its exact bytes) and kept for the handler, which parses it
 * with `signedJsonBody`. Every authentication failure gets one generic message on the wire; the reason
 * goes to the log.
 * @module
 */
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { AGENT_PROOF_SCHEME, createAgentChainCache, normalizeSerialNumber, verifyAgentProof, type AgentChainCache } from '../../shared/agent-proof.js';
import { fromBase64 } from '../../shared/encoding/base64.js';
import { WispError } from '../../shared/errors.js';
import type { AgentRequestStore, AgentStore, AttestedAgent } from '../../shared/registry/ports.js';
import type { Clock } from '../../shared/clock.js';
import type { SpiffeId, TrustDomain } from '../../shared/spiffe/id.js';
import type { TrustDomainCaApi } from '../ca/ca-api.js';
import { parseJsonBytes, readBodyBytes } from '../http-json.js';
import { logEvent } from '../log.js';
import { readPublishedKeys } from '../ca/published-keys.js';

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
  revisions: { registry: string; federation: string };
};

export type AgentAuthEnv = { Bindings: Env; Variables: AgentAuthVariables };

export interface AgentAuthDeps {
  trustDomain: TrustDomain;
  maxSkewSeconds: number;
  ca: () => Pick<TrustDomainCaApi, 'getPublishedKeys'>;
  /** the jti, the agent's record and the revisions, in one round trip */
  requests: AgentRequestStore;
  agents: Pick<AgentStore, 'forgetPreviousSerial'>;
  clock: Clock;
}

export interface AgentAuthOptions {
  /** body limit of this route, bytes */
  maxBodyBytes: number;
}

/**
 * How long the trust domain's published X.509 authorities are reused before the CA is asked again. A key
 * published meanwhile is picked up at once (a proof that fails against the cached set is checked again
 * against a fresh one); a key withdrawn from the bundle still authenticates agents for at most this long.
 */
export const PUBLISHED_AUTHORITIES_CACHE_MS = 5_000;

interface CachedAuthorities {
  fetchedAt: number;
  /** the authorities as published (base64 DER), to tell a changed set */
  key: string;
  authorities: Uint8Array[];
  /** verified agent chains under exactly these authorities */
  chains: AgentChainCache;
}

/** One cache per `AgentAuthDeps` object (agentRoutes makes one per app, so one per isolate in production). */
const authoritiesCaches = new WeakMap<AgentAuthDeps, { current?: CachedAuthorities }>();

async function publishedAuthorities(deps: AgentAuthDeps, fresh: boolean): Promise<CachedAuthorities> {
  let slot = authoritiesCaches.get(deps);
  if (!slot) authoritiesCaches.set(deps, (slot = {}));
  const now = deps.clock();
  const cached = slot.current;
  if (!fresh && cached && now >= cached.fetchedAt && now - cached.fetchedAt < PUBLISHED_AUTHORITIES_CACHE_MS) return cached;
  const { x509Authorities } = await readPublishedKeys(deps.ca());
  const key = x509Authorities.join(',');
  slot.current = cached?.key === key ? { ...cached, fetchedAt: now } : { fetchedAt: now, key, authorities: x509Authorities.map((b64) => fromBase64(b64, 'ERR_INTERNAL', 'X.509 authority')), chains: createAgentChainCache() };
  return slot.current;
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
  if (!(deps.maxSkewSeconds > 0)) throw new Error('agentAuth: maxSkewSeconds must be positive');
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
        trustDomain: deps.trustDomain,
        now,
        maxSkewSeconds: deps.maxSkewSeconds,
      });
    const cached = await publishedAuthorities(deps, false);
    let verified = await verifyWith(cached);
    if (!verified.ok) {
      // maybe signed under a key published after the cached set was read
      const fresh = await publishedAuthorities(deps, true);
      if (fresh.key !== cached.key) verified = await verifyWith(fresh);
    }
    if (!verified.ok) throw authFailed(verified.error.message, { path: url.pathname });
    const { agentId, serialNumber, jti, expiresAt } = verified.value;
    const fields = { agent_id: agentId, serial: serialNumber, path: url.pathname };

    const { fresh, agent: record, registryRevision, federationRevision } = await deps.requests.admit({ jti, expiresAt, agentId }, Math.floor(now));
    if (!fresh) throw authFailed('replayed jti', fields);

    if (!record) throw authFailed('agent is not attested (never, or evicted)', fields);
    if (record.banned) {
      logEvent('warn', 'banned agent refused', fields);
      throw new WispError('ERR_AGENT_BANNED', 'agent is banned');
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
    c.set('revisions', { registry: registryRevision, federation: federationRevision });
    await next();
  });
}

/** Parses the authenticated request's body (read by `agentAuth`) as JSON, after the content-type check. */
export function signedJsonBody(c: Context<AgentAuthEnv>): unknown {
  return parseJsonBytes(c.req.header('content-type') ?? null, c.var.agentRequestBody);
}
