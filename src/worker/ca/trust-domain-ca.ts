/**
 * The trust domain's CA: one Durable Object per trust domain (idFromName(trustDomain)), the single writer
 * of the X.509 CA key and the JWT signing key. It stores slots (ca-storage.ts), keeps keys sealed at rest
 * (key-crypto.ts), runs the shared rotation plan (shared/ca/rotation.ts) from its alarm and lazily on each
 * call, and signs; every rule about what it signs lives in src/shared/spiffe.
 * @module
 */
import 'reflect-metadata';
import { PublicKey, X509Certificate } from '@peculiar/x509';
import { calculateJwkThumbprint, type CryptoKey } from 'jose';
import { DurableObject } from 'cloudflare:workers';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { WispErrorData } from '../../shared/errors.js';
import { activeSlot, publishedSlots, type KeyKind } from '../../shared/ca/key-slot.js';
import { applyRotationAction, changesPublishedSet, nextRotationCheck, planRotation, type RotationAction } from '../../shared/ca/rotation.js';
import { err, ok, type Result } from '../../shared/result.js';
import type { PublishedJwk } from '../../shared/spiffe/bundle.js';
import { createCaCertificate, validateCaCert } from '../../shared/spiffe/ca-cert.js';
import { parseSpiffeId, pathOf, trustDomainOf, type SpiffeId } from '../../shared/spiffe/id.js';
import type { JwtSigningAlgorithm } from '../../shared/spiffe/jwt-svid.js';
import { createJwtSvidMinter, type JwtSvidMinter } from '../../shared/spiffe/jwt-svid-minter.js';
import { dnsNameProblem } from '../../shared/spiffe/dns-name.js';
import { issueX509Svid, validateX509Svid } from '../../shared/spiffe/x509-svid.js';
import { createX509SvidTemplate, issueFromTemplate, readSubjectKey, type X509SvidTemplate } from '../../shared/spiffe/x509-svid-template.js';
import { fromBase64, toBase64 } from '../../shared/encoding/base64.js';
import { classifyKeyAlgorithm, signingParams, type KeyAlgorithmInfo, type KeyAlgorithmName, type SigningCa } from '../../shared/spiffe/x509.js';
import { parseWorkerConfig, type WorkerConfig } from '../config.js';
import { logEvent } from '../log.js';
import type { PublishedKeys, SignedJwtSvid, SignedX509Svid, SignJwtSvidRequest, SignX509SvidRequest, TrustDomainCaApi } from './ca-api.js';
import { deleteSlot, insertSlot, loadSequence, loadSlots, migrateCaStorage, saveSequence, updateSlotStatus, type StoredSlot } from './ca-storage.js';
import { deriveKeyEncryptionKey, generateKey, importSigningKey, openPrivateKey, sealPrivateKey } from './key-crypto.js';
import { loadUpstreamCa, type UpstreamCa } from './upstream-ca.js';

/** Most SVIDs signed in one signX509Svids call. */
export const MAX_SIGN_BATCH = 256;
/** Longest TTL a caller may ask for (the CA's notAfter caps it anyway). */
const MAX_TTL_SECONDS = 10 * 365 * 86400;
/** Bundle refresh hint ceiling, seconds. */
const MAX_REFRESH_HINT_SECONDS = 300;

/**
 * Replaces the CA's clock, for tests only: `runInDurableObject(stub, (ca) => ca[CA_CLOCK](() => t))`.
 * A symbol-keyed method is not reachable over RPC (only string-named methods are).
 */
export const CA_CLOCK = Symbol.for('wisp.trustDomainCa.clock');

/** Checked SPIFFE IDs remembered by the CA (about 100 bytes each); the memo starts over when full. */
const CHECKED_IDS_MAX = 100_000;

/** A slot's key material, decrypted and imported once (hot path). */
interface LoadedKey {
  privateKey: CryptoKey;
  cert?: X509Certificate;
}

