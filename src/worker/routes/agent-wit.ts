/**
 * POST /agent/v1/wit-svids (routes/agent.ts authenticates the agent and checks every entry is authorized
 * first, as for /jwt-svids): the signing step, in DO calls of at most MAX_SIGN_BATCH. The SPIFFE ID and TTL
 * come from the entry, the `cnf` key from the agent (checked in the CA by shared/spiffe/wit-svid.ts); any
 * refused item fails the whole call.
 * @module
 */
import type { WitSvidsResponse } from '../../shared/agent-api.js';
import { WispError } from '../../shared/errors.js';
import type { Entry } from '../../shared/registry/entry.js';
import { unwrap } from '../../shared/result.js';
import { parseWitPublicJwk } from '../../shared/spiffe/wit-svid.js';
import { signInBatches, type SignWitSvidRequest, type TrustDomainCaApi } from '../ca/ca-api.js';
import type { WorkerConfig } from '../config.js';

export async function signWitSvids(
  deps: { config: WorkerConfig; ca: () => TrustDomainCaApi },
  entries: Entry[],
  publicKeys: unknown[],
  caller: string,
): Promise<WitSvidsResponse> {
  const ttl = deps.config.witSvidTtlSeconds;
  const ca = deps.ca();
  if (ttl === undefined || !ca.signWitSvids) throw new WispError('ERR_UNIMPLEMENTED', 'WIT-SVIDs are not enabled on this issuer (WIT_SVID_TTL)');
  // every key is checked before the CA is called: one bad key refuses the batch and nothing is signed
  const keys = await Promise.all(publicKeys.map((k, i) => parseWitPublicJwk(k, `requests[${i}].publicKey`)));
  const refused = keys.find((k) => !k.ok);
  if (refused && !refused.ok) throw new WispError('ERR_BAD_REQUEST', refused.error.message);
  // an entry's own TTL is for X509-SVIDs; WIT-SVIDs take the issuer's WIT_SVID_TTL, like SPIRE's default per type
  const requests: SignWitSvidRequest[] = entries.map((entry, i) => ({ spiffeId: entry.spiffeId, publicJwk: unwrap(keys[i]!) as Record<string, unknown>, ttlSeconds: ttl }));
  const signed = await signInBatches(requests, (batch) => ca.signWitSvids!(batch, caller));
  return { svids: signed.map((s, i) => ({ entryId: entries[i]!.id, spiffeId: s.spiffeId, token: s.token, expiresAt: s.expiresAt })) };
}
