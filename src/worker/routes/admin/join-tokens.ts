/**
 * Admin API for join tokens: `POST /join-tokens {ttlSeconds?, spiffeId?}` → 201 `{token, expiresAt, spiffeId?}`.
 * The token is 32 random bytes (hex) shown once; the store keeps only its SHA-256, the audit log a prefix of
 * that hash (`join_token:sha256:<16 hex>`) and the expiry.
 * @module
 */
import { Hono } from 'hono';
import { WispError } from '../../../shared/errors.js';
import type { JoinTokenStore } from '../../../shared/registry/ports.js';
import { isAgentId, parseSpiffeIdInTrustDomain, type SpiffeId } from '../../../shared/spiffe/id.js';
import type { AppDeps } from '../../deps.js';
import { sha256Hex } from '../../db/join-tokens.js';
import { noteAudit } from '../../middleware/audit.js';
import { asObject, readJsonBody } from '../../http-json.js';
import { nowSeconds, onlyFields } from './params.js';

export const JOIN_TOKEN_DEFAULT_TTL_SECONDS = 600;
export const JOIN_TOKEN_MAX_TTL_SECONDS = 7 * 86400;
export const JOIN_TOKEN_BYTES = 32;
/** Hex digits of the token's SHA-256 the audit log keeps: enough to tell tokens apart, nothing to attest with. */
export const JOIN_TOKEN_AUDIT_HASH_CHARS = 16;

export function joinTokenRoutes(deps: AppDeps, store: JoinTokenStore): Hono {
  const app = new Hono();

  app.post('/', async (c) => {
    const body = asObject(await readJsonBody(c));
    onlyFields(body, ['ttlSeconds', 'spiffeId']);
    const ttl = body.ttlSeconds ?? JOIN_TOKEN_DEFAULT_TTL_SECONDS;
    if (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl < 1 || ttl > JOIN_TOKEN_MAX_TTL_SECONDS) {
      throw new WispError('ERR_BAD_REQUEST', `ttlSeconds must be whole seconds from 1 to ${JOIN_TOKEN_MAX_TTL_SECONDS}`);
    }
    let spiffeId: SpiffeId | undefined;
    if (body.spiffeId !== undefined) {
      spiffeId = parseSpiffeIdInTrustDomain(body.spiffeId, deps.config.trustDomain, 'spiffeId');
      if (!isAgentId(spiffeId)) throw new WispError('ERR_SPIFFE_ID_INVALID', 'spiffeId of a join token must be an agent ID (spiffe://<td>/spire/agent/...)');
    }
    const bytes = crypto.getRandomValues(new Uint8Array(JOIN_TOKEN_BYTES));
    const token = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
    const now = nowSeconds(deps);
    const expiresAt = now + ttl;
    await store.create(token, { ...(spiffeId ? { spiffeId } : {}), expiresAt }, now);
    const reference = `join_token:sha256:${(await sha256Hex(token)).slice(0, JOIN_TOKEN_AUDIT_HASH_CHARS)}`;
    noteAudit(c, { objectIds: [reference, ...(spiffeId ? [spiffeId] : [])], detail: { expiresAt } });
    return c.json({ token, expiresAt, ...(spiffeId ? { spiffeId } : {}) }, 201);
  });

  return app;
}
