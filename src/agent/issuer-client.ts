/**
 * The agent's client of the issuer's agent API (src/shared/agent-api.ts): JSON over HTTP (src/node/http-request.ts), a timeout on
 * every call (STYLE G21), every call but `attest` signed with an agent proof (src/shared/agent-proof.ts)
 * made with the agent's current key and SVID. Failures become `WispError`s: the issuer's
 * `{"error":{"code","message"}}` keeps its code; a network failure or timeout is `ERR_UNAVAILABLE`.
 * @module
 */
import {
  AGENT_API_PREFIX,
  type AttestChallengeRequest,
  type AttestChallengeResponse,
  type AttestRequest,
  type AttestResponse,
  type BundleResponse,
  type FederationRefreshTasksResponse,
  type JwtSvidsRequest,
  type JwtSvidsResponse,
  type RenewRequest,
  type RenewResponse,
  type SubmitFederatedBundleRequest,
  type SubmitFederatedBundleResponse,
  type SyncRequest,
  type SyncResponse,
  type WitSvidsRequest,
  type WitSvidsResponse,
  type X509SvidsRequest,
  type X509SvidsResponse,
} from '../shared/agent-api.js';
import { createAgentProof, randomJti } from '../shared/agent-proof.js';
import type { Clock } from '../shared/clock.js';
import { WispError } from '../shared/errors.js';
import { httpRequest, HttpRequestError, type HttpResponse } from '../node/http-request.js';
import { issuerError, parseJsonBody } from '../node/issuer-response.js';
import type { CryptoKey } from './keys.js';
import type { IssuerRoute } from '../shared/telemetry/names.js';
import type { WorkTelemetry } from './telemetry/metrics.js';

/** Largest issuer response the agent reads, bytes. */
export const MAX_ISSUER_RESPONSE_BYTES = 8 * 1024 * 1024;

/** The key and SVID chain that sign agent requests. */
export interface AgentCredentials {
  privateKey: CryptoKey;
  /** leaf first, DER */
  certChain: readonly Uint8Array[];
}

export interface IssuerClientOptions {
  /** base URL, no trailing slash (AgentConfig.serverUrl) */
  serverUrl: string;
  timeoutMs: number;
  clock: Clock;
  /** the credentials to sign with right now (they change on renewal and re-attestation) */
  credentials: () => AgentCredentials | undefined;
  /** latency and errors per route; absent: metrics off */
  telemetry?: Pick<WorkTelemetry, 'now' | 'issuerRequest'>;
}

export interface IssuerClient {
  /** unsigned: the attestation payload is the credential */
  attest(req: AttestRequest): Promise<AttestResponse>;
  /** unsigned: a single-use challenge for attestors that prove possession of a key (x509pop) */
  attestChallenge(req: AttestChallengeRequest): Promise<AttestChallengeResponse>;
  renew(req: RenewRequest): Promise<RenewResponse>;
  sync(req: SyncRequest): Promise<SyncResponse>;
  signX509Svids(req: X509SvidsRequest): Promise<X509SvidsResponse>;
  mintJwtSvids(req: JwtSvidsRequest): Promise<JwtSvidsResponse>;
  mintWitSvids(req: WitSvidsRequest): Promise<WitSvidsResponse>;
  fetchBundle(): Promise<BundleResponse>;
  /** the https_spiffe relationships this agent refreshes (docs/federation.md) */
  federationRefreshTasks(): Promise<FederationRefreshTasksResponse>;
  submitFederatedBundle(req: SubmitFederatedBundleRequest): Promise<SubmitFederatedBundleResponse>;
  /** the Authorization header (an agent proof, empty body) of a request made elsewhere: the notification channel's upgrade */
  proofFor(method: 'GET', route: string): Promise<string>;
}

/** Errors after which retrying the same call later may succeed (issuer down, overloaded, CA not ready). */
export function isTransientIssuerError(e: unknown): boolean {
  if (!(e instanceof WispError)) return true;
  return e.code === 'ERR_UNAVAILABLE' || e.code === 'ERR_CA_NOT_READY' || e.code === 'ERR_INTERNAL';
}

/** Errors meaning the issuer no longer accepts this agent's SVID: it must attest again. */
export function isAgentUnknownError(e: unknown): boolean {
  return e instanceof WispError && (e.code === 'ERR_AGENT_AUTH_FAILED' || e.code === 'ERR_SVID_REVOKED' || e.code === 'ERR_UNAUTHENTICATED' || e.code === 'ERR_AGENT_NOT_FOUND');
}

