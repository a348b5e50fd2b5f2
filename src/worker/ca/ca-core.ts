/**
 * The trust domain's CA, runtime-free: key slots (prepared/active/old, shared/ca/key-slot.ts), the shared
 * rotation plan (shared/ca/rotation.ts) applied from the alarm and lazily on each call, issuance, and the
 * published view. Storage and clock are parameters (ca-storage.ts: DO SQLite in production, memory in
 * Node and tests); every method returns Result data, so it can sit behind DO RPC as it is. Every rule about
 * what it signs lives in src/shared/spiffe. Nothing here or below imports cloudflare:*. It is over 400 lines
 * because one class owns the three key kinds' slots (x509, jwt, wit) and the calls that sign with them; the
 * signing pieces already live apart (sign-requests.ts, wit-signing.ts, rate-limits.ts, published-keys.ts).
 * @module
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import type { Clock } from '../../shared/clock.js';
import type { WispErrorData } from '../../shared/errors.js';
import { activeSlot, publishedSlots, type KeyKind } from '../../shared/ca/key-slot.js';
import { applyRotationAction, changesPublishedSet, nextRotationCheck, planRotation, type AuthorityAction } from '../../shared/ca/rotation.js';
import type { AuthorityResult } from '../../shared/ca/local-authority.js';
import { err, ok, type Result } from '../../shared/result.js';
import type { PublishedJwk } from '../../shared/spiffe/bundle.js';
import type { JwtSigningAlgorithm } from '../../shared/spiffe/jwt-svid.js';
import { createJwtSvidMinter, type JwtSvidMinter } from '../../shared/spiffe/jwt-svid-minter.js';
import { createWitSvidMinter, type WitSvidMinter } from '../../shared/spiffe/wit-svid.js';
import { createWitSigner, WIT_OFF } from './wit-signing.js';
import { issueX509Svid, validateX509Svid } from '../../shared/spiffe/x509-svid.js';
import { createX509SvidTemplate, issueFromTemplate, type X509SvidTemplate } from '../../shared/spiffe/x509-svid-template.js';
import { toBase64 } from '../../shared/encoding/base64.js';
import { signingParams, type SigningCa } from '../../shared/spiffe/x509.js';
import type { CaConfig } from '../config.js';
import { logEvent } from '../log.js';
import { MAX_SIGN_BATCH, type AuthorityRequest, type PublishedKeys, type RevokedSerial, type SignedCrl, type SignedJwtSvid, type SignedX509Svid, type SignJwtSvidRequest, type SignedWitSvid, type SignWitSvidRequest, type SignX509SvidRequest, type TrustDomainCaApi } from './ca-api.js';
import { createSlotKey, openSlotKey, type LoadedKey } from './ca-keys.js';
import { createCrlSigner } from './crl.js';
import type { CaStorage, SlotWrite, StoredSlot } from './ca-storage.js';
import { manageAuthority, taintedAuthorities, type AuthorityHost } from './local-authority.js';
import { createSignRequestChecks, type SignRequestChecks } from './sign-requests.js';
import { deriveKeyEncryptionKey } from './key-crypto.js';
import { loadUpstreamCa, type UpstreamCa } from './upstream-ca.js';
import { createRateLimiter, RATE_LIMIT_DEFAULTS, type RateLimiter, type RateLimitsConfig } from './rate-limits.js';
import { createCaMetrics, type CaMetrics } from './metrics.js';
import type { MetricSample } from '../../shared/telemetry/issuer-names.js';

/** Bundle refresh hint ceiling, seconds. */
const MAX_REFRESH_HINT_SECONDS = 300;
const TOO_LARGE: Result<never> = Object.freeze(err<WispErrorData>({ code: 'ERR_REQUEST_TOO_LARGE', message: `at most ${MAX_SIGN_BATCH} SVIDs per call` }));
/** Longest rate-limit key (an agent's SPIFFE ID, an address) the CA accepts. */
const MAX_RATE_KEY_CHARS = 2048;
const NOT_READY: Result<never> = Object.freeze(err<WispErrorData>({ code: 'ERR_CA_NOT_READY', message: 'the trust domain CA is not ready' }));

