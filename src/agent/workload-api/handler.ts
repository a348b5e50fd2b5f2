/**
 * The SPIFFE Workload API methods (SPIRE's pkg/agent/endpoints/workload/handler.go), free of gRPC: each method takes the
 * decoded request and a call context (the caller's kernel credentials and an AbortSignal) and returns a
 * response, or an async iterable of complete responses for the streaming methods (Workload API §4.3).
 * Failures are `WispError`s; server.ts maps them to gRPC codes through shared/error-status.ts.
 *
 * Error rules (Workload Endpoint §6, Workload API §5.2/§6.2, SPIRE):
 * - agent not ready, or attestation failed → Unavailable
 * - caller holds no identity → PermissionDenied "no identity issued" (ValidateJWTSVID excepted: any attested
 *   caller may validate, as spire-agent lets it; SPIFFE_Workload_API.md §6.2.3 asks no identity of the validator)
 * - missing audience / svid, bad spiffe_id → InvalidArgument
 * - WIT-SVID profile (Workload API §7): Unimplemented while the own trust domain publishes no wit-svid key or the
 *   agent cannot mint WIT-SVIDs; else streamed like X509-SVIDs, renewed at half-life
 * @module
 */
import { create, equals, type DescMessage, type JsonObject, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import { LOG_FIELDS, type Logger } from '../log.js';
import type { BundleSet, IdentitySource, MintedJwtSvid, TrustDomainBundle, WorkloadX509Svid } from '../cache/identity-source.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { concatBytes } from '../../shared/encoding/bytes.js';
import { WispError, isWispError } from '../../shared/errors.js';
import type { Selector } from '../../shared/registry/selectors.js';
import { parseSpiffeId, parseTrustDomain, trustDomainId } from '../../shared/spiffe/id.js';
import { publicJwkMembers } from '../../shared/spiffe/jwk.js';
import {
  JWTBundlesResponseSchema,
  WITBundlesResponseSchema,
  WITSVIDResponseSchema,
  JWTSVIDResponseSchema,
  X509BundlesResponseSchema,
  type JWTSVIDResponse,
  X509SVIDResponseSchema,
  type SpiffeWorkloadAPI,
  type X509SVIDResponse,
} from '../../node/workload-api/gen/workload_pb.js';
import { validateWorkloadJwt, type JwtSvidValidator } from './jwt-validate.js';
import type { CallerRateLimiter, RateLimitedMethod } from './rate-limit.js';
import type { PeerInfo, WorkloadAttestor } from './unix-attestor.js';

/** How long a change is coalesced before the streams see it; every change is delivered within this. */
export const DEFAULT_UPDATE_DELAY_MS = 100;

/** What one call knows about its caller. */
export interface CallContext {
  peer: PeerInfo;
  /** aborted when the client cancels or the server shuts down */
  signal: AbortSignal;
}

type Methods = (typeof SpiffeWorkloadAPI)['method'];

/** The service as plain functions, one per RPC of SpiffeWorkloadAPI, typed from the generated descriptor. */
export type WorkloadApiImpl = {
  [K in keyof Methods]: Methods[K] extends { methodKind: 'unary'; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O>>
    : Methods[K] extends { methodKind: 'server_streaming'; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? (request: MessageShape<I>, ctx: CallContext) => AsyncIterable<MessageInitShape<O>>
      : never;
};

/** Narrow dependencies (STYLE G16). */
export interface WorkloadApiDeps {
  /** unix workload attestor (SO_PEERCRED + /proc): `createUnixAttestor()` */
  attest: WorkloadAttestor;
  /** the agent cache */
  source: IdentitySource;
  /** JWT-SVID validation; default: ./jwt-validate.ts */
  validateJwt?: JwtSvidValidator;
  clock?: Clock;
  log?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** coalescing window for stream updates; default DEFAULT_UPDATE_DELAY_MS (must stay well under 1 s) */
  updateDelayMs?: number;
  /** SPIRE `allow_unauthenticated_verifiers`: callers with no identity still get bundles (validation needs none) */
  allowUnauthenticatedVerifiers?: boolean;
  /** per-caller limits (SPIRE `ratelimit`), shared with SDS: `createCallerRateLimiter(config.rateLimit)`; none: unlimited */
  limiter?: CallerRateLimiter;
}

const noIdentity = () => new WispError('ERR_NO_IDENTITY', 'no identity issued');
const notReady = () => new WispError('ERR_UNAVAILABLE', 'agent is not ready');

/** The key of every bundle map: the SPIFFE ID of the trust domain (Workload API §4.6). */
const bundleKey = (b: TrustDomainBundle): string => trustDomainId(parseTrustDomain(b.trustDomain));


/** The same objects, in the same order: identity, not contents (the cache's objects are replaced on change, never modified). */
function sameObjects<T extends object>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A JWK Set document of public members only: a private parameter in a bundle must never reach a workload. */
function publicJwkSetJson(keys: readonly object[]): string {
  return JSON.stringify({ keys: keys.map(publicJwkMembers) });
}

/** JWT-SVID §5: a bundle's JWT authorities as a JWK Set document. */
export function jwksJson(bundle: TrustDomainBundle): Uint8Array {
  return new TextEncoder().encode(publicJwkSetJson(bundle.jwtAuthorities));
}

/** WIT-SVID.md §6.2: a bundle's wit-svid keys as a JWK Set document (WITBundlesResponse.bundles values). */
export function witJwksJson(bundle: TrustDomainBundle): string {
  return publicJwkSetJson(bundle.witAuthorities ?? []);
}

const witUnsupported = () => new WispError('ERR_UNIMPLEMENTED', 'the WIT-SVID profile is not supported');

/** Resolves true on the feed's next change, false once aborted, or true at `at` (ms on `clock`) if that comes first. */
function changeOrTime(feed: ReturnType<typeof changeFeed>, at: number | undefined, clock: Clock): Promise<boolean> {
  if (at === undefined) return feed.next();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const due = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, at - clock()))));
  return Promise.race([feed.next(), due]).finally(() => clearTimeout(timer));
}

