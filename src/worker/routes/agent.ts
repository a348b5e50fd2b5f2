/**
 * The agent API (issuer side), mounted at /agent/v1: node attestation, agent SVID renewal, registry sync,
 * and batch issuance of workload X509-SVIDs and JWT-SVIDs. Wire types in shared/agent-api.ts; documented
 * in docs/agent-api.md. Every call but /attest is authenticated by `agentAuth`.
 *
 * Authorization follows SPIRE: an agent may only get SVIDs for entries in its authorized set
 * (EntryStore.listAuthorized), and the SPIFFE ID, DNS names and TTL of every SVID come from the entry,
 * never from the request. A batch with one unauthorized entry is refused whole: nothing is signed.
 *
 * Rate limits (docs/agent-api.md "Rate limits") are counted by the CA: attestation attempts per client
 * address in one extra call before anything else, signing per agent ID inside the signing call itself.
 * @module
 */
import { Hono, type Context } from 'hono';
import { normalizeSerialNumber } from '../../shared/agent-proof.js';
import {
  AGENT_API_LIMITS,
  type AttestResponse,
  type BundleResponse,
  type JwtSvidsResponse,
  type RenewResponse,
  type SyncResponse,
  type SyncRevocations,
  type X509SvidsResponse,
  type X509SvidWire,
} from '../../shared/agent-api.js';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import type { FederationStore } from '../../shared/federation/federation-store.js';
import type { Entry } from '../../shared/registry/entry.js';
import type { AgentRequestStore, AgentStore, EntryStore, JoinTokenStore } from '../../shared/registry/ports.js';
import { unwrap } from '../../shared/result.js';
import { buildBundleJson, type SpiffeBundleJson } from '../../shared/spiffe/bundle.js';
import { parseCsr } from '../../shared/spiffe/csr.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';
import { fromBase64, toBase64 } from '../../shared/encoding/base64.js';
import { signInBatches, type SignedX509Svid, type SignX509SvidRequest, type TrustDomainCaApi } from '../ca/ca-api.js';
import type { WorkerConfig } from '../config.js';
import { asObject, readJsonBody } from '../http-json.js';
import { logEvent } from '../log.js';
import { agentAuth, cachedPublishedKeys, refreshedPublishedKeys, signedJsonBody, type AgentAuthEnv, type PublishedAuthoritiesCache } from '../middleware/agent-auth.js';
import { noStore } from '../middleware/no-store.js';
import type { NodeAttestor } from '../attestation/types.js';
import { readCrls, readPublishedKeys } from '../ca/published-keys.js';
import type { RevocationStore } from '../db/revocations.js';
import { CRL_RESIGN_AFTER_SECONDS } from '../ca/crl.js';
import { clientAddress } from '../client-address.js';
import { signWitSvids } from './agent-wit.js';

/** Body limit of the small agent calls (attest, renew, sync, bundle), bytes. */
export const AGENT_SMALL_BODY_MAX_BYTES = 64 * 1024;
function withoutJwtSvidClaims(entry: Entry): Entry {
  if (entry.jwtSvidClaims === undefined) return entry;
  const { jwtSvidClaims: _claims, ...rest } = entry;
  return rest;
}

/** Agents whose authorized entries are kept between issuance calls (per app, so per isolate). */
const AUTHORIZED_CACHE_MAX_AGENTS = 256;
/** Longest registry revision string accepted from an agent. */
const MAX_REVISION_CHARS = 128;
/** Longest entry ID accepted. */
const MAX_ENTRY_ID_CHARS = 255;

export interface AgentApiDeps {
  config: WorkerConfig;
  ca: () => TrustDomainCaApi;
  clock: Clock;
  entries: EntryStore;
  agents: AgentStore;
  joinTokens: JoinTokenStore;
  requests: AgentRequestStore;
  /** federated bundles for /sync and /bundle; absent: the issuer federates with nobody */
  federation?: FederationStore;
  /** per-SVID revocations for /sync; absent: nothing is ever revoked */
  revocations?: RevocationStore;
  /** the node attestors accepted, by type (createAppDeps makes them from the config) */
  nodeAttestors: Record<string, NodeAttestor>;
  /** the app's published-keys cache: agent authentication and /sync's bundle */
  authorities: PublishedAuthoritiesCache;
}

