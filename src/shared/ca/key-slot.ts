/**
 * One generic key slot for both key kinds the trust domain rotates (the X.509 CA key and the JWT signing
 * key), with SPIRE's thresholds: prepare the next key when less than min(lifetime/2, 30d) of the active one
 * remains, activate it when less than min(lifetime/6, 7d) remains. Thresholds use each key's own lifetime
 * (notAfter − issuedAt), as SPIRE's ca manager does, so a config change only affects keys minted after it.
 * @module
 */
import { DAY_MS } from '../clock.js';

/** prepared: published, not yet signing; active: signing; old: published until its notAfter, no longer signing */
export type SlotStatus = 'prepared' | 'active' | 'old';

/** The kinds of keys, each rotated by the same state machine; `wit` (WIT-SVID signing) only when WIT_SVID_TTL is set. */
export type KeyKind = 'x509' | 'jwt' | 'wit';

/** The rotation-relevant part of a key: identity, status and validity (ms since the epoch). */
export interface KeySlot {
  /** unique per key; the JWK `kid` of JWT keys */
  kid: string;
  status: SlotStatus;
  issuedAt: number;
  notAfter: number;
  /** set by an operator on an old key (SPIRE's taint): agents replace what it signed; stays published until revoked */
  tainted?: boolean;
}

/** Prepare the next key once less than lifetime/PREPARE_DIVISOR remains (SPIRE: half-life). */
export const PREPARE_DIVISOR = 2;
/** ...but never earlier than PREPARE_CAP_MS before expiry (SPIRE: 30 days). */
export const PREPARE_CAP_MS = 30 * DAY_MS;
/** Activate the prepared key once less than lifetime/ACTIVATE_DIVISOR remains (SPIRE: a sixth). */
export const ACTIVATE_DIVISOR = 6;
/** ...but never earlier than ACTIVATE_CAP_MS before expiry (SPIRE: 7 days). */
export const ACTIVATE_CAP_MS = 7 * DAY_MS;

/** The time after which the next key should be prepared while `slot` is active. */
export function prepareAt(slot: KeySlot): number {
  const lifetime = slot.notAfter - slot.issuedAt;
  return slot.notAfter - Math.min(lifetime / PREPARE_DIVISOR, PREPARE_CAP_MS);
}

/** The time after which the prepared key should replace `slot` as the active one. */
export function activateAt(slot: KeySlot): number {
  const lifetime = slot.notAfter - slot.issuedAt;
  return slot.notAfter - Math.min(lifetime / ACTIVATE_DIVISOR, ACTIVATE_CAP_MS);
}

/** True while the key may still be relied on (strictly before notAfter). */
export function isLive(slot: KeySlot, now: number): boolean {
  return now < slot.notAfter;
}

/** The keys to publish (bundle / JWKS) at `now`: every live slot, whatever its status. */
export function publishedSlots<S extends KeySlot>(slots: readonly S[], now: number): S[] {
  return slots.filter((s) => isLive(s, now));
}

/** The live active key, if any. */
export function activeSlot<S extends KeySlot>(slots: readonly S[], now: number): S | undefined {
  return slots.find((s) => s.status === 'active' && isLive(s, now));
}