/** Own bundle plus the federated ones named in `federatesWith` that the agent has, sorted by trust domain. */
function bundlesFor(bundles: BundleSet, federatesWith: Iterable<string>): TrustDomainBundle[] {
  const federated = [...new Set(federatesWith)]
    .filter((td) => td !== bundles.own.trustDomain)
    .sort()
    .map((td) => bundles.federated.get(td))
    .filter((b): b is TrustDomainBundle => b !== undefined);
  return [bundles.own, ...federated];
}

/** Keeps the first SVID of each non-empty hint (Workload API §5.2.1: hints are unique per response). */
function uniqueHints<T extends { hint: string }>(items: readonly T[], onDrop: (item: T) => void): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    if (!item.hint) return true;
    if (seen.has(item.hint)) {
      onDrop(item);
      return false;
    }
    seen.add(item.hint);
    return true;
  });
}

/**
 * Signals that the IdentitySource changed, coalesced: the first change after a wait schedules one wake-up
 * `delayMs` later; further changes in that window ride along. Unsubscribes on `close()`.
 */
export function changeFeed(source: IdentitySource, signal: AbortSignal, delayMs: number) {
  let pending = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let wake: (() => void) | undefined;
  const unsubscribe = source.subscribe(() => {
    if (pending || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      pending = true;
      wake?.();
    }, delayMs);
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  return {
    /** resolves true on the next change, false once the call is aborted */
    async next(): Promise<boolean> {
      while (!pending && !signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      pending = false;
      return !signal.aborted;
    },
    close() {
      unsubscribe();
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Creates the Workload API implementation.
 * @example
 * const impl = createWorkloadApi({ attest: createUnixAttestor(), source: cache, log });
 * const server = await startWorkloadApiServer({ socketPath, impl, log });
 */
/**
 * The caller's selectors, as both APIs on the socket (Workload API and SDS) attest it: the agent must be ready,
 * and a failure that is not already a WispError is Unavailable (logged with the caller's pid and uid). With
 * `method`, the caller's rate limit for it is then taken (./rate-limit.ts): the one place both APIs enforce it.
 */
export function createCallerAttestation(deps: {
  attest: WorkloadAttestor;
  source: IdentitySource;
  limiter?: CallerRateLimiter | undefined;
  log?: Pick<Logger, 'warn'>;
}): (ctx: CallContext, method?: RateLimitedMethod) => Promise<Selector[]> {
  const limiter = deps.limiter?.active ? deps.limiter : undefined; // limits off: one branch per call
  return async (ctx, method) => {
    if (!deps.source.isReady()) throw notReady();
    let selectors: Selector[];
    try {
      selectors = await deps.attest(ctx.peer);
    } catch (err) {
      deps.log?.warn({ pid: ctx.peer.pid, uid: ctx.peer.uid, err }, 'workload attestation failed');
      if (isWispError(err)) throw err;
      throw new WispError('ERR_UNAVAILABLE', 'workload attestation failed', { cause: err });
    }
    if (limiter && method) limiter.check(method, selectors, ctx.peer);
    return selectors;
  };
}

export function createWorkloadApi(deps: WorkloadApiDeps): WorkloadApiImpl {
  const { source } = deps;
  const clock = deps.clock ?? systemClock;
  const validateJwt = deps.validateJwt ?? validateWorkloadJwt;
  const delayMs = deps.updateDelayMs ?? DEFAULT_UPDATE_DELAY_MS;
  const log = deps.log;

  const attest = createCallerAttestation(deps);

  /**
   * Streams complete responses: the first at once, then one per (coalesced) change that alters the
   * response. `build` returns undefined to wait for the next change, or throws to end the stream.
   */
  async function* watch<S extends DescMessage>(schema: S, ctx: CallContext, build: () => MessageInitShape<S> | undefined) {
    const feed = changeFeed(source, ctx.signal, delayMs);
    try {
      let last: MessageShape<S> | undefined;
      do {
        if (!source.isReady()) throw notReady();
        const init = build();
        if (init === undefined) continue;
        const message = create(schema, init);
        if (last && (last === message || equals(schema, last, message))) continue;
        last = message;
        yield init;
      } while (await feed.next());
    } finally {
      feed.close();
    }
  }

  /** The caller's identities, or only the one named `wanted`: none issued (for `wanted`) is PermissionDenied. */
  function issuedIdentities(selectors: Selector[], wanted: string | undefined) {
    const identities = source.identitiesFor(selectors);
    if (identities.length === 0) throw noIdentity();
    const chosen = wanted ? identities.filter((i) => i.spiffeId === wanted) : identities;
    if (chosen.length === 0) throw new WispError('ERR_PERMISSION_DENIED', `no identity issued for ${wanted}`);
    return chosen;
  }

  /** Whether the WIT-SVID profile is on: the agent can mint WIT-SVIDs and the own trust domain publishes a wit-svid key. */
  const witProfileOn = () => source.fetchWitSvids !== undefined && (source.bundles().own.witAuthorities?.length ?? 0) > 0;

  /** Selectors of a caller who must hold an identity unless verifiers may be unauthenticated. */
  function verifierIdentities(selectors: Selector[]) {
    const identities = source.identitiesFor(selectors);
    if (identities.length === 0 && !deps.allowUnauthenticatedVerifiers) throw noIdentity();
    return identities;
  }

  /** the FetchJWTSVID response of one JWT-SVID, while the cache holds that JWT-SVID */
  const jwtResponses = new WeakMap<MintedJwtSvid, JWTSVIDResponse>();
  /**
   * the last X509SVIDResponse built for an entry set, with what it was built from, keyed by the set's first
   * SVID object: once the cache replaces that SVID (rotation, removal), the response and the key material in it
   * go with it
   */
  const x509Responses = new WeakMap<WorkloadX509Svid, { svids: readonly WorkloadX509Svid[]; own: TrustDomainBundle; federated: readonly TrustDomainBundle[]; crl: Uint8Array[]; message: X509SVIDResponse }>();

  function x509SvidResponse(selectors: Selector[], pid: number): X509SVIDResponse | undefined {
    const svids: WorkloadX509Svid[] = uniqueHints(source.x509SvidsFor(selectors), (s) =>
      log?.warn({ [LOG_FIELDS.SPIFFE_ID]: s.spiffeId, [LOG_FIELDS.ENTRY_ID]: s.entryId, hint: s.hint, pid }, 'ignoring X509-SVID with duplicated hint'),
    );
    if (svids.length === 0) {
      // entitled but not minted yet: wait for the cache (SPIRE waits the same way); otherwise denied
      if (source.identitiesFor(selectors).length > 0) return undefined;
      throw noIdentity();
    }
    const bundles = source.bundles();
    const federated = bundlesFor(bundles, svids.flatMap((s) => s.federatesWith)).slice(1);
    const crl = source.crls();
    // the same SVIDs, bundles and CRLs (the very objects the cache holds) give the same response: one
    // message, encoded once (server.ts), for every caller whose own selectors resolved to this entry set
    const hit = x509Responses.get(svids[0]!);
    if (hit && hit.own === bundles.own && hit.crl === crl && sameObjects(hit.svids, svids) && sameObjects(hit.federated, federated)) return hit.message;
    const ownBundle = concatBytes(bundles.own.x509Authorities);
    const message = create(X509SVIDResponseSchema, {
      svids: svids.map((s) => ({
        spiffeId: s.spiffeId,
        x509Svid: concatBytes(s.certChain),
        x509SvidKey: s.privateKey,
        bundle: ownBundle,
        hint: s.hint,
      })),
      federatedBundles: Object.fromEntries(federated.map((b) => [bundleKey(b), concatBytes(b.x509Authorities)])),
      // decoded once per change of the revocations (cache/revocations.ts), not per call
      crl,
    });
    x509Responses.set(svids[0]!, { svids, own: bundles.own, federated, crl, message });
    return message;
  }

  return {
    async *fetchX509SVID(_request, ctx) {
      const selectors = await attest(ctx, 'FetchX509SVID');
      log?.debug({ pid: ctx.peer.pid }, 'FetchX509SVID stream opened');
      yield* watch(X509SVIDResponseSchema, ctx, () => x509SvidResponse(selectors, ctx.peer.pid));
    },

    async *fetchX509Bundles(_request, ctx) {
      const selectors = await attest(ctx, 'FetchX509Bundles');
      yield* watch(X509BundlesResponseSchema, ctx, () => {
        const identities = verifierIdentities(selectors);
        const bundles = bundlesFor(source.bundles(), identities.flatMap((i) => i.federatesWith));
        return { crl: source.crls(), bundles: Object.fromEntries(bundles.map((b) => [bundleKey(b), concatBytes(b.x509Authorities)])) };
      });
    },

    async *fetchJWTBundles(_request, ctx) {
      const selectors = await attest(ctx, 'FetchJWTBundles');
      yield* watch(JWTBundlesResponseSchema, ctx, () => {
        const identities = verifierIdentities(selectors);
        const bundles = bundlesFor(source.bundles(), identities.flatMap((i) => i.federatesWith));
        return { bundles: Object.fromEntries(bundles.map((b) => [bundleKey(b), jwksJson(b)])) };
      });
    },

    async fetchJWTSVID(request, ctx) {
      const audience = request.audience.filter((a) => a.length > 0);
      if (audience.length === 0 || audience.length !== request.audience.length) {
        throw new WispError('ERR_BAD_REQUEST', 'audience must be specified');
      }
      const wanted = request.spiffeId ? parseSpiffeId(request.spiffeId) : undefined;
      const selectors = await attest(ctx, 'FetchJWTSVID');
      const chosen = issuedIdentities(selectors, wanted);
      const svids = await Promise.all(chosen.map((i) => source.fetchJwtSvid(i.entryId, audience)));
      if (svids.length === 1) {
        // the cache hands out one object per JWT-SVID until it mints another: its response is built (and
        // encoded, server.ts) once
        const svid = svids[0]!;
        let message = jwtResponses.get(svid);
        if (!message) jwtResponses.set(svid, (message = create(JWTSVIDResponseSchema, { svids: [{ spiffeId: svid.spiffeId, svid: svid.token, hint: svid.hint }] })));
        return message;
      }
      const unique = uniqueHints(svids, (s) => log?.warn({ [LOG_FIELDS.SPIFFE_ID]: s.spiffeId, hint: s.hint }, 'ignoring JWT-SVID with duplicated hint'));
      return { svids: unique.map((s) => ({ spiffeId: s.spiffeId, svid: s.token, hint: s.hint })) };
    },

    async validateJWTSVID(request, ctx) {
      if (!request.audience) throw new WispError('ERR_BAD_REQUEST', 'audience must be specified');
      if (!request.svid) throw new WispError('ERR_BAD_REQUEST', 'svid must be specified');
      await attest(ctx); // attested (agent ready, caller known) but no identity required, as in SPIRE
      try {
        const { spiffeId, claims } = await validateJwt(request.svid, request.audience, source.bundles(), clock());
        return { spiffeId, claims: claims as JsonObject };
      } catch (err) {
        if (isWispError(err)) log?.info({ pid: ctx.peer.pid, reason: err.cause, [LOG_FIELDS.ERROR_CODE]: err.code }, 'JWT-SVID validation failed');
        throw err;
      }
    },

    async *fetchWITSVID(request, ctx) {
      const wanted = request.spiffeId ? parseSpiffeId(request.spiffeId) : undefined;
      const selectors = await attest(ctx);
      if (!witProfileOn()) throw witUnsupported();
      // Workload API §7.2.1: every message holds all the caller's WIT-SVIDs; a new one on any change and at
      // the half-life of the earliest (renewed then, WIT-SVID.md §3.4), and nothing when nothing changed
      const feed = changeFeed(source, ctx.signal, delayMs);
      try {
        let last: MessageShape<typeof WITSVIDResponseSchema> | undefined;
        let entryIds: string[] = [];
        do {
          if (!source.isReady()) throw notReady();
          entryIds = issuedIdentities(selectors, wanted).map((i) => i.entryId);
          const svids = uniqueHints(await source.fetchWitSvids!(entryIds), (s) => log?.warn({ [LOG_FIELDS.SPIFFE_ID]: s.spiffeId, hint: s.hint }, 'ignoring WIT-SVID with duplicated hint'));
          const init = { svids: svids.map((s) => ({ spiffeId: s.spiffeId, witSvid: s.token, witSvidKey: JSON.stringify(s.privateJwk), hint: s.hint })) };
          const message = create(WITSVIDResponseSchema, init);
          if (!last || !equals(WITSVIDResponseSchema, last, message)) {
            last = message;
            yield init;
          }
        } while (await changeOrTime(feed, source.witRefreshAt?.(entryIds), clock));
      } finally {
        feed.close();
      }
    },

    async *fetchWITBundles(_request, ctx) {
      const selectors = await attest(ctx);
      if (!witProfileOn()) throw witUnsupported();
      yield* watch(WITBundlesResponseSchema, ctx, () => {
        const identities = verifierIdentities(selectors);
        const bundles = bundlesFor(source.bundles(), identities.flatMap((i) => i.federatesWith));
        return { bundles: Object.fromEntries(bundles.map((b) => [bundleKey(b), witJwksJson(b)])) };
      });
    },
  };
}