function badRequest(message: string): WispError {
  return new WispError('ERR_BAD_REQUEST', message);
}

function attestRefused(reason: 'banned' | 'attested', agentId: SpiffeId, attestationType: string): WispError {
  if (reason === 'banned') {
    logEvent('warn', 'banned agent tried to attest', { agent_id: agentId, attestation_type: attestationType });
    return new WispError('ERR_AGENT_BANNED', 'agent is banned');
  }
  logEvent('warn', 'agent attested twice', { agent_id: agentId, attestation_type: attestationType });
  return new WispError('ERR_AGENT_ALREADY_ATTESTED', 'agent is already attested; evict it first');
}

function decodeCsr(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string' || value.length === 0) throw badRequest(`${what} must be a base64 string`);
  if (value.length > Math.ceil(AGENT_API_LIMITS.MAX_CSR_BYTES / 3) * 4) {
    throw new WispError('ERR_CSR_INVALID', `${what} is larger than ${AGENT_API_LIMITS.MAX_CSR_BYTES} bytes`);
  }
  return fromBase64(value, 'ERR_CSR_INVALID', what);
}

function parseEntryId(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ENTRY_ID_CHARS) throw badRequest(`${what} must be a non-empty string`);
  return value;
}

function batchOf(body: unknown, max: number): Record<string, unknown>[] {
  const requests = asObject(body).requests;
  if (!Array.isArray(requests) || requests.length === 0) throw badRequest('requests must be a non-empty array');
  if (requests.length > max) throw new WispError('ERR_REQUEST_TOO_LARGE', `at most ${max} requests per call`);
  return requests.map((r, i) => asObject(r, `requests[${i}]`));
}

function svidWire(signed: SignedX509Svid): X509SvidWire {
  return { spiffeId: signed.spiffeId, certChain: signed.certChain, expiresAt: signed.expiresAt };
}