export interface CaCoreOptions {
  storage: CaStorage;
  config: CaConfig;
  clock: Clock;
  /** the RATE_LIMITS var (parseRateLimitsConfig); default: RATE_LIMIT_DEFAULTS */
  rateLimits?: RateLimitsConfig;
  /** Runs a rotation with no other call interleaved (the DO: blockConcurrencyWhile). Default: runs it. */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Called after a rotation changed the keys (alarm or lazy), once it is stored: agents are told to sync. */
  onRotated?: () => void;
}

/** The CA's RPC surface plus the alarm handler (rotation; sets the next alarm). */
export interface CaCore extends TrustDomainCaApi {
  signWitSvids(requests: SignWitSvidRequest[], caller?: string): Promise<Result<SignedWitSvid>[]>;
  alarm(): Promise<void>;
}

/** A CA over `storage`, starting from what it holds (load it where no call can interleave, e.g. a DO constructor). */
export function createCaCore(options: CaCoreOptions): CaCore {
  return new TrustDomainCaCore(options);
}

class TrustDomainCaCore implements CaCore {
  readonly #storage: CaStorage;
  readonly #config: CaConfig;
  readonly #clock: Clock;
  readonly #onRotated: (() => void) | undefined;
  readonly #exclusive: <T>(fn: () => Promise<T>) => Promise<T>;
  readonly #checks: SignRequestChecks;
  readonly #limits: RateLimiter;
  readonly #metrics: CaMetrics;
  #slots: StoredSlot[];
  #sequence: number;
  /** the rotation under way, if any: concurrent callers wait for it instead of rotating again */
  #rotating: Promise<{ e: unknown } | undefined> | undefined;
  #kek: Promise<CryptoKey> | undefined;
  #upstream: Promise<UpstreamCa | undefined> | undefined;
  #keys = new Map<string, LoadedKey>();
  /** per X.509 CA kid: the lean issuance template, or null when its self-check failed (then the slow path) */
  #templates = new Map<string, X509SvidTemplate | null>();
  /** per JWT kid */
  #jwtMinters = new Map<string, JwtSvidMinter>();
  /** per WIT kid */
  #witMinters = new Map<string, WitSvidMinter>();
  /** the kinds this CA rotates: WIT keys only with the profile on (WIT_SVID_TTL) */
  readonly #kinds: readonly KeyKind[];
  readonly #crls = createCrlSigner();

  constructor(options: CaCoreOptions) {
    this.#storage = options.storage;
    this.#config = options.config;
    this.#clock = options.clock;
    this.#exclusive = options.exclusive ?? ((fn) => fn());
    this.#onRotated = options.onRotated;
    this.#checks = createSignRequestChecks(options.config.trustDomain);
    this.#limits = createRateLimiter(options.rateLimits ?? RATE_LIMIT_DEFAULTS, options.storage.buckets, options.clock);
    this.#metrics = createCaMetrics(options.storage.metrics);
    this.#kinds = options.config.witSvidTtlSeconds !== undefined ? ['x509', 'jwt', 'wit'] : ['x509', 'jwt'];
    const state = options.storage.load();
    this.#slots = state.slots;
    this.#sequence = state.sequence;
  }

