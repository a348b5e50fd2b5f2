/**
 * Envoy's Secret Discovery Service (v3) on the agent socket, free of gRPC like src/agent/workload-api/handler.ts:
 * the caller is attested the same way (kernel credentials → selectors), and secrets come from the same
 * IdentitySource. Behaviour learned from SPIRE's agent (pkg/agent/endpoints/sdsv3/handler.go):
 *
 * - FetchSecrets: one response, no version, no nonce.
 * - StreamSecrets (state of the world): every response carries the current `version_info` (a counter bumped
 *   on each change of what this caller may see) and a fresh nonce. A request that answers an older nonce is
 *   stale and ignored. A request with the latest nonce is an ACK when it carries the sent version, a NACK
 *   otherwise (its `error_detail` is logged); either way nothing is resent unless the resource names changed.
 *   A change of the caller's SVIDs or bundles is pushed to the last requested names.
 * - Names the caller may not have end the call with InvalidArgument (./resources.ts).
 * - DeltaSecrets is not offered (Unimplemented), as in SPIRE.
 * @module
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { Logger } from '../log.js';
import type { IdentitySource, TrustDomainBundle } from '../cache/identity-source.js';
import { toBase64 } from '../../shared/encoding/base64.js';
import { WispError } from '../../shared/errors.js';
import type { Selector } from '../../shared/registry/selectors.js';
import { changeFeed, createCallerAttestation, DEFAULT_UPDATE_DELAY_MS, type CallContext } from '../workload-api/handler.js';
import type { CallerRateLimiter } from '../workload-api/rate-limit.js';
import type { WorkloadAttestor } from '../workload-api/unix-attestor.js';
import { DiscoveryResponseSchema, type DiscoveryRequest } from './gen/envoy/service/discovery/v3/discovery_pb.js';
import { buildSecrets, SDS_DEFAULTS, useSpiffeValidator, type SdsConfig, type WorkloadSnapshot } from './resources.js';

type Response = MessageInitShape<typeof DiscoveryResponseSchema>;

/** The service as plain functions, one per RPC the agent serves. */
export interface SdsImpl {
  fetchSecrets(request: DiscoveryRequest, ctx: CallContext): Promise<Response>;
  streamSecrets(requests: AsyncIterable<DiscoveryRequest>, ctx: CallContext): AsyncIterable<Response>;
}

export interface SdsDeps {
  attest: WorkloadAttestor;
  source: IdentitySource;
  config?: Partial<SdsConfig>;
  log?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** coalescing window for pushes; default the Workload API's */
  updateDelayMs?: number;
  /** the Workload API's limiter (one set of buckets per agent): StreamSecrets per open, FetchSecrets per call */
  limiter?: CallerRateLimiter;
}