export function agentRoutes(deps: AgentApiDeps): Hono<AgentAuthEnv> {
  const { config } = deps;
  const attestors = deps.nodeAttestors;
  const nowSeconds = () => Math.floor(deps.clock() / 1000);
  const small = agentAuth(deps, { maxBodyBytes: AGENT_SMALL_BODY_MAX_BYTES });
  const large = agentAuth(deps, { maxBodyBytes: AGENT_API_LIMITS.MAX_BODY_BYTES });

  /**
   * Signs a batch in DO calls of at most MAX_SIGN_BATCH (the API allows larger batches), each counted in
   * `caller`'s bucket; any failed item fails the whole call.
   */
  async function signX509(requests: SignX509SvidRequest[], caller?: SpiffeId): Promise<SignedX509Svid[]> {
    const ca = deps.ca();
    return signInBatches(requests, (batch) => ca.signX509Svids(batch, caller));
  }

  async function agentSvid(agentId: SpiffeId, csrDer: Uint8Array): Promise<SignedX509Svid> {
    const { publicKeySpki } = await parseCsr(csrDer);
    const [signed] = await signX509([{ spiffeId: agentId, publicKeySpki, dnsNames: [], ttlSeconds: config.x509SvidTtlSeconds }], agentId);
    return signed!;
  }

  /**
   * The agent's authorized entries by ID. Kept per agent for the registry revision they were read at (every
   * entry write bumps it; agentAuth reads it with the agent's record), so a burst of issuance calls does not
   * list the entries each time; when one of them has expired they are listed again (the query leaves expired
   * entries out).
   */
  const authorizedByAgent = new Map<string, { key: string; entries: Map<string, Entry>; firstExpiry: number }>();
  async function authorizedEntries(c: Context<AgentAuthEnv>): Promise<Map<string, Entry>> {
    const { agentId, record } = c.var.agent;
    const now = nowSeconds();
    const key = `${c.var.revisions.registry}\n${JSON.stringify(record.nodeSelectors)}`;
    let cached = authorizedByAgent.get(agentId);
    // an entry that expired since may have been the only way to some descendants: list again
    if (!cached || cached.key !== key || cached.firstExpiry <= now) {
      const entries = await deps.entries.listAuthorized(agentId, record.nodeSelectors, now);
      const firstExpiry = entries.reduce((first, e) => (e.expiresAt !== 0 && e.expiresAt < first ? e.expiresAt : first), Infinity);
      cached = { key, entries: new Map(entries.map((e) => [e.id, e])), firstExpiry };
      if (authorizedByAgent.size >= AUTHORIZED_CACHE_MAX_AGENTS) authorizedByAgent.delete(authorizedByAgent.keys().next().value!);
      authorizedByAgent.delete(agentId);
      authorizedByAgent.set(agentId, cached);
    }
    return cached.entries;
  }

  /** Every requested entry must be authorized, or nothing happens (SPIRE: "no identity issued"). */
  function requireAuthorized(authorized: Map<string, Entry>, entryIds: string[], agentId: SpiffeId): Entry[] {
    return entryIds.map((id) => {
      const entry = authorized.get(id);
      if (!entry) {
        logEvent('warn', 'agent asked for an unauthorized entry', { agent_id: agentId, entry_id: id });
        throw new WispError('ERR_NO_IDENTITY', `no identity issued: entry "${id}" is not authorized for this agent`);
      }
      return entry;
    });
  }

  /** The stored foreign bundles of the trust domains these entries federate with, keyed by trust domain name. */
  async function federatedBundlesFor(entries: Iterable<Entry>): Promise<Record<string, SpiffeBundleJson>> {
    const wanted = new Set<string>();
    for (const e of entries) for (const td of e.federatesWith) wanted.add(td);
    if (!deps.federation || wanted.size === 0) return {};
    const bundles = await deps.federation.bundlesOf([...wanted]);
    return Object.fromEntries(bundles.map((b) => [b.trustDomain, b.bundle]));
  }

  async function revocationsFor(store: RevocationStore, spiffeIds: string[], now: number): Promise<SyncRevocations> {
    const [set, serials] = await Promise.all([store.setFor([...new Set(spiffeIds)], now), store.crlSerials(now)]);
    const crls = await readCrls(deps.ca(), serials);
    return { ...set, crls: crls.map((crl) => toBase64(crl.der)) };
  }

  const app = new Hono<AgentAuthEnv>();
  // agent SVIDs, workload SVIDs and JWT-SVIDs are credentials: no cache keeps any answer of this API
  app.use('*', noStore);

  // a single-use challenge for attestors that prove possession of a key (x509pop); counted as an attempt
  app.post('/attest/challenge', async (c) => {
    unwrap(await deps.ca().admitAttestation(attestationSource(c)));
    const { attestationType } = asObject(await readJsonBody(c, AGENT_SMALL_BODY_MAX_BYTES));
    if (typeof attestationType !== 'string' || attestationType.length === 0) throw badRequest('attestationType must be a non-empty string');
    const attestor = Object.hasOwn(attestors, attestationType) ? attestors[attestationType] : undefined;
    if (!attestor) throw badRequest(`unsupported attestationType "${attestationType.slice(0, 64)}"`);
    if (!attestor.challenge) throw badRequest(`attestationType "${attestor.type}" takes no challenge`);
    return c.json(await attestor.challenge({ trustDomain: config.trustDomain, now: nowSeconds() }));
  });

  app.post('/attest', async (c) => {
    // SPIRE counts every attempt, before any work: a refused one parses nothing and spends no credential
    unwrap(await deps.ca().admitAttestation(attestationSource(c)));
    const body = asObject(await readJsonBody(c, AGENT_SMALL_BODY_MAX_BYTES));
    const { attestationType, payload } = body;
    if (typeof attestationType !== 'string' || attestationType.length === 0) throw badRequest('attestationType must be a non-empty string');
    const attestor = Object.hasOwn(attestors, attestationType) ? attestors[attestationType] : undefined;
    if (!attestor) throw badRequest(`unsupported attestationType "${attestationType.slice(0, 64)}"`);
    c.set('telemetryAttestor', attestor.type);
    const attestPayload = asObject(payload, 'payload');
    // the CSR is checked before the attestor runs, so a bad CSR never spends a single-use credential
    const csr = await parseCsr(decodeCsr(body.csr, 'csr'));

    const now = nowSeconds();
    let result;
    try {
      result = await attestor.attest(attestPayload, { trustDomain: config.trustDomain, now, csrPublicKeySpki: csr.publicKeySpki });
    } catch (e) {
      logEvent('warn', 'node attestation failed', { attestation_type: attestor.type, code: e instanceof WispError ? e.code : 'internal' });
      throw e;
    }
    const { agentId, selectors, allowReattestation } = result;
    // claim the agent ID before anything is signed: of concurrent attestations of one ID at most one gets here
    const claim = await deps.agents.claimAttestation({ spiffeId: agentId, attestationType: attestor.type, allowReattestation }, now);
    if (!claim.claimed) throw attestRefused(claim.reason, agentId, attestor.type);
    let signed: SignedX509Svid;
    try {
      [signed] = (await signX509([{ spiffeId: agentId, publicKeySpki: csr.publicKeySpki, dnsNames: [], ttlSeconds: config.x509SvidTtlSeconds }])) as [SignedX509Svid];
    } catch (e) {
      await deps.agents.releaseAttestation(agentId, claim.token);
      throw e;
    }
    const recorded = await deps.agents.completeAttestation(
      claim.token,
      { spiffeId: agentId, attestationType: attestor.type, serialNumber: normalizeSerialNumber(signed.serialNumber), expiresAt: signed.expiresAt, nodeSelectors: selectors },
      now,
    );
    // the claim was lost meanwhile (banned, evicted, or taken as abandoned): the SVID signed is never sent
    if (!recorded) throw attestRefused((await deps.agents.get(agentId))?.banned ? 'banned' : 'attested', agentId, attestor.type);
    logEvent('info', 'agent attested', { agent_id: agentId, attestation_type: attestor.type, serial: normalizeSerialNumber(signed.serialNumber) });
    const response: AttestResponse = { svid: svidWire(signed), bundle: await buildBundleJson(await readPublishedKeys(deps.ca())) };
    return c.json(response);
  });

  app.post('/renew', small, async (c) => {
    const body = asObject(signedJsonBody(c));
    const { agentId } = c.var.agent;
    const signed = await agentSvid(agentId, decodeCsr(body.csr, 'csr'));
    await deps.agents.renew(agentId, normalizeSerialNumber(signed.serialNumber), signed.expiresAt, nowSeconds());
    logEvent('info', 'agent renewed', { agent_id: agentId, serial: normalizeSerialNumber(signed.serialNumber) });
    const response: RenewResponse = { svid: svidWire(signed) };
    return c.json(response);
  });

  app.post('/sync', small, async (c) => {
    const body = asObject(signedJsonBody(c));
    const { revision: known, bundleSequence } = body;
    if (known !== undefined && (typeof known !== 'string' || known.length > MAX_REVISION_CHARS)) throw badRequest('revision must be a string');
    if (bundleSequence !== undefined && !Number.isSafeInteger(bundleSequence)) throw badRequest('bundleSequence must be an integer');
    const { agentId, record } = c.var.agent;
    // revisions first (agentAuth read them with the agent's record): entries and bundles read after them are
    // at least as new, so a concurrent write only causes a refetch. The sync revision is
    // "<registry>.<federation>.<revocations>-<CRL epoch>"; any part changing sends the federated bundles (the
    // complete set for the agent's entries), only the registry part sends entries, the registry or revocation
    // part the revocations and CRLs. The bundle is this isolate's cached read of the CA's published keys (at
    // most PUBLISHED_AUTHORITIES_CACHE_MS old, agent-auth.ts), so an unchanged sync costs agentAuth's D1 batch only.
    let keys = await cachedPublishedKeys(deps);
    // the agent holds a newer bundle (from /attest, or another isolate read after a change): not sent back an
    // older one while a re-read is allowed (at most one a second, shared with agentAuth's)
    if (typeof bundleSequence === 'number' && bundleSequence > keys.sequence) keys = await refreshedPublishedKeys(deps);
    const registryRevision = c.var.revisions.registry;
    const federationRevision = deps.federation ? c.var.revisions.federation : '0';
    const revocationRevision = deps.revocations ? revocationPart(c.var.revisions.revocation, agentId, nowSeconds()) : '0';
    const revision = `${registryRevision}.${federationRevision}.${revocationRevision}`;
    const [knownRegistry, knownFederation, knownRevocation] = typeof known === 'string' ? known.split('.') : [];
    const response: SyncResponse = { revision };
    const entriesChanged = registryRevision !== knownRegistry;
    // which revocations concern the agent depends on its entries: a change of either sends them
    const revocationsChanged = deps.revocations !== undefined && (entriesChanged || revocationRevision !== knownRevocation);
    if (entriesChanged || federationRevision !== knownFederation || revocationsChanged) {
      const now = nowSeconds();
      const entries = await deps.entries.listAuthorized(agentId, record.nodeSelectors, now);
      // the agent needs no entry's JWT claims (the CA adds them; a changed entry's revision drops its JWTs)
      if (entriesChanged) response.entries = entries.map(withoutJwtSvidClaims);
      response.federatedBundles = await federatedBundlesFor(entries);
      if (revocationsChanged) response.revocations = await revocationsFor(deps.revocations!, [agentId, ...entries.map((e) => e.spiffeId)], now);
    }
    if (keys.sequence !== bundleSequence) {
      response.bundle = await buildBundleJson(keys);
      response.taintedAuthorities = keys.tainted ?? { x509: [], jwt: [] };
    }
    return c.json(response);
  });

  app.post('/x509-svids', large, async (c) => {
    const items = batchOf(signedJsonBody(c), AGENT_API_LIMITS.MAX_BATCH_CSRS);
    const parsed = items.map((r, i) => ({ entryId: parseEntryId(r.entryId, `requests[${i}].entryId`), csr: decodeCsr(r.csr, `requests[${i}].csr`) }));
    // The authorized entries are read (D1) while the CSRs are verified (CPU). Nothing is signed before both
    // are settled: an unauthorized entry still refuses the whole batch first, and a CSR whose signature does
    // not verify fails it before the CA is called.
    const authorized = authorizedEntries(c);
    const verifying = Promise.all(parsed.map((p) => parseCsr(p.csr)));
    verifying.catch(() => undefined); // awaited below; refused batches must not leave an unhandled rejection
    const entries = requireAuthorized(await authorized, parsed.map((p) => p.entryId), c.var.agent.agentId);
    const keys = await verifying;
    const signed = await signX509(
      entries.map((entry, i) => ({
        spiffeId: entry.spiffeId,
        publicKeySpki: keys[i]!.publicKeySpki,
        dnsNames: entry.dnsNames,
        ttlSeconds: entry.x509SvidTtl || config.x509SvidTtlSeconds,
      })),
      c.var.agent.agentId,
    );
    const response: X509SvidsResponse = { svids: signed.map((s, i) => ({ entryId: entries[i]!.id, svid: svidWire(s) })) };
    return c.json(response);
  });

  app.post('/jwt-svids', large, async (c) => {
    const items = batchOf(signedJsonBody(c), AGENT_API_LIMITS.MAX_BATCH_JWTS);
    const parsed = items.map((r, i) => ({ entryId: parseEntryId(r.entryId, `requests[${i}].entryId`), audience: parseAudience(r.audience, `requests[${i}].audience`) }));
    const entries = requireAuthorized(await authorizedEntries(c), parsed.map((p) => p.entryId), c.var.agent.agentId);
    const ca = deps.ca();
    const requests = entries.map((entry, i) => ({ spiffeId: entry.spiffeId, audience: parsed[i]!.audience, ttlSeconds: entry.jwtSvidTtl || config.jwtSvidTtlSeconds, extraClaims: entry.jwtSvidClaims }));
    // one DO call per batch, not one per JWT
    const signed = await signInBatches(requests, (batch) => ca.signJwtSvids(batch, c.var.agent.agentId));
    const response: JwtSvidsResponse = {
      svids: signed.map((s, i) => ({ entryId: entries[i]!.id, spiffeId: s.spiffeId, token: s.token, expiresAt: s.expiresAt })),
    };
    return c.json(response);
  });

  app.post('/wit-svids', large, async (c) => {
    const items = batchOf(signedJsonBody(c), AGENT_API_LIMITS.MAX_BATCH_WITS);
    const ids = items.map((r, i) => parseEntryId(r.entryId, `requests[${i}].entryId`));
    const entries = requireAuthorized(await authorizedEntries(c), ids, c.var.agent.agentId);
    return c.json(await signWitSvids(deps, entries, items.map((r) => r.publicKey), c.var.agent.agentId));
  });

  app.get('/bundle', small, async (c) => {
    const entries = await authorizedEntries(c);
    const response: BundleResponse = {
      bundle: await buildBundleJson(await readPublishedKeys(deps.ca())),
      federatedBundles: await federatedBundlesFor([...entries.values()]),
    };
    return c.json(response);
  });

  return app;
}