  signX509Svids(requests: SignX509SvidRequest[], caller?: string): Promise<Result<SignedX509Svid>[]> {
    return this.#signBatch('x509', requests, caller, async (active, now) => {
      const key = await this.#loadKey(active);
      const upstream = await this.#upstreamCa();
      const intermediates = upstream ? [active.certDer!, ...upstream.intermediates] : [];
      const signing = { cert: key.cert!, privateKey: key.privateKey, signAlgorithm: signingParams('EC P-256').signAlg };
      const template = await this.#templateFor(active.kid, signing, now);
      // Chains share their intermediates: encoded to base64 once per call.
      const intermediatesB64 = intermediates.map((d) => toBase64(d));
      // Parsed only for the slow path (ASN.1 decoding is what costs; see x509-svid-template.ts).
      let roots: X509Certificate[] | undefined;
      return async (req) => {
        const checked = this.#checks.x509(req);
        if (!checked.ok) return checked;
        const { spiffeId, spki } = checked.value;
        const params = { spiffeId, publicKeySpki: spki, dnsNames: req.dnsNames, ttlSeconds: req.ttlSeconds, now };
        let valid: Result<{ leaf: Uint8Array; notAfter: number; serialNumber: string }>;
        try {
          if (template) {
            // The template was validated when it was made; each fill is checked by issueFromTemplate.
            const issued = await issueFromTemplate(template, params);
            valid = ok({ leaf: issued.der, notAfter: issued.notAfter, serialNumber: issued.serialNumber });
          } else {
            const leaf = await issueX509Svid(params, signing);
            roots ??= (upstream ? [upstream.root] : publishedSlots(this.#slotsOf('x509'), now).map((s) => s.certDer!)).map((d) => new X509Certificate(d.slice()));
            // STYLE G9: refuse to return an SVID the validator (the same one relying parties use) rejects.
            const checkedSvid = await validateX509Svid([leaf, ...intermediates], { now, expectedId: spiffeId, roots });
            valid = checkedSvid.ok ? ok({ leaf, notAfter: checkedSvid.value.notAfter, serialNumber: checkedSvid.value.serialNumber }) : checkedSvid;
          }
        } catch (e) {
          valid = err({ code: 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) });
        }
        if (!valid.ok) {
          logEvent('error', 'refused to issue a non-conforming X509-SVID', { spiffe_id: spiffeId, reason: valid.error.message });
          return err({ code: 'ERR_INTERNAL', message: 'refused to issue a non-conforming X509-SVID' });
        }
        return ok({ spiffeId, certChain: [toBase64(valid.value.leaf), ...intermediatesB64], expiresAt: Math.floor(valid.value.notAfter / 1000), serialNumber: valid.value.serialNumber });
      };
    });
  }

  async signJwtSvid(request: SignJwtSvidRequest, caller?: string): Promise<Result<SignedJwtSvid>> {
    const [result] = await this.signJwtSvids([request], caller);
    return result!;
  }

  signJwtSvids(requests: SignJwtSvidRequest[], caller?: string): Promise<Result<SignedJwtSvid>[]> {
    return this.#signBatch('jwt', requests, caller, async (active, now) => {
      const minter = await this.#jwtMinterFor(active);
      return async (request) => {
        const checked = this.#checks.jwt(request);
        if (!checked.ok) return checked;
        const { spiffeId, audience, ttlSeconds, extraClaims } = checked.value;
        const expiresAt = Math.min(now + ttlSeconds * 1000, active.notAfter);
        const token = await minter.mint({ spiffeId, audience, now, expiresAt, extraClaims });
        return ok({ spiffeId, token, expiresAt: Math.floor(expiresAt / 1000) });
      };
    });
  }

  signWitSvids(requests: SignWitSvidRequest[], caller?: string): Promise<Result<SignedWitSvid>[]> {
    if (!this.#kinds.includes('wit')) return Promise.resolve((Array.isArray(requests) ? requests : [0]).map(() => WIT_OFF));
    return this.#signBatch('wit', requests, caller, async (active, now) => {
      let minter = this.#witMinters.get(active.kid);
      if (!minter) this.#witMinters.set(active.kid, (minter = createWitSvidMinter({ kid: active.kid, alg: active.alg as JwtSigningAlgorithm, key: (await this.#loadKey(active)).privateKey })));
      return createWitSigner(this.#checks, minter, active, now);
    });
  }

  async getPublishedKeys(): Promise<Result<PublishedKeys>> {
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) return ready;
    const config = this.#config;
    let upstream: UpstreamCa | undefined;
    try {
      upstream = await this.#upstreamCa();
    } catch (e) {
      return this.#notReady(e); // an upstream CA that stopped loading (keys made under an earlier one)
    }
    return ok({
      x509Authorities: upstream ? [toBase64(upstream.root)] : publishedSlots(this.#slotsOf('x509'), now).map((s) => toBase64(s.certDer!)),
      jwtAuthorities: publishedSlots(this.#slotsOf('jwt'), now).map((s) => ({ ...s.publicJwk!, kid: s.kid, alg: s.alg, use: 'sig' }) as PublishedJwk),
      ...(this.#kinds.includes('wit') ? { witAuthorities: publishedSlots(this.#slotsOf('wit'), now).map((s) => ({ ...s.publicJwk!, kid: s.kid, alg: s.alg, use: 'sig' }) as PublishedJwk) } : {}),
      sequence: this.#sequence,
      refreshHintSeconds: Math.max(1, Math.min(config.jwksMaxAgeSeconds || MAX_REFRESH_HINT_SECONDS, MAX_REFRESH_HINT_SECONDS, Math.floor(config.caTtlSeconds / 10))),
      ...(this.#slots.some((s) => s.tainted) ? { tainted: taintedAuthorities(this.#slots, now) } : {}),
    });
  }

  manageAuthority(request: AuthorityRequest): Promise<Result<AuthorityResult>> {
    const host: AuthorityHost = {
      now: () => this.#clock(),
      slotsOf: (kind) => this.#slotsOf(kind),
      ensureCurrent: (now) => this.#ensureCurrent(now),
      apply: async (kind, action, now) => {
        await this.#apply(kind, action, now);
        await this.#scheduleAlarm(now); // a new or removed key moves the next rotation check
      },
      exclusive: (fn) => this.#exclusive(fn),
      hasUpstream: async () => (await this.#upstreamCa()) !== undefined,
      lifetimeMs: this.#config.caTtlSeconds * 1000,
    };
    return manageAuthority(host, request);
  }

  async getCrls(revoked: RevokedSerial[]): Promise<Result<SignedCrl[]>> {
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) return ready;
    try {
      // the active key first, then the old keys still published (they signed SVIDs that have not expired)
      const slots = publishedSlots(this.#slotsOf('x509'), now).filter((s) => s.status !== 'prepared').sort((a, b) => (a.status === 'active' ? -1 : b.status === 'active' ? 1 : 0));
      const keys = await Promise.all(slots.map(async (s) => ({ kid: s.kid, ...(await this.#loadKey(s)) })));
      return ok(await this.#crls.sign(keys.map((k) => ({ kid: k.kid, cert: k.cert!, privateKey: k.privateKey })), revoked, now));
    } catch (e) {
      return this.#notReady(e);
    }
  }

  async admitAttestation(source: string): Promise<Result<true>> {
    if (typeof source !== 'string' || source.length > MAX_RATE_KEY_CHARS) return err({ code: 'ERR_BAD_REQUEST', message: 'source must be a short string' });
    return this.#take('attestation', source, 1);
  }

  async recordTelemetry(samples: MetricSample[]): Promise<Result<true>> {
    return this.#metrics.record(samples);
  }

  async getMetrics(): Promise<Result<MetricSample[]>> {
    const now = this.#clock();
    await this.#ensureCurrent(now); // the gauges describe the keys as they are now; a failure leaves them out
    return ok(this.#metrics.snapshot(this.#config.trustDomain, this.#slots, now));
  }

  async status(): Promise<{ ready: boolean }> {
    const ready = await this.#ensureCurrent(this.#clock());
    return { ready: ready.ok };
  }

  async alarm(): Promise<void> {
    const ready = await this.#ensureCurrent(this.#clock(), true);
    if (!ready.ok) logEvent('error', 'CA rotation failed', { reason: ready.error.message });
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * The prologue both signing calls share: an array, the CA current at one `now`, the active key of `kind`,
   * at most MAX_SIGN_BATCH items (the rest get ERR_REQUEST_TOO_LARGE), counted in `caller`'s bucket (refused
   * whole when it is short). `prepare` runs once per call.
   */
  async #signBatch<R, T>(kind: KeyKind, requests: R[], caller: string | undefined, prepare: (active: StoredSlot, now: number) => Promise<(req: R) => Promise<Result<T>>>): Promise<Result<T>[]> {
    if (!Array.isArray(requests)) return [err({ code: 'ERR_BAD_REQUEST', message: 'requests must be an array' })];
    const admitted = this.#admitSigning(kind, caller, requests.length);
    if (!admitted.ok) return requests.map(() => admitted);
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) return requests.map(() => ready);
    let sign: (req: R) => Promise<Result<T>>;
    try {
      sign = await prepare(activeSlot(this.#slotsOf(kind), now)!, now);
    } catch (e) {
      const failed = this.#notReady(e);
      return requests.map(() => failed);
    }
    const results: Result<T>[] = [];
    for (let i = 0; i < requests.length; i++) results.push(i < MAX_SIGN_BATCH ? await sign(requests[i]!) : TOO_LARGE);
    this.#metrics.signed(kind, results.filter((r) => r.ok).length);
    return results;
  }

  /** Counts a signing call of `count` SVIDs in `caller`'s bucket (no caller: not counted). */
  #admitSigning(kind: KeyKind, caller: unknown, count: number): Result<true> {
    if (caller === undefined) return ok(true);
    if (typeof caller !== 'string' || caller.length > MAX_RATE_KEY_CHARS) return err({ code: 'ERR_BAD_REQUEST', message: 'caller must be a short string' });
    return this.#take(kind === 'x509' ? 'x509Signing' : 'jwtSigning', caller, Math.min(count, MAX_SIGN_BATCH));
  }

  #take(limit: Parameters<RateLimiter['take']>[0], key: string, count: number): Result<true> {
    const taken = this.#limits.take(limit, key, count);
    if (!taken.ok && taken.error.code === 'ERR_RATE_LIMITED') this.#metrics.refused(limit);
    return taken;
  }

  #slotsOf(kind: KeyKind): StoredSlot[] {
    return this.#slots.filter((s) => s.kind === kind);
  }

  #needsRotation(now: number): boolean {
    const lifetimeMs = this.#config.caTtlSeconds * 1000;
    return this.#kinds.some((kind) => planRotation(this.#slotsOf(kind), now, lifetimeMs).length > 0);
  }

  /** Applies due rotations (creating keys on first use); ok when both kinds have an active key. */
  async #ensureCurrent(now: number, rescheduleAlarm = false): Promise<Result<true>> {
    try {
      // twice at most: a caller that joined a rotation planned at an earlier `now` checks again once
      for (let round = 0; round < 2 && this.#needsRotation(now); round++) {
        // A throw inside blockConcurrencyWhile would reset the object: carry the failure out instead.
        this.#rotating ??= this.#exclusive(() => this.#rotate(now).then(() => undefined, (e: unknown) => ({ e }))).finally(() => {
          this.#rotating = undefined;
        });
        const failure = await this.#rotating;
        if (failure) throw failure.e;
      }
      // Inside alarm() always set the next one: the runtime clears the alarm that is running.
      if (rescheduleAlarm) await this.#scheduleAlarm(now, true);
      return ok(true);
    } catch (e) {
      return this.#notReady(e);
    }
  }

  #notReady(e: unknown): Result<never> {
    logEvent('error', 'CA not ready', { cause: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    return NOT_READY;
  }

  async #rotate(now: number): Promise<void> {
    const lifetimeMs = this.#config.caTtlSeconds * 1000;
    let applied = 0;
    for (const kind of this.#kinds) {
      for (let round = 0; round < 4; round++) {
        const plan = planRotation(this.#slotsOf(kind), now, lifetimeMs);
        if (plan.length === 0) break;
        for (const action of plan) await this.#apply(kind, action, now);
        applied += plan.length;
      }
    }
    await this.#scheduleAlarm(now);
    if (applied > 0) this.#onRotated?.();
  }

  async #scheduleAlarm(now: number, force = false): Promise<void> {
    const times = this.#kinds.map((k) => nextRotationCheck(this.#slotsOf(k), now)).filter((t): t is number => t !== undefined);
    const next = times.length > 0 ? Math.min(...times) : now;
    const current = await this.#storage.getAlarm();
    if (force || current !== next) await this.#storage.setAlarm(next);
  }

  async #apply(kind: KeyKind, action: AuthorityAction, now: number): Promise<void> {
    let created: StoredSlot | undefined;
    if (action.kind === 'prepare') {
      const upstream = kind === 'x509' ? await this.#upstreamCa() : undefined;
      const made = await createSlotKey(kind, { config: this.#config, kek: await this.#keyEncryptionKey(), upstream, now, notAfter: action.notAfter });
      created = made.slot;
      this.#keys.set(created.kid, made.key);
    }
    // The plan and its application are per kind: activating a JWT key must not touch the X.509 slots.
    const next = [...this.#slots.filter((s) => s.kind !== kind), ...applyRotationAction(this.#slotsOf(kind), action, created)];
    const write: SlotWrite =
      action.kind === 'prepare' ? { op: 'insert', slot: created! } : action.kind === 'activate' ? { op: 'activate', kind, kid: action.kid } : action.kind === 'taint' ? { op: 'taint', kid: action.kid } : { op: 'retire', kid: action.kid };
    const sequence = changesPublishedSet(action) ? this.#sequence + 1 : undefined;
    // Persist first, then update memory, all synchronously (no await between: atomic for the DO).
    this.#storage.commit(write, sequence);
    this.#metrics.authority(kind, action.kind);
    this.#slots = next;
    if (action.kind === 'retire' || action.kind === 'revoke') {
      this.#keys.delete(action.kid);
      this.#templates.delete(action.kid);
      this.#jwtMinters.delete(action.kid);
      this.#witMinters.delete(action.kid);
    }
    if (sequence !== undefined) this.#sequence = sequence;
    logEvent('info', 'CA key rotation', { kind, action: action.kind, kid: action.kind === 'prepare' ? created!.kid : action.kid, sequence: this.#sequence });
  }

  async #loadKey(slot: StoredSlot): Promise<LoadedKey> {
    let loaded = this.#keys.get(slot.kid);
    if (!loaded) {
      loaded = await openSlotKey(slot, await this.#keyEncryptionKey());
      this.#keys.set(slot.kid, loaded);
    }
    return loaded;
  }

  #keyEncryptionKey(): Promise<CryptoKey> {
    this.#kek ??= deriveKeyEncryptionKey(this.#config.keyEncryptionSecret, this.#config.trustDomain);
    return this.#kek;
  }

  /** The JWT minter of a JWT key slot (header encoded once per kid). */
  async #jwtMinterFor(slot: StoredSlot): Promise<JwtSvidMinter> {
    let minter = this.#jwtMinters.get(slot.kid);
    if (!minter) {
      const key = await this.#loadKey(slot);
      minter = createJwtSvidMinter({ issuer: this.#config.jwtIssuer, kid: slot.kid, alg: slot.alg as JwtSigningAlgorithm, key: key.privateKey });
      this.#jwtMinters.set(slot.kid, minter);
    }
    return minter;
  }

  /** The lean issuance template of an X.509 CA key, made and self-checked once; null: use the slow path. */
  async #templateFor(kid: string, signing: SigningCa, now: number): Promise<X509SvidTemplate | null> {
    let template = this.#templates.get(kid);
    if (template === undefined) {
      try {
        template = await createX509SvidTemplate(signing, now);
      } catch (e) {
        logEvent('error', 'X509-SVID template check failed; issuing through @peculiar/x509', { kid, reason: e instanceof Error ? e.message : String(e) });
        template = null;
      }
      this.#templates.set(kid, template);
    }
    return template;
  }

  #upstreamCa(): Promise<UpstreamCa | undefined> {
    const upstream = this.#config.upstreamCa;
    this.#upstream ??= upstream ? loadUpstreamCa(upstream) : Promise.resolve(undefined);
    return this.#upstream;
  }
}