/** @example const client = createIssuerClient({ serverUrl, timeoutMs: 10_000, clock: systemClock, credentials: () => identity.current() }) */
export function createIssuerClient(options: IssuerClientOptions): IssuerClient {
  const telemetry = options.telemetry;
  async function call<T>(method: 'GET' | 'POST', route: IssuerRoute, body: unknown, signed: boolean): Promise<T> {
    if (!telemetry) return request<T>(method, route, body, signed);
    const t0 = telemetry.now();
    try {
      const out = await request<T>(method, route, body, signed);
      telemetry.issuerRequest(route, t0);
      return out;
    } catch (e) {
      telemetry.issuerRequest(route, t0, e instanceof WispError ? e.code : 'ERR_INTERNAL');
      throw e;
    }
  }

  async function proof(method: string, url: URL, bytes?: Uint8Array): Promise<string> {
    const creds = options.credentials();
    if (!creds) throw new WispError('ERR_UNAUTHENTICATED', 'agent has no SVID to sign requests with');
    return createAgentProof({
      method,
      pathAndQuery: url.pathname + url.search,
      ...(bytes ? { body: bytes } : {}),
      certChainDer: creds.certChain,
      privateKey: creds.privateKey as Parameters<typeof createAgentProof>[0]['privateKey'],
      now: Math.floor(options.clock() / 1000),
      jti: randomJti(),
    });
  }

  async function request<T>(method: 'GET' | 'POST', route: IssuerRoute, body: unknown, signed: boolean): Promise<T> {
    const url = new URL(`${options.serverUrl}${AGENT_API_PREFIX}${route}`);
    const bytes = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (bytes) headers['content-type'] = 'application/json';
    if (signed) headers['authorization'] = await proof(method, url, bytes);
    let res: HttpResponse;
    try {
      res = await httpRequest({ url, method, headers, ...(bytes ? { body: bytes } : {}), timeoutMs: options.timeoutMs, maxResponseBytes: MAX_ISSUER_RESPONSE_BYTES });
    } catch (e) {
      throw new WispError('ERR_UNAVAILABLE', `issuer ${method} ${route}${failureText(e, options.timeoutMs)}`, { cause: e });
    }
    const json = parseJsonBody(res.text);
    if (res.status < 200 || res.status > 299) {
      const { code, message } = issuerError(res.status, json);
      throw new WispError(code, `issuer ${method} ${route}: ${message ?? `HTTP ${res.status}`}`);
    }
    if (typeof json !== 'object' || json === null) {
      throw new WispError('ERR_UNAVAILABLE', `issuer ${method} ${route}: response is not a JSON object (HTTP ${res.status})`);
    }
    return json as T;
  }

  return {
    attest: (req) => call<AttestResponse>('POST', '/attest', req, false),
    attestChallenge: (req) => call<AttestChallengeResponse>('POST', '/attest/challenge', req, false),
    renew: (req) => call<RenewResponse>('POST', '/renew', req, true),
    sync: (req) => call<SyncResponse>('POST', '/sync', req, true),
    signX509Svids: (req) => call<X509SvidsResponse>('POST', '/x509-svids', req, true),
    mintJwtSvids: (req) => call<JwtSvidsResponse>('POST', '/jwt-svids', req, true),
    mintWitSvids: (req) => call<WitSvidsResponse>('POST', '/wit-svids', req, true),
    fetchBundle: () => call<BundleResponse>('GET', '/bundle', undefined, true),
    federationRefreshTasks: () => call<FederationRefreshTasksResponse>('GET', '/federation/refresh-tasks', undefined, true),
    submitFederatedBundle: (req) => call<SubmitFederatedBundleResponse>('POST', '/federation/bundles', req, true),
    proofFor: (method, route) => proof(method, new URL(`${options.serverUrl}${AGENT_API_PREFIX}${route}`)),
  };
}

/** The end of the ERR_UNAVAILABLE message: ` timed out after …`, ` unreachable (ECONNREFUSED)`, `: response …`. */
function failureText(e: unknown, timeoutMs: number): string {
  if (!(e instanceof HttpRequestError)) return ` unreachable (${e instanceof Error ? e.message : String(e)})`;
  if (e.kind === 'timeout') return ` timed out after ${timeoutMs} ms`;
  if (e.kind === 'connect' || e.kind === 'redirect') return ` unreachable (${e.code ?? e.message})`;
  return `: ${e.message}`;
}