/** 4 random bytes as hex, as SPIRE's nonces. */
function nextNonce(): string {
  return [...crypto.getRandomValues(new Uint8Array(4))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((n) => set.has(n));
}

/** Identity of a snapshot's content: the stream bumps its version only when this changes. */
function fingerprint(s: WorkloadSnapshot): string {
  const bundle = (b: TrustDomainBundle) => `${b.trustDomain}=${b.x509Authorities.map(toBase64).join(',')}`;
  const svids = s.svids.map((v) => `${v.spiffeId}=${v.certChain.map(toBase64).join(',')}`);
  return [...svids, bundle(s.own), ...s.federated.map(bundle)].join(';');
}

/**
 * Creates the SDS implementation.
 * @example
 * const sds = createSds({ attest: createUnixAttestor(), source: cache, config: agentConfig.sds, log });
 * await startWorkloadApiServer({ socketPath, impl, sds, log });
 */
export function createSds(deps: SdsDeps): SdsImpl {
  const { source, log } = deps;
  const config: SdsConfig = { ...SDS_DEFAULTS, ...deps.config };
  const delayMs = deps.updateDelayMs ?? DEFAULT_UPDATE_DELAY_MS;

  const attest = createCallerAttestation(deps);

  /**
   * The caller's view now. While it is entitled to SVIDs none of which is minted yet, a stream waits
   * (undefined, as the Workload API streams wait) and a fetch gets the bundles only.
   */
  function snapshot(selectors: Selector[], wait: boolean): WorkloadSnapshot | undefined {
    const svids = source.x509SvidsFor(selectors);
    const identities = source.identitiesFor(selectors);
    if (wait && svids.length === 0 && identities.length > 0) return undefined;
    const bundles = source.bundles();
    const federated = [...new Set(identities.flatMap((i) => i.federatesWith))]
      .filter((td) => td !== bundles.own.trustDomain)
      .sort()
      .flatMap((td) => bundles.federated.get(td) ?? []);
    return { svids, own: bundles.own, federated, ownCrls: source.crls() };
  }

  function respond(request: DiscoveryRequest, view: WorkloadSnapshot, versionInfo: string, nonce: string): Response {
    const resources = buildSecrets(view, request.resourceNames, config, useSpiffeValidator(request.node, config));
    return { versionInfo, nonce, typeUrl: request.typeUrl, resources };
  }

  return {
    async fetchSecrets(request, ctx) {
      const selectors = await attest(ctx, 'FetchSecrets');
      return create(DiscoveryResponseSchema, respond(request, snapshot(selectors, false)!, '', ''));
    },

    async *streamSecrets(requests, ctx) {
      const selectors = await attest(ctx, 'StreamSecrets');
      const feed = changeFeed(source, ctx.signal, delayMs);
      const incoming = requests[Symbol.asyncIterator]();
      // a read still pending when the call ends fails with the call: handled here, seen by the race if it runs
      const nextRequest = () => {
        const read = incoming.next();
        read.catch(() => undefined);
        return read;
      };
      try {
        let version = 0;
        let lastPrint: string | undefined;
        let view: WorkloadSnapshot | undefined;
        const refresh = () => {
          if (!source.isReady()) throw new WispError('ERR_UNAVAILABLE', 'agent is not ready');
          const next = snapshot(selectors, true);
          if (!next) return false;
          const print = fingerprint(next);
          if (print === lastPrint) return false;
          lastPrint = print;
          view = next;
          version++;
          return true;
        };
        refresh();
        let lastRequest: DiscoveryRequest | undefined;
        let lastNonce = '';
        let node: DiscoveryRequest['node'];
        let pendingRequest = nextRequest();
        let pendingChange = feed.next();
        for (;;) {
          const event = await Promise.race([
            pendingRequest.then((r) => ({ kind: 'request' as const, r })),
            pendingChange.then((changed) => ({ kind: 'change' as const, changed })),
          ]);
          let send = false;
          if (event.kind === 'change') {
            if (!event.changed) return; // aborted
            pendingChange = feed.next();
            send = refresh() && lastRequest !== undefined;
          } else {
            if (event.r.done) return; // Envoy closed its side
            pendingRequest = nextRequest();
            const request = event.r.value;
            const names = request.resourceNames;
            if (request.errorDetail) log?.error({ resource_names: names, error: request.errorDetail.message }, 'Envoy reported errors applying secrets');
            if (lastNonce !== '') {
              if (request.responseNonce !== lastNonce) {
                log?.warn({ nonce: request.responseNonce, expect: lastNonce }, 'Received unexpected nonce; ignoring request');
                continue;
              }
              if (request.versionInfo !== String(version)) {
                log?.error({ version_info: request.versionInfo, expect: String(version) }, 'Client rejected expected version and rolled back');
              }
            }
            request.node ??= node;
            send = lastRequest === undefined || !sameNames(lastRequest.resourceNames, names);
            lastRequest = request;
            if (request.node) node = request.node;
            log?.debug({ pid: ctx.peer.pid, resource_names: names, version_info: request.versionInfo, nonce: request.responseNonce }, 'StreamSecrets request');
            send &&= view !== undefined;
          }
          if (!send || !lastRequest || !view) continue;
          const response = respond(lastRequest, view, String(version), nextNonce());
          lastNonce = response.nonce!;
          yield response;
        }
      } finally {
        feed.close(); // the server ends the request side with the call
      }
    },
  };
}
