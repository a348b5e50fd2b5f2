/**
 * Batching of JWT-SVID requests to the issuer: misses from any workload, entry or audience that arrive within
 * a short window go out as one /jwt-svids call, so a burst of workloads costs one issuer round trip instead of
 * one each. Identical requests are merged before they get here (svid-cache.ts), and caching is not done here.
 * @module
 */
import { AGENT_API_LIMITS, type JwtSvidsRequest, type JwtSvidsResponse } from '../../shared/agent-api.js';
import { WispError } from '../../shared/errors.js';
import { isAgentUnknownError, isTransientIssuerError } from '../issuer-client.js';

/**
 * JWT-SVIDs not in the cache are minted in batches: the first miss waits this long (ms) for others, from any
 * workload, entry or audience, so a burst costs one /jwt-svids call instead of one per request.
 */
export const JWT_BATCH_WINDOW_MS = 2;
/**
 * A batch goes out at once when it reaches this many requests: the issuer's limit per call. A burst larger
 * than 100 misses is rare, and then one call spreads the issuer's per-request cost (authentication, D1, the
 * CA call) over more tokens: it mints about twice as many JWT-SVIDs per second at 500 as at 100
 * (docs/performance.md).
 */
export const JWT_BATCH_MAX = AGENT_API_LIMITS.MAX_BATCH_JWTS;

export type JwtRequest = JwtSvidsRequest['requests'][number];
export type MintedJwt = JwtSvidsResponse['svids'][number];

export interface JwtBatcher {
  /** Resolves with this request's JWT-SVID once its batch has been answered. */
  mint(request: JwtRequest): Promise<MintedJwt>;
}

interface Pending {
  request: JwtRequest;
  resolve: (svid: MintedJwt) => void;
  reject: (error: unknown) => void;
}

/**
 * @param send one /jwt-svids call (the issuer client's `mintJwtSvids`)
 * @param windowMs how long the first request of a batch waits for others; 0 still gathers one event-loop turn
 */
export function createJwtBatcher(send: (body: JwtSvidsRequest) => Promise<JwtSvidsResponse>, windowMs = JWT_BATCH_WINDOW_MS): JwtBatcher {
  let batch: Pending[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    const sending = batch;
    batch = [];
    if (sending.length > 0) void mintBatch(sending);
  }

  /** One /jwt-svids call for the batch; settles every request in it. Never rejects. */
  async function mintBatch(sending: Pending[]): Promise<void> {
    let svids: MintedJwt[];
    try {
      svids = (await send({ requests: sending.map((p) => p.request) })).svids ?? [];
    } catch (e) {
      // the issuer refuses a whole batch for one request it will not serve (an entry no longer authorized,
      // an audience it rejects): then each request is asked for alone, so only that one fails. An outage or
      // an agent the issuer no longer knows fails them all, as one call would.
      if (sending.length > 1 && e instanceof WispError && !isTransientIssuerError(e) && !isAgentUnknownError(e)) {
        await Promise.all(sending.map((p) => mintBatch([p])));
      } else {
        for (const p of sending) p.reject(e);
      }
      return;
    }
    // the response lists the SVIDs in request order (the same entry may come twice, with other audiences)
    sending.forEach((p, i) => {
      const got = svids[i];
      if (!got || got.entryId !== p.request.entryId || typeof got.token !== 'string') p.reject(new WispError('ERR_UNAVAILABLE', 'issuer returned no JWT-SVID'));
      else p.resolve(got);
    });
  }

  return {
    mint(request) {
      return new Promise<MintedJwt>((resolve, reject) => {
        batch.push({ request, resolve, reject });
        if (batch.length >= JWT_BATCH_MAX) flush();
        else timer ??= setTimeout(flush, windowMs);
      });
    },
  };
}
