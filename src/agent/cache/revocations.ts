/**
 * The revocations and CRLs the agent last received in /sync (`SyncResponse.revocations`), as the cache holds
 * them: indexed with the shared rule (registry/revocation.ts `indexRevocations`, the one predicate) and the
 * CRLs decoded once per change, so every Workload API response reuses the same DER arrays
 * (X509SVIDResponse.crl) and an unchanged sync costs nothing.
 * @module
 */
import type { SyncRevocations } from '../../shared/agent-api.js';
import { decodeBase64 } from '../../shared/encoding/base64.js';
import { indexRevocations, parseRevocationSet, type RevocationIndex } from '../../shared/registry/revocation.js';

export interface HeldRevocations {
  /** as received (and persisted in the cache file) */
  wire: SyncRevocations;
  index: RevocationIndex;
  /** DER CRLs; the same array until the next change: callers must not modify it */
  crls: Uint8Array[];
}

export const NO_REVOCATIONS: HeldRevocations = { wire: { serials: [], spiffeIds: [], crls: [] }, index: indexRevocations({ serials: [], spiffeIds: [] }), crls: [] };

/** Reads the revocations of a sync or a cache file; throws TypeError or WispError when malformed. */
export function readRevocations(value: unknown): HeldRevocations {
  const set = parseRevocationSet(value);
  const rawCrls = (value as { crls?: unknown }).crls ?? [];
  if (!Array.isArray(rawCrls) || !rawCrls.every((c) => typeof c === 'string')) throw new TypeError('revocations.crls must be an array of base64 strings');
  const crls = rawCrls.map((c) => {
    const der = decodeBase64(c);
    if (!der || der.length === 0) throw new TypeError('revocations.crls[] is not base64');
    return der;
  });
  return { wire: { ...set, crls: rawCrls }, index: indexRevocations(set), crls };
}