const utf8 = new TextEncoder();

/**
 * The CRL part of the revocation revision: it changes once per CRL_RESIGN_AFTER_SECONDS / 2 for each agent
 * (offset per agent ID, so agents do not all refetch at once), so an agent holds a CRL signed at most
 * 1.5 × CRL_RESIGN_AFTER_SECONDS ago, well before its nextUpdate (crl.ts).
 */
function crlEpoch(agentId: string, now: number): number {
  const period = CRL_RESIGN_AFTER_SECONDS / 2;
  let h = 0;
  for (let i = 0; i < agentId.length; i++) h = (h * 31 + agentId.charCodeAt(i)) >>> 0;
  return Math.floor((now + (h % period)) / period);
}

/** The revocation part of an agent's sync revision: "<revocation_revision>-<CRL epoch>". */
export function revocationPart(revocationRevision: string, agentId: string, now: number): string {
  return `${revocationRevision}-${crlEpoch(agentId, now)}`;
}

/**
 * The bucket of an attestation attempt: the client address Cloudflare's edge puts in CF-Connecting-IP (a
 * client cannot set it there). Absent (a request that did not come through the edge) or not an address: one
 * shared bucket.
 */
function attestationSource(c: Context): string {
  return clientAddress(c.req.raw.headers) ?? 'unknown';
}

/** JWT-SVID §3: `aud` is required; here a non-empty, bounded array of non-empty strings. */
function parseAudience(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw badRequest(`${what} must be a non-empty array`);
  if (value.length > AGENT_API_LIMITS.MAX_AUDIENCES) throw badRequest(`${what} has more than ${AGENT_API_LIMITS.MAX_AUDIENCES} entries`);
  for (const a of value) {
    if (typeof a !== 'string' || a.length === 0) throw badRequest(`${what} entries must be non-empty strings`);
    // a UTF-16 code unit is at most 3 UTF-8 bytes: only long strings need encoding to be measured
    if (a.length * 3 > AGENT_API_LIMITS.MAX_AUDIENCE_BYTES && utf8.encode(a).length > AGENT_API_LIMITS.MAX_AUDIENCE_BYTES) {
      throw badRequest(`${what} entries must be at most ${AGENT_API_LIMITS.MAX_AUDIENCE_BYTES} bytes`);
    }
  }
  return value as string[];
}
