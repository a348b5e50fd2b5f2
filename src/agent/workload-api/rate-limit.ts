/**
 * Per-caller rate limits on the agent socket (SPIRE 1.13's experimental `ratelimit` block): one token bucket
 * per method and per attested selector set, so one noisy workload (or a reconnection storm) cannot starve
 * the others. Enforced after workload attestation by `createCallerAttestation` (./handler.ts), the one
 * place both the Workload API and SDS attest a caller; streams are limited when they open, unary calls per
 * call. A refusal is Unavailable, as in SPIRE. The buckets are src/shared/rate-limit/token-bucket.ts's.
 *
 * The key is the caller's full selector set (`selectorSetKey`, sorted); callers with an empty set share one
 * `<unattested>` bucket. `wisp-agent healthcheck` runs as a separate process the agent cannot tell from a
 * workload, so instead of exempting a caller it treats a rate-limit refusal as healthy (src/agent/cli/api.ts):
 * the agent answered, after attesting the caller, so it is up.
 * @module
 */
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import { KeyedBuckets } from '../../shared/rate-limit/token-bucket.js';
import { selectorSetKey, type Selector } from '../../shared/registry/selectors.js';
import type { PeerInfo } from './unix-attestor.js';

/** The limited methods by config key (camelCase of SPIRE's `ratelimit` keys) → gRPC method name (the metric's `method` label). */
export const RATE_LIMITED_METHODS = {
  fetchX509Svid: 'FetchX509SVID',
  fetchJwtSvid: 'FetchJWTSVID',
  fetchX509Bundles: 'FetchX509Bundles',
  fetchJwtBundles: 'FetchJWTBundles',
  streamSecrets: 'StreamSecrets',
  fetchSecrets: 'FetchSecrets',
} as const;

export type RateLimitKey = keyof typeof RATE_LIMITED_METHODS;
export type RateLimitedMethod = (typeof RATE_LIMITED_METHODS)[RateLimitKey];

/** Calls (unary) or stream opens per second per selector set; 0 or absent: unlimited (SPIRE's default). */
export type WorkloadRateLimits = Partial<Record<RateLimitKey, number>>;

/** The start of every refusal's message; the healthcheck recognises a refusal by it. */
export const RATE_LIMIT_EXCEEDED = 'rate limit exceeded';
/** The shared bucket of callers with no selectors (SPIRE's name). */
export const UNATTESTED_KEY = '<unattested>';
/** A refused (method, selector set) is logged at most once per this interval, with the count it stood for. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** Selector sets whose buckets (and log state) are kept per method; least recently used dropped first. */
const MAX_KEYS = 10_000;

export interface CallerRateLimiter {
  /** false when every limit is 0: callers skip `check` entirely (the hot path costs one branch) */
  readonly active: boolean;
  /** Takes a token of `method` for this caller; throws WispError ERR_UNAVAILABLE when there is none. */
  check(method: RateLimitedMethod, selectors: readonly Selector[], peer: PeerInfo): void;
  /** Refusals per method since start (SPIRE's `workload_api.rate_limit_exceeded`, label `method`), for telemetry. */
  exceeded(): Record<RateLimitedMethod, number>;
}

export interface CallerRateLimiterDeps {
  clock: Clock;
  /** the agent's logger (structurally: config.ts imports this module, and log.ts imports config.ts) */
  log?: { warn(fields: object, message: string): void };
}

/**
 * @example
 * const limiter = createCallerRateLimiter({ fetchJwtSvid: 500 }, { clock, log });
 * const attest = createCallerAttestation({ attest: createUnixAttestor(), source: cache, limiter, log });
 */
export function createCallerRateLimiter(limits: WorkloadRateLimits, deps: CallerRateLimiterDeps): CallerRateLimiter {
  const buckets = new Map<RateLimitedMethod, KeyedBuckets>();
  const counts = Object.fromEntries(Object.values(RATE_LIMITED_METHODS).map((m) => [m, 0])) as Record<RateLimitedMethod, number>;
  for (const [key, method] of Object.entries(RATE_LIMITED_METHODS) as [RateLimitKey, RateLimitedMethod][]) {
    const rate = limits[key] ?? 0;
    if (rate > 0) buckets.set(method, new KeyedBuckets({ ratePerSecond: rate }, MAX_KEYS));
  }
  /** per method + selector set: when a refusal was last logged, and how many were refused since */
  const logged = new Map<string, { at: number; suppressed: number }>();

  function logRefusal(method: RateLimitedMethod, key: string, peer: PeerInfo, now: number) {
    const id = `${method} ${key}`;
    const last = logged.get(id);
    if (last && now - last.at >= 0 && now - last.at < REFUSAL_LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    if (!last && logged.size >= MAX_KEYS) logged.clear(); // a bound, not an LRU: at worst a few extra lines
    logged.set(id, { at: now, suppressed: 0 });
    deps.log?.warn(
      { method, selectors: key, pid: peer.pid, uid: peer.uid, refused_since_last_log: last?.suppressed ?? 0, limit_per_second: buckets.get(method)!.limit.ratePerSecond },
      'Workload API rate limit exceeded',
    );
  }

  return {
    active: buckets.size > 0,
    check(method, selectors, peer) {
      const bucket = buckets.get(method);
      if (!bucket) return;
      const key = selectors.length === 0 ? UNATTESTED_KEY : selectorSetKey(selectors);
      const now = deps.clock();
      const taken = bucket.take(key, now);
      if (taken.ok) return;
      counts[method]++;
      logRefusal(method, key, peer, now);
      throw new WispError(
        'ERR_UNAVAILABLE',
        `${RATE_LIMIT_EXCEEDED}: ${method} allows ${bucket.limit.ratePerSecond} per second per selector set; retry in ${taken.retryAfterMs} ms`,
      );
    },
    exceeded: () => ({ ...counts }),
  };
}
