/**
 * Admin API for per-SVID revocation (rules in shared/registry/revocation.ts): POST /revocations with one of
 * `serialNumber` (one X509-SVID; `spiffeId` may name its SPIFFE ID), `spiffeId` (every SVID of that ID issued
 * until now) or `entryId` (the same for the entry's SPIFFE ID), and an optional `reason`; GET /revocations
 * lists the unexpired ones (paged). Agents pick revocations up within one sync (routes/agent.ts).
 * @module
 */
import { Hono } from 'hono';
import { WispError } from '../../../shared/errors.js';
import { parseEntryId } from '../../../shared/registry/entry-validation.js';
import type { EntryStore } from '../../../shared/registry/ports.js';
import { parseRevocationReason, parseSerialNumber, spiffeIdCutoff, type SvidRevocation } from '../../../shared/registry/revocation.js';
import { parseSpiffeIdInTrustDomain, type SpiffeId } from '../../../shared/spiffe/id.js';
import type { RevocationStore } from '../../db/revocations.js';
import type { AppDeps } from '../../deps.js';
import { asObject, readJsonBody } from '../../http-json.js';
import { logEvent } from '../../log.js';
import { nowSeconds, onlyFields, parsePage } from './params.js';
import { noteAudit } from '../../middleware/audit.js';
import { noteAgents } from '../../notifier/notices.js';

const FIELDS = ['serialNumber', 'spiffeId', 'entryId', 'reason'] as const;

export function revocationRoutes(deps: AppDeps, store: RevocationStore, entries: EntryStore): Hono {
  const app = new Hono();
  const td = deps.config.trustDomain;
  /** No SVID outlives the CA key that signed it, and no CA key in use now outlives now + CA_TTL. */
  const latestExpiry = (now: number) => now + Math.max(deps.config.caTtlSeconds, deps.config.x509SvidTtlSeconds);

  async function revokeSpiffeId(spiffeId: SpiffeId, reason: string, now: number): Promise<SvidRevocation[]> {
    // an agent's SVIDs are recorded: their serials also go into the CRL
    const agent = await deps.stores.agents.get(spiffeId);
    const serials = [agent?.serialNumber, agent?.previousSerialNumber].filter((s): s is string => !!s).map((s) => ({ serialNumber: parseSerialNumber(s), expiresAt: agent!.expiresAt }));
    return store.revokeSpiffeId({ spiffeId, revokedAt: spiffeIdCutoff(deps.clock()), expiresAt: latestExpiry(now) }, serials, reason, now);
  }

  app.post('/', async (c) => {
    const body = asObject(await readJsonBody(c));
    onlyFields(body, FIELDS);
    const reason = parseRevocationReason(body.reason);
    const now = nowSeconds(deps);
    const given = (['serialNumber', 'entryId'] as const).filter((k) => body[k] !== undefined);
    if (given.length > 1 || (given.length === 0 && body.spiffeId === undefined) || (body.entryId !== undefined && body.spiffeId !== undefined)) {
      throw new WispError('ERR_BAD_REQUEST', 'give one of serialNumber (optionally with spiffeId), spiffeId or entryId');
    }
    let revocations: SvidRevocation[];
    if (body.serialNumber !== undefined) {
      const serialNumber = parseSerialNumber(body.serialNumber);
      const agent = await store.agentOfSerial(serialNumber);
      const spiffeId = body.spiffeId !== undefined ? parseSpiffeIdInTrustDomain(body.spiffeId, td) : (agent?.spiffeId ?? '');
      const expiresAt = agent && agent.spiffeId === spiffeId ? agent.expiresAt : latestExpiry(now);
      revocations = await store.revokeSerials([{ serialNumber, spiffeId, expiresAt }], reason, now);
    } else if (body.entryId !== undefined) {
      const entry = await entries.getById(parseEntryId(body.entryId));
      if (!entry) throw new WispError('ERR_ENTRY_NOT_FOUND', 'no entry with this ID');
      revocations = await revokeSpiffeId(entry.spiffeId, reason, now);
    } else {
      revocations = await revokeSpiffeId(parseSpiffeIdInTrustDomain(body.spiffeId, td), reason, now);
    }
    noteAudit(c, { objectIds: revocations.slice(0, 100).map((r) => r.serialNumber || r.spiffeId), detail: { revocations: revocations.length, ...(body.entryId !== undefined ? { entryId: String(body.entryId).slice(0, 128) } : {}) } });
    noteAgents(c, { all: true }); // any agent may hold a revoked SVID or need the new CRL
    logEvent('info', 'SVIDs revoked', { revocations: revocations.map((r) => `${r.kind}:${r.serialNumber || r.spiffeId}`).join(',') });
    return c.json({ revocations });
  });

  app.get('/', async (c) => c.json(await store.list(parsePage(c), nowSeconds(deps))));

  return app;
}
