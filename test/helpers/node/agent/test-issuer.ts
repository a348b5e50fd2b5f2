// The real issuer in process (../in-process-issuer.ts) with the few controls the agent tests use, each a call
// of the issuer's own admin or public API: join tokens, entries, eviction, foreign bundles, the published
// bundle, and the /sync revision. What the agent sent is read off the transport (`callsTo`).
import { decodeProtectedHeader } from 'jose';
import { X509Certificate } from 'node:crypto';
import { AGENT_API_PREFIX } from '../../../../src/shared/agent-api.js';
import { createCaCore } from '../../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage } from '../../../../src/worker/ca/ca-storage.js';
import { readPublishedKeys } from '../../../../src/worker/ca/published-keys.js';
import { parseCaConfig } from '../../../../src/worker/config.js';
import { buildBundleJson } from '../../../../src/shared/spiffe/bundle.js';
import type { Entry, NewEntry } from '../../../../src/shared/registry/entry.js';
import type { Selector } from '../../../../src/shared/registry/selectors.js';
import type { SpiffeBundleJson } from '../../../../src/shared/spiffe/bundle.js';
import type { SpiffeId } from '../../../../src/shared/spiffe/id.js';
import { uriSans } from '../der.js';
import { startInProcessIssuer, type InProcessIssuer, type InProcessIssuerOptions } from '../in-process-issuer.js';
import { revocationPart } from '../../../../src/worker/routes/agent.js';

/** An agent-API call as the issuer saw it. */
export interface AgentCall {
  /** the path under /agent/v1, e.g. /sync */
  route: string;
  body: unknown;
  /** the issuer's answer: 200 means it accepted the agent proof and served the call */
  status?: number;
  /** the agent ID the request's proof was signed as (its leaf's URI SAN); none for /attest */
  agentId?: string;
}

export interface AgentTestIssuer extends InProcessIssuer {
  /** parent of the entries `addEntry` makes when the test names none (the harness: its agent's ID) */
  defaultParentId?: SpiffeId;
  /** a real join token from POST /admin/v1/join-tokens */
  createJoinToken(options?: { spiffeId?: string }): Promise<string>;
  /** the agent ID a join token without a preset ID gives */
  agentIdOf(token: string): SpiffeId;
  /** POST /admin/v1/entries; `spiffePath` under the trust domain */
  addEntry(id: string, spiffePath: string, selectors: Selector[], extra?: Partial<NewEntry>): Promise<Entry>;
  /** PUT /admin/v1/entries/:id (a full replace, as the admin API does it) */
  updateEntry(id: string, spiffePath: string, selectors: Selector[], extra?: Partial<NewEntry>): Promise<Entry>;
  deleteEntry(id: string): Promise<void>;
  /** DELETE /admin/v1/agents/:id: the agent must attest again */
  evict(agentId: string): Promise<void>;
  /** PUT /admin/v1/bundles/:td */
  putForeignBundle(trustDomain: string, bundle: SpiffeBundleJson): Promise<void>;
  /** GET /bundle: the trust domain's bundle as published */
  bundle(): Promise<SpiffeBundleJson>;
  /** the DER X.509 authorities of the published bundle */
  x509Authorities(): Promise<Uint8Array[]>;
  /** what /sync answers as `revision` now (routes/agent.ts: "<registry>.<federation>", both read from D1) */
  revision(): Promise<string>;
  /** the agent-API calls to `route` that reached the issuer, in order */
  callsTo(route: string): AgentCall[];
  /** every request is cut at the socket while true */
  down: boolean;
}

