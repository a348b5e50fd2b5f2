/**
 * The issuer's rate limits (issue 20; SPIRE's server `ratelimit`): node attestation attempts per source
 * address, X.509 and JWT-SVID signing per caller (the agent ID), a call costing one token per SVID. They are
 * counted in the CA Durable Object, one per trust domain, so every isolate sees the same buckets, and each
 * bucket is written to the DO's storage (ca-storage.ts `BucketStorage`) when it passes a call, so a restarted
 * object keeps the counts. Buckets are the token buckets of src/shared/rate-limit/token-bucket.ts; the
 * limits come from the RATE_LIMITS JSON var (schema below). Documented in docs/agent-api.md "Rate limits".
 * @module
 */
import * as v from 'valibot';
import type { Clock } from '../../shared/clock.js';
import { jsonText, knownKeys, plainObject } from '../../shared/config/schema.js';
import type { WispErrorData } from '../../shared/errors.js';
import { burstOf, isUnlimited, retryAfterSeconds, takeTokens, type BucketState, type RateLimit } from '../../shared/rate-limit/token-bucket.js';
import { err, ok, type Result } from '../../shared/result.js';
import { MAX_SIGN_BATCH } from './ca-api.js';
import type { BucketStorage } from './ca-storage.js';

export type RateLimitKind = 'attestation' | 'x509Signing' | 'jwtSigning';
export type RateLimitsConfig = Record<RateLimitKind, Required<RateLimit>>;

/**
 * Rates are SPIRE's (1 attestation/s per address, 500 signatures/s per caller). Bursts are larger: 100
 * attestations let a fleet behind one NAT address boot at once, and the signing bursts let one agent sign at
 * the CA's full speed for a while (`npm run bench` drives one agent through about 100,000 X509-SVIDs and
 * 600,000 JWT-SVIDs in a minute) before it is held to the rate.
 */
export const RATE_LIMIT_DEFAULTS: RateLimitsConfig = {
  attestation: { ratePerSecond: 1, burst: 100 },
  x509Signing: { ratePerSecond: 500, burst: 200_000 },
  jwtSigning: { ratePerSecond: 500, burst: 1_000_000 },
};

const WHAT: Record<RateLimitKind, string> = { attestation: 'node attestation', x509Signing: 'X509-SVID signing', jwtSigning: 'JWT-SVID signing' };
/** Buckets kept in memory in front of storage (the object is their only writer, so the copy stays true). */
const CACHED_BUCKETS_MAX = 10_000;
/** Every this many bucket writes, buckets that have refilled completely (the same as none) are deleted. */
const PRUNE_EVERY_WRITES = 1000;
const MAX_VALUE = 1e9;
const OK: Result<true> = Object.freeze(ok(true as const));

const limitSchema = (minBurst: number) =>
  v.pipe(
    plainObject('must be an object {"ratePerSecond": n, "burst": n}'),
    knownKeys({
      ratePerSecond: v.pipe(v.number('must be a number (0 = unlimited)'), v.minValue(0, 'must be at least 0 (0 = unlimited)'), v.maxValue(MAX_VALUE, `must be at most ${MAX_VALUE}`)),
      burst: v.optional(v.pipe(v.number('must be a whole number'), v.integer('must be a whole number'), v.minValue(1, 'must be at least 1'), v.maxValue(MAX_VALUE, `must be at most ${MAX_VALUE}`))),
    }),
    v.transform((l): Required<RateLimit> => ({ ratePerSecond: l.ratePerSecond, burst: burstOf(l) })),
    // a call the bucket can never hold would be refused forever: the Worker sends up to MAX_SIGN_BATCH per call
    v.check((l) => isUnlimited(l) || l.burst >= minBurst, `burst must be at least ${minBurst} (the most SVIDs signed in one CA call)`),
  );

const RATE_LIMITS_SCHEMA = knownKeys({
  attestation: v.optional(limitSchema(1)),
  x509Signing: v.optional(limitSchema(MAX_SIGN_BATCH)),
  jwtSigning: v.optional(limitSchema(MAX_SIGN_BATCH)),
});

/** The RATE_LIMITS var: unset or empty = the defaults; each kind left out keeps its default. */
export const RATE_LIMITS_ENTRY = v.pipe(
  v.optional(v.string(), ''),
  v.transform((s) => (s.trim() === '' ? '{}' : s)),
  jsonText('must be a JSON object'),
  plainObject('must be a JSON object'),
  RATE_LIMITS_SCHEMA,
  v.transform((c): RateLimitsConfig => ({ ...RATE_LIMIT_DEFAULTS, ...c }) as RateLimitsConfig),
);

export interface RateLimiter {
  /** Takes `cost` tokens from the bucket of (`kind`, `key`); refused: ERR_RATE_LIMITED with retryAfterSeconds. */
  take(kind: RateLimitKind, key: string, cost: number): Result<true>;
}

export function createRateLimiter(limits: RateLimitsConfig, storage: BucketStorage, clock: Clock): RateLimiter {
  const cache = new Map<string, BucketState>();
  let writes = 0;

  function prune(now: number): void {
    for (const kind of Object.keys(limits) as RateLimitKind[]) {
      const limit = limits[kind];
      if (!isUnlimited(limit)) storage.prune(kind, now - Math.ceil((limit.burst * 1000) / limit.ratePerSecond));
    }
    cache.clear();
  }

  /** Keeps `state`, as stored, as the most recently used copy of bucket `id`. */
  function remember(id: string, state: BucketState | undefined): void {
    cache.delete(id);
    if (state) cache.set(id, state);
    if (cache.size > CACHED_BUCKETS_MAX) cache.delete(cache.keys().next().value!);
  }

  return {
    take(kind, key, cost) {
      const limit = limits[kind];
      if (isUnlimited(limit) || cost <= 0) return OK;
      if (cost > limit.burst) return err<WispErrorData>({ code: 'ERR_REQUEST_TOO_LARGE', message: `at most ${limit.burst} per call under the ${WHAT[kind]} rate limit` });
      const now = clock();
      const id = `${kind}\n${key}`;
      const stored = cache.get(id) ?? storage.get(kind, key);
      const taken = takeTokens(limit, stored, now, cost);
      remember(id, taken.ok ? taken.state : stored);
      if (!taken.ok) {
        // a refusal writes nothing: a flood of refused calls costs no storage
        const seconds = retryAfterSeconds(taken.retryAfterMs);
        return err<WispErrorData>({ code: 'ERR_RATE_LIMITED', message: `${WHAT[kind]} rate limit exceeded; retry after ${seconds}s`, retryAfterSeconds: seconds });
      }
      storage.put(kind, key, taken.state);
      if (++writes % PRUNE_EVERY_WRITES === 0) prune(now);
      return OK;
    },
  };
}
