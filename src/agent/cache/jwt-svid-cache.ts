/**
 * The agent's JWT-SVID cache: JWT-SVIDs minted on demand, kept per entry and audience set while fresh
 * (rotation-policy.ts), one mint in flight per key, misses coalesced into issuer batches (jwt-batcher.ts).
 * Never persisted: JWT-SVIDs are short-lived and cheap to mint again.
 * @module
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Clock } from '../../shared/clock.js';
import type { Entry } from '../../shared/registry/entry.js';
import type { IssuerClient } from '../issuer-client.js';
import { isJwtSvidFresh } from '../rotation-policy.js';
import type { MintedJwtSvid } from './identity-source.js';
import { createJwtBatcher, type JwtBatcher, type MintedJwt } from './jwt-batcher.js';

/** Most JWT-SVIDs kept (entry × audience set); beyond it, stale then oldest ones are dropped. */
export const JWT_CACHE_MAX_ENTRIES = 1024;

interface HeldJwt {
  svid: MintedJwtSvid;
  /** ms */
  issuedAt: number;
}

export class JwtSvidCache {
  readonly #clock: Clock;
  readonly #batcher: JwtBatcher;
  #held = new Map<string, HeldJwt>();

  /** JWT-SVIDs held (for telemetry) */
  get size(): number {
    return this.#held.size;
  }
  #inflight = new Map<string, Promise<MintedJwtSvid>>();

  /** `batchWindowMs`: see JWT_BATCH_WINDOW_MS in jwt-batcher.ts */
  constructor(clock: Clock, issuer: Pick<IssuerClient, 'mintJwtSvids'>, batchWindowMs?: number) {
    this.#clock = clock;
    this.#batcher = createJwtBatcher((body) => issuer.mintJwtSvids(body), batchWindowMs);
  }

  /**
   * A fresh JWT-SVID of `entry` for `audience` (a set: order and repeats do not matter). `isCurrent` tells,
   * once minted, whether the entry is still the one held (an update meanwhile: returned, not kept).
   */
  fetch(entry: Entry, audience: string[], isCurrent: (entry: Entry) => boolean): Promise<MintedJwtSvid> {
    const aud = [...new Set(audience)].sort();
    const key = `${entry.id}\n${JSON.stringify(aud)}`;
    const held = this.#held.get(key);
    if (held && isJwtSvidFresh(held.issuedAt, held.svid.expiresAt * 1000, this.#clock())) return Promise.resolve(held.svid);
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const p = this.#batcher
      .mint({ entryId: entry.id, audience: aud })
      .then((got) => this.#keep(entry, key, got, isCurrent(entry)))
      .finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, p);
    return p;
  }

  /** forgets every JWT-SVID of the entry */
  dropEntry(entryId: string): void {
    for (const key of this.#held.keys()) if (key.startsWith(`${entryId}\n`)) this.#held.delete(key);
  }

  /** forgets every JWT-SVID signed with one of `kids` (a tainted JWT authority); returns how many */
  dropSignedBy(kids: ReadonlySet<string>): number {
    if (kids.size === 0) return 0;
    let dropped = 0;
    for (const [key, held] of this.#held) {
      let kid: unknown;
      try {
        kid = decodeProtectedHeader(held.svid.token).kid;
      } catch {
        kid = undefined;
      }
      if (typeof kid === 'string' && kids.has(kid)) {
        this.#held.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  dropExpired(now: number): void {
    for (const [key, held] of this.#held) if (now >= held.svid.expiresAt * 1000) this.#held.delete(key);
  }

  #keep(entry: Entry, key: string, got: MintedJwt, current: boolean): MintedJwtSvid {
    const now = this.#clock();
    let issuedAt = now;
    try {
      const iat = decodeJwt(got.token).iat;
      if (typeof iat === 'number') issuedAt = iat * 1000;
    } catch {
      // not decodable: treat as issued now
    }
    const svid: MintedJwtSvid = { spiffeId: got.spiffeId, token: got.token, expiresAt: got.expiresAt, hint: entry.hint };
    if (current) {
      this.#held.delete(key);
      this.#held.set(key, { svid, issuedAt });
      this.#trim(now);
    }
    return svid;
  }

  #trim(now: number): void {
    if (this.#held.size <= JWT_CACHE_MAX_ENTRIES) return;
    for (const [k, held] of this.#held) if (!isJwtSvidFresh(held.issuedAt, held.svid.expiresAt * 1000, now)) this.#held.delete(k);
    for (const k of this.#held.keys()) {
      if (this.#held.size <= JWT_CACHE_MAX_ENTRIES) break;
      this.#held.delete(k);
    }
  }
}
