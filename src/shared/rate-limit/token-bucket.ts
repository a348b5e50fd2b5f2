/**
 * Token buckets, the one rate-limit rule of Wisp (issuer and agent alike): a bucket holds up to `burst`
 * tokens, refills at `ratePerSecond`, and a request of cost n passes only if n tokens are there. Pure state
 * in, state out, so the issuer can persist a bucket in a Durable Object and the agent can keep many in memory.
 * SPIRE's limiters (golang.org/x/time/rate) behave the same with burst = rate.
 * @module
 */

/** A limit: `ratePerSecond` 0 means unlimited (SPIRE's "0 disables"). */
export interface RateLimit {
  ratePerSecond: number;
  /** most tokens the bucket holds; defaults to max(1, ratePerSecond) */
  burst?: number;
}

/** A bucket's state: tokens left at `updatedAt` (ms since the epoch). Plain data, so it can be stored. */
export interface BucketState {
  tokens: number;
  updatedAt: number;
}

export type TakeResult =
  | { ok: true; state: BucketState }
  /** `retryAfterMs`: when `cost` tokens will be there again (the caller rounds up to seconds for Retry-After) */
  | { ok: false; state: BucketState; retryAfterMs: number };

export function burstOf(limit: RateLimit): number {
  return limit.burst ?? Math.max(1, limit.ratePerSecond);
}

export function isUnlimited(limit: RateLimit): boolean {
  return limit.ratePerSecond <= 0;
}

/** The state of a bucket nobody has used yet: full. */
export function fullBucket(limit: RateLimit, now: number): BucketState {
  return { tokens: burstOf(limit), updatedAt: now };
}

/**
 * Takes `cost` tokens from `state` at `now`. A cost above the burst can never pass: it is refused with the
 * time the full bucket would need (callers split such work or reject it outright). Time going backwards
 * (a clock step) refills nothing.
 */
export function takeTokens(limit: RateLimit, state: BucketState | undefined, now: number, cost = 1): TakeResult {
  const burst = burstOf(limit);
  const current = state ?? fullBucket(limit, now);
  if (isUnlimited(limit)) return { ok: true, state: current };
  const elapsedMs = Math.max(0, now - current.updatedAt);
  const tokens = Math.min(burst, current.tokens + (elapsedMs * limit.ratePerSecond) / 1000);
  const refilled: BucketState = { tokens, updatedAt: Math.max(now, current.updatedAt) };
  if (cost <= tokens) return { ok: true, state: { tokens: tokens - cost, updatedAt: refilled.updatedAt } };
  const missing = Math.min(cost, burst) - tokens + Math.max(0, cost - burst);
  return { ok: false, state: refilled, retryAfterMs: Math.ceil((missing * 1000) / limit.ratePerSecond) };
}

/** Seconds for an HTTP `Retry-After` header: whole seconds, at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/**
 * Many buckets by key in memory (the agent's per-selector-set buckets, an isolate's cache), at most
 * `maxKeys` of them: the least recently used is dropped first. A dropped bucket comes back full, which only
 * ever errs towards letting a request through, so the cap bounds memory without making anyone wait longer.
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, BucketState>();

  constructor(
    readonly limit: RateLimit,
    readonly maxKeys = 10_000,
  ) {}

  take(key: string, now: number, cost = 1): TakeResult {
    const result = takeTokens(this.limit, this.#buckets.get(key), now, cost);
    if (isUnlimited(this.limit)) return result;
    this.#buckets.delete(key);
    this.#buckets.set(key, result.state);
    if (this.#buckets.size > this.maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    return result;
  }

  get size(): number {
    return this.#buckets.size;
  }
}
