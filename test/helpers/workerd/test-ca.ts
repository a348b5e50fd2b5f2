// The real CA core (src/worker/ca/ca-core.ts) on memory storage for in-process app tests: what the
// TrustDomainCa Durable Object runs, minus the DO. It is wrapped only to count what it signs (ok results),
// so a test can prove a refused request signed nothing.
import { env } from 'cloudflare:workers';
import type { Clock } from '../../../src/shared/clock.js';
import { unwrap, type Result } from '../../../src/shared/result.js';
import type { PublishedKeys, TrustDomainCaApi } from '../../../src/worker/ca/ca-api.js';
import { createCaCore } from '../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage, type CaStorage } from '../../../src/worker/ca/ca-storage.js';
import type { RateLimitsConfig } from '../../../src/worker/ca/rate-limits.js';
import { parseCaConfig, type CaConfig } from '../../../src/worker/config.js';

export interface TestCa extends TrustDomainCaApi {
  /** the CA's configuration (lifetimes, issuer, ...) */
  readonly config: CaConfig;
  /** X509-SVIDs signed so far (ok results) */
  readonly signedX509: number;
  /** JWT-SVIDs signed so far (ok results) */
  readonly signedJwt: number;
  /** the published keys, unwrapped (uncounted: the CA makes its keys on first use, at `clock()`) */
  published(): Promise<PublishedKeys>;
}

/**
 * A CA of `trustDomain` with the test run's CA config (wrangler.toml plus test secrets), `overrides` on top;
 * over `options.storage` (a new memory one by default; an earlier CA's restarts it), with `options.rateLimits`
 * (default: the code's defaults).
 */
export function createTestCa(trustDomain: string, clock: Clock, overrides: Partial<CaConfig> = {}, options: { storage?: CaStorage; rateLimits?: RateLimitsConfig } = {}): TestCa {
  const config = { ...parseCaConfig({ ...env, TRUST_DOMAIN: trustDomain }), ...overrides };
  const core = createCaCore({ storage: options.storage ?? createMemoryCaStorage(), config, clock, rateLimits: options.rateLimits });
  let signedX509 = 0;
  let signedJwt = 0;
  const okCount = (results: Result<unknown>[]) => results.filter((r) => r.ok).length;
  return {
    config,
    get signedX509() {
      return signedX509;
    },
    get signedJwt() {
      return signedJwt;
    },
    async signX509Svids(requests, caller) {
      const results = await core.signX509Svids(requests, caller);
      signedX509 += okCount(results);
      return results;
    },
    async signJwtSvid(request, caller) {
      const result = await core.signJwtSvid(request, caller);
      signedJwt += okCount([result]);
      return result;
    },
    async signJwtSvids(requests, caller) {
      const results = await core.signJwtSvids(requests, caller);
      signedJwt += okCount(results);
      return results;
    },
    signWitSvids: (requests, caller) => core.signWitSvids(requests, caller),
    getPublishedKeys: () => core.getPublishedKeys(),
    manageAuthority: (request) => core.manageAuthority(request),
    status: () => core.status(),
    getCrls: (revoked) => core.getCrls(revoked),
    admitAttestation: (source) => core.admitAttestation(source),
    recordTelemetry: (samples) => core.recordTelemetry(samples),
    getMetrics: () => core.getMetrics(),
    published: async () => unwrap(await core.getPublishedKeys()),
  };
}
