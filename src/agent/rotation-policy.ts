/**
 * When the agent renews things and how long it waits after a failure. Pure: time and randomness are
 * arguments (STYLE G7), so tests walk timelines without fake timers.
 * @module
 */

/** Most of an SVID's lifetime that jitter may pull its renewal forward by (0.1 = renew in [40%, 50%]). */
export const ROTATION_JITTER_FRACTION = 0.1;
/** First retry delay after a failed call to the issuer. */
export const BACKOFF_BASE_MS = 1_000;
/** Longest retry delay. */
export const BACKOFF_CAP_MS = 60_000;

/**
 * True once an SVID should be renewed: at half of its lifetime (SPIRE rotationutil), pulled earlier by
 * `jitter` ∈ [0, 1) × ROTATION_JITTER_FRACTION of the lifetime, so many SVIDs issued together do not all
 * renew at the same instant. All times in the same unit.
 * @example shouldRotate(0, 3600_000, 1800_000) === true
 */
export function shouldRotate(notBefore: number, notAfter: number, now: number, jitter = 0): boolean {
  const lifetime = notAfter - notBefore;
  if (lifetime <= 0) return true;
  return now >= notBefore + lifetime * (0.5 - ROTATION_JITTER_FRACTION * clamp01(jitter));
}

/** When a JWT-SVID (or WIT-SVID) stops being handed out again: at half of its lifetime. */
export function jwtSvidFreshUntil(issuedAt: number, expiresAt: number): number {
  return issuedAt + (expiresAt - issuedAt) / 2;
}

/** True while a JWT-SVID may be handed out again: more than half of its lifetime remains. */
export function isJwtSvidFresh(issuedAt: number, expiresAt: number, now: number): boolean {
  return now < jwtSvidFreshUntil(issuedAt, expiresAt);
}

/**
 * Capped exponential backoff with "equal jitter": attempt 1 waits in [base/2, base], attempt n in
 * [d/2, d] with d = min(cap, base · 2^(n-1)). `random` ∈ [0, 1).
 */
export function backoffDelayMs(attempt: number, random: number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.round(exp / 2 + (exp / 2) * clamp01(random));
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x >= 1 ? 0.999999 : x;
}
