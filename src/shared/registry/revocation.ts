/**
 * Per-SVID revocation (beyond SPIRE): what is revoked and how an X509-SVID is judged against it. The issuer
 * keeps no record per SVID it signs (the signing path writes nothing), so two kinds of revocation exist:
 * - a serial: one X509-SVID, by the serial the issuer wrote in it (`SignedX509Svid.serialNumber`); these
 *   also go into the CRL (worker/ca/crl.ts);
 * - a SPIFFE ID cutoff: every X509-SVID of that ID issued before `revokedAt` (revoke by SPIFFE ID or by
 *   entry). The CRL cannot name them (their serials are unknown); agents replace them and the agent API
 *   refuses agent SVIDs under a cutoff.
 * Used by the issuer (admin routes, agent-auth, /sync) and by the agent (which SVIDs to drop).
 * @module
 */
import { normalizeSerialNumber } from '../agent-proof.js';
import { WispError } from '../errors.js';
import { X509_SVID_BACKDATE_MS } from '../spiffe/x509-svid-backdate.js';

/** Longest reason text kept with a revocation. */
export const MAX_REVOCATION_REASON_CHARS = 256;
/** Longest serial accepted (RFC 5280 §4.1.2.2: at most 20 octets). */
const MAX_SERIAL_HEX_CHARS = 40;

/** One revocation as stored and listed (times: seconds since the epoch). */
export interface SvidRevocation {
  kind: 'serial' | 'spiffe_id';
  /** normalized serial (`normalizeSerialNumber`); '' for a SPIFFE ID cutoff */
  serialNumber: string;
  /** the SVID's SPIFFE ID; '' for a serial whose SPIFFE ID the issuer does not know */
  spiffeId: string;
  /** when the revoked SVIDs have all expired: the row may be pruned after this */
  expiresAt: number;
  /** when it was revoked; for a SPIFFE ID cutoff, every SVID of that ID issued before this is revoked */
  revokedAt: number;
  reason: string;
}

/** The revocations sent to an agent in /sync (SyncResponse.revocations): the complete set that concerns it. */
export interface RevocationSet {
  /** normalized serials */
  serials: string[];
  /** SPIFFE ID cutoffs, seconds */
  spiffeIds: Array<{ spiffeId: string; revokedAt: number }>;
}

/** A serial as an admin writes it (hex, optional colons, any case, leading zeros) in the issuer's form. */
export function parseSerialNumber(value: unknown, what = 'serialNumber'): string {
  if (typeof value !== 'string') throw new WispError('ERR_BAD_REQUEST', `${what} must be a hex string`);
  const hex = value.replaceAll(':', '');
  if (!/^[0-9a-fA-F]{1,64}$/.test(hex)) throw new WispError('ERR_BAD_REQUEST', `${what} must be a hex string`);
  const normalized = normalizeSerialNumber(hex);
  if (normalized.length > MAX_SERIAL_HEX_CHARS) throw new WispError('ERR_BAD_REQUEST', `${what} is longer than 20 octets`);
  return normalized;
}

/** An optional reason: a string of at most MAX_REVOCATION_REASON_CHARS. */
export function parseRevocationReason(value: unknown): string {
  if (value === undefined) return '';
  if (typeof value !== 'string' || value.length > MAX_REVOCATION_REASON_CHARS) {
    throw new WispError('ERR_BAD_REQUEST', `reason must be a string of at most ${MAX_REVOCATION_REASON_CHARS} characters`);
  }
  return value;
}

/**
 * The cutoff a SPIFFE ID revocation made at `nowMs` records, seconds. Certificates carry whole seconds and
 * notBefore is backdated, so the issue second is notBefore + backdate: rounding up revokes everything
 * issued up to the revocation itself (and, for under a second after it, SVIDs issued meanwhile).
 */
export function spiffeIdCutoff(nowMs: number): number {
  return Math.floor(nowMs / 1000) + 1;
}

/**
 * Whether an X509-SVID was issued before `cutoff` (seconds), from its notBefore (ms) less the backdate. An
 * SVID signed in the first 10 s of its CA key has notBefore clipped to the key's and is judged up to 10 s
 * late; only a trust domain's first key signs that early (later keys are prepared long before they sign).
 */
export function issuedBefore(notBeforeMs: number, cutoff: number): boolean {
  return notBeforeMs + X509_SVID_BACKDATE_MS < cutoff * 1000;
}

/** A set of revocations indexed for lookups (agent cache, tests). */
export interface RevocationIndex {
  isRevoked(svid: { serialNumber: string; spiffeId: string; notBeforeMs: number }): boolean;
}

export function indexRevocations(set: RevocationSet): RevocationIndex {
  const serials = new Set(set.serials.map(normalizeSerialNumber));
  const cutoffs = new Map<string, number>();
  for (const { spiffeId, revokedAt } of set.spiffeIds) cutoffs.set(spiffeId, Math.max(revokedAt, cutoffs.get(spiffeId) ?? 0));
  return {
    isRevoked({ serialNumber, spiffeId, notBeforeMs }) {
      if (serials.has(normalizeSerialNumber(serialNumber))) return true;
      const cutoff = cutoffs.get(spiffeId);
      return cutoff !== undefined && issuedBefore(notBeforeMs, cutoff);
    },
  };
}

/** Reads a RevocationSet from the wire (the agent's side); malformed members are an error. */
export function parseRevocationSet(value: unknown): RevocationSet {
  const v = value as Partial<RevocationSet> | null;
  if (typeof v !== 'object' || v === null || !Array.isArray(v.serials) || !Array.isArray(v.spiffeIds)) throw new TypeError('revocations must have serials and spiffeIds arrays');
  const serials = v.serials.map((s) => parseSerialNumber(s, 'revocations.serials[]'));
  const spiffeIds = v.spiffeIds.map((c) => {
    if (typeof c !== 'object' || c === null || typeof c.spiffeId !== 'string' || !Number.isSafeInteger(c.revokedAt)) throw new TypeError('revocations.spiffeIds[] must be {spiffeId, revokedAt}');
    return { spiffeId: c.spiffeId, revokedAt: c.revokedAt };
  });
  return { serials, spiffeIds };
}