export async function startAgentTestIssuer(options: InProcessIssuerOptions): Promise<AgentTestIssuer> {
  const inner = await startInProcessIssuer(options);
  const td = inner.config.trustDomain;
  const entryBody = (id: string, spiffePath: string, selectors: Selector[], extra: Partial<NewEntry>) => {
    const parentId = extra.parentId ?? issuer.defaultParentId;
    if (!parentId) throw new Error('addEntry: no parentId and no defaultParentId');
    return { id, spiffeId: `spiffe://${td}${spiffePath}`, selectors, ...extra, parentId };
  };
  const issuer: AgentTestIssuer = {
    ...inner,
    get down() {
      return inner.transport.down;
    },
    set down(value: boolean) {
      inner.transport.down = value;
    },
    async createJoinToken(opts = {}) {
      return (await inner.admin<{ token: string }>('POST', '/join-tokens', opts.spiffeId ? { spiffeId: opts.spiffeId } : {})).token;
    },
    agentIdOf: (token) => `spiffe://${td}/spire/agent/join_token/${token}` as SpiffeId,
    async addEntry(id, spiffePath, selectors, extra = {}) {
      return (await inner.admin<{ entry: Entry }>('POST', '/entries', entryBody(id, spiffePath, selectors, extra))).entry;
    },
    async updateEntry(id, spiffePath, selectors, extra = {}) {
      return (await inner.admin<{ entry: Entry }>('PUT', `/entries/${encodeURIComponent(id)}`, entryBody(id, spiffePath, selectors, extra))).entry;
    },
    async deleteEntry(id) {
      await inner.admin('DELETE', `/entries/${encodeURIComponent(id)}`);
    },
    async evict(agentId) {
      await inner.admin('DELETE', `/agents/${encodeURIComponent(agentId)}`);
    },
    async putForeignBundle(trustDomain, bundle) {
      await inner.admin('PUT', `/bundles/${encodeURIComponent(trustDomain)}`, { bundle });
    },
    async bundle() {
      const res = await fetch(`${inner.url}/bundle`);
      if (!res.ok) throw new Error(`GET /bundle: ${res.status}`);
      return (await res.json()) as SpiffeBundleJson;
    },
    async x509Authorities() {
      const { keys } = await issuer.bundle();
      return keys.filter((k) => k.use === 'x509-svid').map((k) => new Uint8Array(Buffer.from((k.x5c as string[])[0]!, 'base64')));
    },
    async revision() {
      // the sync revision of the agent that synced last (the CRL epoch in it depends on the agent ID)
      const { entries, federation, revocations } = inner.deps.stores;
      const agentId = issuer.callsTo('/sync').at(-1)?.agentId ?? '';
      const revocation = revocationPart(await revocations.revision(), agentId, Math.floor(inner.deps.clock() / 1000));
      return `${await entries.revision()}.${await federation.revision()}.${revocation}`;
    },
    callsTo(route) {
      return inner.transport.calls
        .filter((c) => c.path.split('?')[0] === `${AGENT_API_PREFIX}${route}`)
        .map((c) => ({ route, body: c.body, status: c.status, ...(c.authorization ? { agentId: proofSigner(c.authorization) } : {}) }));
    },
  };
  return issuer;
}

/** The URI SAN of the leaf in an agent proof's x5c (read, not verified: the issuer's status says if it verified). */
function proofSigner(authorization: string): string | undefined {
  try {
    const x5c = decodeProtectedHeader(authorization.slice(authorization.indexOf(' ') + 1)).x5c;
    return x5c?.[0] ? uriSans(new X509Certificate(Buffer.from(x5c[0], 'base64')))[0] : undefined;
  } catch {
    return undefined;
  }
}

/** The bundle another trust domain's CA (the same CA core, on memory storage) publishes: a foreign bundle to federate with. */
export async function foreignCaBundle(trustDomain: string, clock: () => number): Promise<SpiffeBundleJson> {
  const config = parseCaConfig({ TRUST_DOMAIN: trustDomain, JWT_ISSUER: `https://${trustDomain}`, KEY_ENCRYPTION_SECRET: `kek-${crypto.randomUUID()}-${crypto.randomUUID()}` });
  return buildBundleJson(await readPublishedKeys(createCaCore({ storage: createMemoryCaStorage(), config, clock })));
}
