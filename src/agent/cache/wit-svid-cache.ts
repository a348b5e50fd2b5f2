/**
 * The agent's WIT-SVIDs (WIT-SVID.md): per entry, a key pair generated on this node (P-256, ES256), its public
 * JWK sent to the issuer for `cnf.jwk`, the private JWK handed only to the workload (Workload API §7,
 * `wit_svid_key`). Minted on demand, kept while more than half of the lifetime remains (WIT-SVID.md §4 lets
 * instances of one workload on one host share it), one issuer call for all misses of a request, one mint in
 * flight per entry. Memory only: a restart mints again.
 * @module
 */
import { decodeJwt, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import type { Entry } from '../../shared/registry/entry.js';
import type { IssuerClient } from '../issuer-client.js';
import { isJwtSvidFresh, jwtSvidFreshUntil } from '../rotation-policy.js';

/** A WIT-SVID and the private key of its `cnf`. */
export interface MintedWitSvid {
  entryId: string;
  spiffeId: string;
  token: string;
  /** the private JWK (with alg) of the key in `cnf.jwk`; only ever sent to the workload */
  privateJwk: JWK;
  /** ms */
  issuedAt: number;
  expiresAt: number;
  hint: string;
}

/** The WIT algorithm of the keys the agent generates (WIT-SVID.md §3.2 allows it; every client supports it). */
const WORKLOAD_ALG = 'ES256';

export class WitSvidCache {
  readonly #clock: Clock;
  readonly #issuer: Pick<IssuerClient, 'mintWitSvids'>;
  #held = new Map<string, MintedWitSvid>();
  #inflight = new Map<string, Promise<MintedWitSvid>>();

  constructor(clock: Clock, issuer: Pick<IssuerClient, 'mintWitSvids'>) {
    this.#clock = clock;
    this.#issuer = issuer;
  }

  get size(): number {
    return this.#held.size;
  }

  /** Fresh WIT-SVIDs of `entries` (in order): held ones as they are, the others in one /wit-svids call. */
  async fetch(entries: readonly Entry[], isCurrent: (entry: Entry) => boolean): Promise<MintedWitSvid[]> {
    const now = this.#clock();
    const missing = entries.filter((e) => {
      const held = this.#held.get(e.id);
      return !(held && isJwtSvidFresh(held.issuedAt, held.expiresAt, now)) && !this.#inflight.has(e.id);
    });
    if (missing.length > 0) {
      const batch = this.#mint(missing, isCurrent);
      missing.forEach((e, i) => {
        const one = batch.then((svids) => svids[i]!);
        one.catch(() => undefined); // awaited below by this call; others may never ask
        this.#inflight.set(e.id, one);
        void one.finally(() => this.#inflight.get(e.id) === one && this.#inflight.delete(e.id)).catch(() => undefined);
      });
    }
    return Promise.all(entries.map((e) => this.#inflight.get(e.id) ?? Promise.resolve(this.#held.get(e.id)!)));
  }

  /** When the earliest held WIT-SVID of `entryIds` reaches half-life (ms), if any is held. */
  refreshAt(entryIds: Iterable<string>): number | undefined {
    let at: number | undefined;
    for (const id of entryIds) {
      const held = this.#held.get(id);
      if (!held) continue;
      const half = jwtSvidFreshUntil(held.issuedAt, held.expiresAt);
      at = at === undefined ? half : Math.min(at, half);
    }
    return at;
  }

  dropEntry(entryId: string): void {
    this.#held.delete(entryId);
  }

  dropExpired(now: number): void {
    for (const [id, held] of this.#held) if (now >= held.expiresAt) this.#held.delete(id);
  }

  async #mint(entries: readonly Entry[], isCurrent: (entry: Entry) => boolean): Promise<MintedWitSvid[]> {
    const pairs = await Promise.all(entries.map(() => generateKeyPair(WORKLOAD_ALG, { extractable: true })));
    const publicJwks = await Promise.all(pairs.map(async (p) => ({ ...(await exportJWK(p.publicKey)), alg: WORKLOAD_ALG })));
    const { svids } = await this.#issuer.mintWitSvids({ requests: entries.map((e, i) => ({ entryId: e.id, publicKey: publicJwks[i]! })) });
    const now = this.#clock();
    return Promise.all(
      entries.map(async (entry, i) => {
        const got = svids?.[i];
        if (!got || got.entryId !== entry.id || typeof got.token !== 'string') throw new WispError('ERR_UNAVAILABLE', 'issuer returned no WIT-SVID');
        const iat = decodeJwt(got.token).iat;
        const minted: MintedWitSvid = {
          entryId: entry.id,
          spiffeId: got.spiffeId,
          token: got.token,
          privateJwk: { ...(await exportJWK(pairs[i]!.privateKey)), alg: WORKLOAD_ALG },
          issuedAt: typeof iat === 'number' ? iat * 1000 : now,
          expiresAt: got.expiresAt * 1000,
          hint: entry.hint,
        };
        // kept only if the entry was not updated while it was being minted
        if (isCurrent(entry)) this.#held.set(entry.id, minted);
        return minted;
      }),
    );
  }
}