/** One instance per trust domain. Holds the CA and JWT keys; single writer. */
export class TrustDomainCa extends DurableObject<Env> implements TrustDomainCaApi {
  #clock: Clock = systemClock;
  #config: WorkerConfig | undefined;
  #kek: CryptoKey | undefined;
  #upstream: Promise<UpstreamCa | undefined> | undefined;
  #slots: StoredSlot[] = [];
  #keys = new Map<string, LoadedKey>();
  /** per X.509 CA kid: the lean issuance template, or null when its self-check failed (then the slow path) */
  #templates = new Map<string, X509SvidTemplate | null>();
  /** per JWT kid */
  #jwtMinters = new Map<string, JwtSvidMinter>();
  /** SPIFFE IDs already checked as members of the trust domain (input string → parsed ID) */
  #checkedIds = new Map<string, SpiffeId>();
  #sequence = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      migrateCaStorage(ctx.storage.sql);
      this.#slots = loadSlots(ctx.storage.sql);
      this.#sequence = loadSequence(ctx.storage.sql);
    });
  }

  [CA_CLOCK](clock: Clock): void {
    this.#clock = clock;
  }

  async signX509Svids(requests: SignX509SvidRequest[]): Promise<Result<SignedX509Svid>[]> {
    if (!Array.isArray(requests)) return [err({ code: 'ERR_BAD_REQUEST', message: 'requests must be an array' })];
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) return requests.map(() => ready);
    const active = activeSlot(this.#slotsOf('x509'), now)!;
    const key = await this.#loadKey(active);
    const upstream = await this.#upstreamCa();
    const intermediates = upstream ? [active.certDer!, ...upstream.intermediates] : [];
    const signing = { cert: key.cert!, privateKey: key.privateKey, signAlgorithm: signingParams('EC P-256').signAlg };
    const template = await this.#templateFor(active.kid, signing, now);
    // Chains share their intermediates: encoded to base64 once per call.
    const intermediatesB64 = intermediates.map((d) => toBase64(d));
    // Parsed only for the slow path (ASN.1 decoding is what costs; see x509-svid-template.ts).
    let roots: X509Certificate[] | undefined;
    const results: Result<SignedX509Svid>[] = [];
    for (const [i, req] of requests.entries()) {
      if (i >= MAX_SIGN_BATCH) {
        results.push(err({ code: 'ERR_REQUEST_TOO_LARGE', message: `at most ${MAX_SIGN_BATCH} SVIDs per call` }));
        continue;
      }
      const checked = this.#checkX509Request(req);
      if (!checked.ok) {
        results.push(checked);
        continue;
      }
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
        results.push(err({ code: 'ERR_INTERNAL', message: 'refused to issue a non-conforming X509-SVID' }));
        continue;
      }
      results.push(ok({ spiffeId, certChain: [toBase64(valid.value.leaf), ...intermediatesB64], expiresAt: Math.floor(valid.value.notAfter / 1000), serialNumber: valid.value.serialNumber }));
    }
    return results;
  }

  async signJwtSvid(request: SignJwtSvidRequest): Promise<Result<SignedJwtSvid>> {
    const [result] = await this.signJwtSvids([request]);
    return result!;
  }

  async signJwtSvids(requests: SignJwtSvidRequest[]): Promise<Result<SignedJwtSvid>[]> {
    if (!Array.isArray(requests)) return [err({ code: 'ERR_BAD_REQUEST', message: 'requests must be an array' })];
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) return requests.map(() => ready);
    const active = activeSlot(this.#slotsOf('jwt'), now)!;
    const minter = await this.#jwtMinterFor(active);
    const results: Result<SignedJwtSvid>[] = [];
    for (const [i, request] of requests.entries()) {
      if (i >= MAX_SIGN_BATCH) {
        results.push(err({ code: 'ERR_REQUEST_TOO_LARGE', message: `at most ${MAX_SIGN_BATCH} SVIDs per call` }));
        continue;
      }
      const id = this.#checkSpiffeId(request?.spiffeId);
      if (!id.ok) {
        results.push(id);
        continue;
      }
      const { audience, ttlSeconds } = request;
      if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
        results.push(err({ code: 'ERR_BAD_REQUEST', message: 'audience must be a non-empty list of non-empty strings' }));
        continue;
      }
      const ttl = checkTtl(ttlSeconds);
      if (!ttl.ok) {
        results.push(ttl);
        continue;
      }
      const expiresAt = Math.min(now + ttl.value * 1000, active.notAfter);
      const token = await minter.mint({ spiffeId: id.value, audience, now, expiresAt });
      results.push(ok({ spiffeId: id.value, token, expiresAt: Math.floor(expiresAt / 1000) }));
    }
    return results;
  }

  async getPublishedKeys(): Promise<PublishedKeys> {
    const now = this.#clock();
    const ready = await this.#ensureCurrent(now);
    if (!ready.ok) throw new Error(ready.error.message);
    const config = this.#cfg();
    const upstream = await this.#upstreamCa();
    return {
      x509Authorities: upstream ? [toBase64(upstream.root)] : publishedSlots(this.#slotsOf('x509'), now).map((s) => toBase64(s.certDer!)),
      jwtAuthorities: publishedSlots(this.#slotsOf('jwt'), now).map((s) => ({ ...s.publicJwk!, kid: s.kid, alg: s.alg, use: 'sig' }) as PublishedJwk),
      sequence: this.#sequence,
      refreshHintSeconds: Math.max(1, Math.min(config.jwksMaxAgeSeconds || MAX_REFRESH_HINT_SECONDS, MAX_REFRESH_HINT_SECONDS, Math.floor(config.caTtlSeconds / 10))),
    };
  }

  async status(): Promise<{ ready: boolean }> {
    const ready = await this.#ensureCurrent(this.#clock());
    return { ready: ready.ok };
  }

  override async alarm(): Promise<void> {
    const ready = await this.#ensureCurrent(this.#clock(), true);
    if (!ready.ok) logEvent('error', 'CA rotation failed', { reason: ready.error.message });
  }

  // ---- internals -------------------------------------------------------------------------------

  #cfg(): WorkerConfig {
    this.#config ??= parseWorkerConfig(this.env);
    return this.#config;
  }

  #slotsOf(kind: KeyKind): StoredSlot[] {
    return this.#slots.filter((s) => s.kind === kind);
  }

  #needsRotation(now: number): boolean {
    const lifetimeMs = this.#cfg().caTtlSeconds * 1000;
    return planRotation(this.#slotsOf('x509'), now, lifetimeMs).length > 0 || planRotation(this.#slotsOf('jwt'), now, lifetimeMs).length > 0;
  }

  /** Applies due rotations (creating keys on first use); ok when both kinds have an active key. */
  async #ensureCurrent(now: number, rescheduleAlarm = false): Promise<Result<true>> {
    try {
      if (this.#needsRotation(now)) {
        // A throw inside blockConcurrencyWhile would reset the object: carry the failure out instead.
        const failure = await this.ctx.blockConcurrencyWhile(async () => {
          try {
            await this.#rotate(now);
            return undefined;
          } catch (e) {
            return { e };
          }
        });
        if (failure) throw failure.e;
      }
      // Inside alarm() always set the next one: the runtime clears the alarm that is running.
      if (rescheduleAlarm) await this.#scheduleAlarm(now, true);
      return ok(true);
    } catch (e) {
      logEvent('error', 'CA not ready', { cause: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
      return err<WispErrorData>({ code: 'ERR_CA_NOT_READY', message: 'the trust domain CA is not ready' });
    }
  }

  async #rotate(now: number): Promise<void> {
    const lifetimeMs = this.#cfg().caTtlSeconds * 1000;
    for (const kind of ['x509', 'jwt'] as const) {
      for (let round = 0; round < 4; round++) {
        const plan = planRotation(this.#slotsOf(kind), now, lifetimeMs);
        if (plan.length === 0) break;
        for (const action of plan) await this.#apply(kind, action, now);
      }
    }
    await this.#scheduleAlarm(now);
  }

  async #scheduleAlarm(now: number, force = false): Promise<void> {
    const times = (['x509', 'jwt'] as const).map((k) => nextRotationCheck(this.#slotsOf(k), now)).filter((t): t is number => t !== undefined);
    const next = times.length > 0 ? Math.min(...times) : now;
    const current = await this.ctx.storage.getAlarm();
    if (force || current !== next) await this.ctx.storage.setAlarm(next);
  }

  async #apply(kind: KeyKind, action: RotationAction, now: number): Promise<void> {
    const sql = this.ctx.storage.sql;
    let created: StoredSlot | undefined;
    if (action.kind === 'prepare') created = await this.#createSlot(kind, now, action.notAfter);
    // The plan and its application are per kind: activating a JWT key must not touch the X.509 slots.
    const next = [...this.#slots.filter((s) => s.kind !== kind), ...applyRotationAction(this.#slotsOf(kind), action, created)];
    // Persist first, then update memory, all synchronously (no await between: atomic for the DO).
    this.ctx.storage.transactionSync(() => {
      if (action.kind === 'prepare') insertSlot(sql, created!);
      if (action.kind === 'activate') {
        for (const s of this.#slots) if (s.kind === kind && s.status === 'active') updateSlotStatus(sql, s.kid, 'old');
        updateSlotStatus(sql, action.kid, 'active');
      }
      if (action.kind === 'retire') deleteSlot(sql, action.kid);
      if (changesPublishedSet(action)) saveSequence(sql, this.#sequence + 1);
    });
    this.#slots = next;
    if (action.kind === 'retire') {
      this.#keys.delete(action.kid);
      this.#templates.delete(action.kid);
      this.#jwtMinters.delete(action.kid);
    }
    if (changesPublishedSet(action)) this.#sequence++;
    logEvent('info', 'CA key rotation', { kind, action: action.kind, kid: action.kind === 'prepare' ? created!.kid : action.kid, sequence: this.#sequence });
  }

  /** Generates a key (and for x509 its CA certificate), seals it, caches it imported. */
  async #createSlot(kind: KeyKind, now: number, notAfter: number): Promise<StoredSlot> {
    const config = this.#cfg();
    const generated = await generateKey(kind, config.jwtKeyType);
    const publicJwk = (await crypto.subtle.exportKey('jwk', generated.publicKey)) as unknown as Record<string, string>;
    const kid = await calculateJwkThumbprint(publicJwk as never, 'sha256');
    const privateKey = await importSigningKey(generated.pkcs8, generated.alg);
    let certDer: Uint8Array | undefined;
    let slotNotAfter = notAfter;
    if (kind === 'x509') {
      const upstream = await this.#upstreamCa();
      const params = { trustDomain: config.trustDomain, subject: config.caSubject, publicKeySpki: generated.spki, now, notAfter };
      certDer = upstream
        ? await createCaCertificate(params, { upstream: upstream.signer })
        : await createCaCertificate(params, { selfKey: privateKey, signAlgorithm: signingParams(generated.alg).signAlg });
      const valid = validateCaCert(certDer, { trustDomain: config.trustDomain, now });
      if (!valid.ok) throw new Error(valid.error.message);
      slotNotAfter = valid.value.notAfter; // capped at the upstream CA's notAfter
    }
    const sealed = await sealPrivateKey(await this.#keyEncryptionKey(), kind, kid, generated.pkcs8);
    generated.pkcs8.fill(0);
    const pub = kind === 'jwt' ? publicParams(publicJwk) : undefined;
    this.#keys.set(kid, { privateKey, cert: certDer ? new X509Certificate(certDer.slice()) : undefined });
    return {
      kid,
      kind,
      status: 'prepared',
      issuedAt: now,
      notAfter: slotNotAfter,
      alg: kind === 'jwt' ? config.jwtKeyType : generated.alg,
      certDer,
      publicJwk: pub,
      keyIv: sealed.iv,
      keyCiphertext: sealed.ciphertext,
    };
  }

  async #loadKey(slot: StoredSlot): Promise<LoadedKey> {
    const cached = this.#keys.get(slot.kid);
    if (cached) return cached;
    const alg: KeyAlgorithmName = slot.kind === 'x509' ? (slot.alg as KeyAlgorithmName) : slot.alg === 'RS256' ? 'RSA' : 'EC P-256';
    const privateKey = await openPrivateKey(await this.#keyEncryptionKey(), slot.kind, slot.kid, alg, { iv: slot.keyIv, ciphertext: slot.keyCiphertext });
    const loaded = { privateKey, cert: slot.certDer ? new X509Certificate(slot.certDer.slice()) : undefined };
    this.#keys.set(slot.kid, loaded);
    return loaded;
  }

  async #keyEncryptionKey(): Promise<CryptoKey> {
    const config = this.#cfg();
    this.#kek ??= await deriveKeyEncryptionKey(config.keyEncryptionSecret, config.trustDomain);
    return this.#kek;
  }

  /** The JWT minter of a JWT key slot (header encoded once per kid). */
  async #jwtMinterFor(slot: StoredSlot): Promise<JwtSvidMinter> {
    let minter = this.#jwtMinters.get(slot.kid);
    if (!minter) {
      const key = await this.#loadKey(slot);
      minter = createJwtSvidMinter({ issuer: this.#cfg().jwtIssuer, kid: slot.kid, alg: slot.alg as JwtSigningAlgorithm, key: key.privateKey });
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
    const upstream = this.#cfg().upstreamCa;
    this.#upstream ??= upstream ? loadUpstreamCa(upstream) : Promise.resolve(undefined);
    return this.#upstream;
  }

  #checkSpiffeId(input: unknown): Result<SpiffeId> {
    // the same entries are signed for over and over: a SPIFFE ID that passed once is not parsed again
    if (typeof input === 'string') {
      const known = this.#checkedIds.get(input);
      if (known) return ok(known);
    }
    const checked = this.#parseMemberId(input);
    if (checked.ok && typeof input === 'string') {
      if (this.#checkedIds.size >= CHECKED_IDS_MAX) this.#checkedIds.clear();
      this.#checkedIds.set(input, checked.value);
    }
    return checked;
  }

  #parseMemberId(input: unknown): Result<SpiffeId> {
    let id: SpiffeId;
    try {
      id = parseSpiffeId(input);
    } catch (e) {
      return err({ code: 'ERR_SPIFFE_ID_INVALID', message: e instanceof Error ? e.message : 'invalid SPIFFE ID' });
    }
    const td = this.#cfg().trustDomain;
    if (trustDomainOf(id) !== td) return err({ code: 'ERR_TRUST_DOMAIN_MISMATCH', message: `"${id}" is not a member of trust domain "${td}"` });
    if (pathOf(id) === '') return err({ code: 'ERR_SPIFFE_ID_INVALID', message: 'an SVID needs a SPIFFE ID with a path' });
    return ok(id);
  }

  #checkX509Request(req: SignX509SvidRequest): Result<{ spiffeId: SpiffeId; spki: Uint8Array }> {
    if (typeof req !== 'object' || req === null) return err({ code: 'ERR_BAD_REQUEST', message: 'request must be an object' });
    const id = this.#checkSpiffeId(req.spiffeId);
    if (!id.ok) return id;
    const ttl = checkTtl(req.ttlSeconds);
    if (!ttl.ok) return ttl;
    if (!Array.isArray(req.dnsNames)) return err({ code: 'ERR_BAD_REQUEST', message: 'dnsNames must be an array' });
    for (const d of req.dnsNames) {
      const problem = dnsNameProblem(d);
      if (problem) return err({ code: 'ERR_BAD_REQUEST', message: problem });
    }
    let spki: Uint8Array;
    try {
      const input: unknown = req.publicKeySpki;
      spki = input instanceof Uint8Array ? input : fromBase64(String(input), 'ERR_CSR_INVALID', 'publicKeySpki');
      // lean DER read first; anything it does not accept gets the general parser's verdict and message
      if (typeof readSubjectKey(spki) !== 'string') return ok({ spiffeId: id.value, spki });
      const kind = classifyKeyAlgorithm(new PublicKey(spki.slice()).algorithm as KeyAlgorithmInfo);
      if (kind !== 'EC P-256' && kind !== 'EC P-384' && kind !== 'RSA') return err({ code: 'ERR_CSR_INVALID', message: kind });
    } catch {
      return err({ code: 'ERR_CSR_INVALID', message: 'publicKeySpki is not a DER SubjectPublicKeyInfo' });
    }
    return ok({ spiffeId: id.value, spki });
  }
}

function checkTtl(ttlSeconds: unknown): Result<number> {
  if (typeof ttlSeconds !== 'number' || !Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TTL_SECONDS) {
    return err({ code: 'ERR_BAD_REQUEST', message: `ttlSeconds must be an integer between 1 and ${MAX_TTL_SECONDS}` });
  }
  return ok(ttlSeconds);
}

function publicParams(jwk: Record<string, string>): Record<string, string> {
  return jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! } : { kty: 'RSA', n: jwk.n!, e: jwk.e! };
}
