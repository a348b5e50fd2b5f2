/**
 * The trust domain's CA Durable Object: one per trust domain (idFromName(trustDomain)), the single writer
 * of the X.509 CA key and the JWT signing key. A facade over the runtime-free core (ca-core.ts): it loads
 * the DO's SQLite storage (do-ca-storage.ts) under blockConcurrencyWhile, parses only the CA's config
 * (parseCaConfig, parseRateLimitsConfig), runs rotations under blockConcurrencyWhile, and forwards alarms. Every RPC method
 * returns plain data (Result): error classes do not survive DO RPC.
 * @module
 */
import { DurableObject } from 'cloudflare:workers';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { WispErrorData } from '../../shared/errors.js';
import { err, type Result } from '../../shared/result.js';
import type { MetricSample } from '../../shared/telemetry/issuer-names.js';
import { parseCaConfig, parseRateLimitsConfig } from '../config.js';
import { logEvent } from '../log.js';
import type { AuthorityResult } from '../../shared/ca/local-authority.js';
import type { AuthorityRequest, PublishedKeys, RevokedSerial, SignedCrl, SignedJwtSvid, SignedX509Svid, SignJwtSvidRequest, SignedWitSvid, SignWitSvidRequest, SignX509SvidRequest, TrustDomainCaApi } from './ca-api.js';
import { createCaCore, type CaCore } from './ca-core.js';
import type { CaStorage } from './ca-storage.js';
import { createDoCaStorage } from './do-ca-storage.js';
import { notifyEveryAgent } from '../notifier/rotation-notice.js';

/**
 * Replaces the CA's clock, for tests only: `runInDurableObject(stub, (ca) => ca[CA_CLOCK](() => t))`.
 * A symbol-keyed method is not reachable over RPC (only string-named methods are).
 */
export const CA_CLOCK = Symbol.for('wisp.trustDomainCa.clock');

const NOT_READY = err<WispErrorData>({ code: 'ERR_CA_NOT_READY', message: 'the trust domain CA is not ready' });

/** One instance per trust domain. Holds the CA and JWT keys; single writer. */
export class TrustDomainCa extends DurableObject<Env> implements TrustDomainCaApi {
  #clock: Clock = systemClock;
  #storage: CaStorage | undefined;
  #core: CaCore | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      this.#storage = createDoCaStorage(ctx.storage);
    });
  }

  [CA_CLOCK](clock: Clock): void {
    this.#clock = clock;
  }

  async signX509Svids(requests: SignX509SvidRequest[], caller?: string): Promise<Result<SignedX509Svid>[]> {
    const core = this.#coreOrNull();
    return core ? core.signX509Svids(requests, caller) : notReadyBatch(requests);
  }

  async signJwtSvid(request: SignJwtSvidRequest, caller?: string): Promise<Result<SignedJwtSvid>> {
    return this.#coreOrNull()?.signJwtSvid(request, caller) ?? NOT_READY;
  }

  async signJwtSvids(requests: SignJwtSvidRequest[], caller?: string): Promise<Result<SignedJwtSvid>[]> {
    const core = this.#coreOrNull();
    return core ? core.signJwtSvids(requests, caller) : notReadyBatch(requests);
  }

  async signWitSvids(requests: SignWitSvidRequest[], caller?: string): Promise<Result<SignedWitSvid>[]> {
    const core = this.#coreOrNull();
    return core ? core.signWitSvids(requests, caller) : notReadyBatch(requests);
  }

  async admitAttestation(source: string): Promise<Result<true>> {
    return this.#coreOrNull()?.admitAttestation(source) ?? NOT_READY;
  }

  async getPublishedKeys(): Promise<Result<PublishedKeys>> {
    return this.#coreOrNull()?.getPublishedKeys() ?? NOT_READY;
  }

  async manageAuthority(request: AuthorityRequest): Promise<Result<AuthorityResult>> {
    return this.#coreOrNull()?.manageAuthority(request) ?? NOT_READY;
  }

  async getCrls(revoked: RevokedSerial[]): Promise<Result<SignedCrl[]>> {
    return this.#coreOrNull()?.getCrls(revoked) ?? NOT_READY;
  }

  async recordTelemetry(samples: MetricSample[]): Promise<Result<true>> {
    return this.#coreOrNull()?.recordTelemetry(samples) ?? NOT_READY;
  }

  async getMetrics(): Promise<Result<MetricSample[]>> {
    return this.#coreOrNull()?.getMetrics() ?? NOT_READY;
  }

  async status(): Promise<{ ready: boolean }> {
    return this.#coreOrNull()?.status() ?? { ready: false };
  }

  override async alarm(): Promise<void> {
    const core = this.#coreOrNull();
    if (core) await core.alarm();
    else logEvent('error', 'CA rotation failed', { reason: 'the CA configuration is invalid' });
  }

  /**
   * The core, made on first use (configuration is read then, so a bad one fails calls, not the object).
   * Synchronous from parse to load: no other call interleaves. Null, logged, when the config is invalid.
   */
  #coreOrNull(): CaCore | null {
    if (this.#core) return this.#core;
    let config, rateLimits;
    try {
      config = parseCaConfig(this.env);
      rateLimits = parseRateLimitsConfig(this.env);
    } catch (e) {
      logEvent('error', 'CA not ready', { cause: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      return null;
    }
    this.#core = createCaCore({
      storage: this.#storage!,
      config,
      rateLimits,
      clock: () => this.#clock(),
      // A throw inside blockConcurrencyWhile would reset the object: the core carries failures out as values.
      exclusive: (fn) => this.ctx.blockConcurrencyWhile(fn),
      onRotated: () => this.ctx.waitUntil(notifyEveryAgent(this.env, config.trustDomain)),
    });
    return this.#core;
  }
}

function notReadyBatch(requests: unknown): Result<never>[] {
  return Array.isArray(requests) ? requests.map(() => NOT_READY) : [err<WispErrorData>({ code: 'ERR_BAD_REQUEST', message: 'requests must be an array' })];
}
