/**
 * Every agent metric's name, help text and label names, written once (docs/telemetry.md lists them).
 * Where SPIRE has the same event the name is SPIRE's as its Prometheus sink writes it: the metric prefix
 * (`spire_agent`) and the key parts joined with `_`, counters without a `_total` suffix, a call counter's
 * latency under `<key>_elapsed_time` in milliseconds with a `status` label holding the gRPC code name.
 * Wisp's own metrics (no SPIRE equivalent) use the prefix `wisp_agent` and Prometheus' own conventions.
 * @module
 */

/** SPIRE's default MetricPrefix for the agent. */
export const SPIRE_AGENT_PREFIX = 'spire_agent';
/** Prefix of the agent metrics SPIRE has no equivalent of. */
export const WISP_AGENT_PREFIX = 'wisp_agent';

/** Label names. `status`: a gRPC code name (`OK`, `InvalidArgument`, ...), as SPIRE's call counters. */
export const LABELS = {
  STATUS: 'status',
  METHOD: 'method',
  SVID_TYPE: 'svid_type',
  ROUTE: 'route',
  CODE: 'code',
  VERSION: 'version',
  TRUST_DOMAIN_ID: 'trust_domain_id',
} as const;

/** The gRPC code names a call may end with (google.golang.org/grpc/codes String()). */
export const GRPC_STATUS_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
] as const;
export type GrpcStatusName = (typeof GRPC_STATUS_NAMES)[number];

/**
 * SPIRE's metric key of an RPC service or method name (PascalCase → snake_case, as its middleware does:
 * an underscore before an upper-case letter that follows or precedes a lower-case one).
 * @example metricKeyOf('FetchX509SVID') // 'fetch_x509svid'
 */
export function metricKeyOf(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const r = name[i]!;
    if (!/[\p{L}\p{N}]/u.test(r)) {
      out += '_';
      continue;
    }
    const lower = r.toLowerCase();
    const isLower = (c: string | undefined) => c !== undefined && c !== c.toUpperCase() && c === c.toLowerCase();
    if (r !== lower && i > 0 && i + 1 < name.length && (isLower(name[i + 1]) || isLower(name[i - 1])) && !out.endsWith('_')) out += '_';
    out += lower;
  }
  return out;
}

/** SPIRE's short service names (its `serviceReplacer`): the Workload API and Envoy SDS v3. */
export const RPC_SERVICES = { workloadApi: 'WorkloadAPI', sdsV3: 'SDS.v3' } as const;

/** A call counter's two metrics: the count and the latency in ms (`_elapsed_time`), both with `status`. */
export interface CallCounterName {
  name: string;
  help: string;
  elapsed: string;
  elapsedHelp: string;
}

function callCounter(keyParts: readonly string[], what: string): CallCounterName {
  const name = [SPIRE_AGENT_PREFIX, ...keyParts].join('_');
  return { name, help: `${what}, by gRPC status.`, elapsed: `${name}_elapsed_time`, elapsedHelp: `${what}: elapsed time in milliseconds, by gRPC status.` };
}

/** `rpc_<service>_<method>`: SPIRE's call counter of an RPC on the agent's socket. */
export function rpcCallCounter(service: string, method: string): CallCounterName {
  return callCounter(['rpc', ...service.split('.').map(metricKeyOf), metricKeyOf(method)], `Calls of ${service}/${method}`);
}

/** The call counters of work the agent does (not RPCs it serves). */
export const AGENT_CALLS = {
  /** renewing the agent's own SVID (SPIRE `agent_svid.rotate`) */
  agentSvidRotate: callCounter(['agent_svid', 'rotate'], "Rotations of the agent's own SVID"),
  /** node attestation (SPIRE `node.attestor.new_svid`) */
  nodeAttestation: callCounter(['node', 'attestor', 'new_svid'], 'Node attestations (calls for a new agent SVID)'),
  /** the entries part of a sync (SPIRE `manager.sync.fetch_entries_updates`) */
  fetchEntries: callCounter(['manager', 'sync', 'fetch_entries_updates'], 'Syncs fetching entries and bundle updates'),
  /** workload X509-SVIDs signed in a sync (SPIRE `manager.sync.fetch_svids_updates`) */
  fetchSvids: callCounter(['manager', 'sync', 'fetch_svids_updates'], 'Syncs fetching X509-SVID updates'),
} as const;
export type AgentCallKey = keyof typeof AGENT_CALLS;

const spire = (...parts: string[]) => [SPIRE_AGENT_PREFIX, ...parts].join('_');
const wisp = (...parts: string[]) => [WISP_AGENT_PREFIX, ...parts].join('_');

/** Plain counters and gauges. */
export const AGENT_METRICS = {
  workloadApiConnection: { name: spire('workload_api', 'connection'), help: 'Workload API (and SDS) connections accepted on the agent socket.' },
  workloadApiConnections: { name: spire('workload_api', 'connections'), help: 'Open connections on the agent socket.' },
  sdsApiConnections: { name: spire('sds_api', 'connections'), help: 'Open Envoy SDS streams (StreamSecrets).' },
  rateLimitExceeded: { name: spire('workload_api', 'rate_limit_exceeded'), help: 'Workload API or SDS requests refused by the per-selector-set rate limit, by method.', labels: [LABELS.METHOD] },
  bundlesUpdateJwt: { name: spire('workload_api', 'bundles_update', 'jwt'), help: 'Updates of the trust bundle (X.509 and JWT authorities) received from the issuer.' },
  lruCacheRecordMapSize: { name: spire('lru_cache_record_map_size'), help: 'Registration entries the agent cache holds.', labels: [LABELS.SVID_TYPE] },
  lruCacheSvidMapSize: { name: spire('lru_cache_svid_map_size'), help: 'Workload SVIDs the agent cache holds.', labels: [LABELS.SVID_TYPE] },
  jwtSvidCacheSize: { name: spire('jwt_svid_cache_size'), help: 'JWT-SVIDs in the JWT-SVID cache.' },
  started: { name: spire('started'), help: 'Information about the agent (always 1).', labels: [LABELS.VERSION, LABELS.TRUST_DOMAIN_ID] },
  uptimeInMs: { name: spire('uptime_in_ms'), help: 'Uptime of the agent in milliseconds.' },
  // Wisp's own
  workloadApiStreams: { name: wisp('workload_api_streams'), help: 'Open Workload API and SDS streams, by method.', labels: [LABELS.METHOD] },
  issuerRequestDuration: { name: wisp('issuer_request_duration_seconds'), help: "Requests to the issuer's agent API: latency in seconds, by route (failures included).", labels: [LABELS.ROUTE] },
  issuerRequestErrors: { name: wisp('issuer_request_errors_total'), help: "Failed requests to the issuer's agent API, by route and Wisp error code.", labels: [LABELS.ROUTE, LABELS.CODE] },
} as const;

/** The issuer routes the agent calls (the `route` label). */
export const ISSUER_ROUTES = ['/attest', '/attest/challenge', '/renew', '/sync', '/x509-svids', '/jwt-svids', '/wit-svids', '/bundle', '/federation/refresh-tasks', '/federation/bundles'] as const;
export type IssuerRoute = (typeof ISSUER_ROUTES)[number];

/** Bucket bounds of the `_elapsed_time` histograms, ms (Workload API calls are sub-millisecond to a few ms). */
export const ELAPSED_MS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000] as const;
/** Bucket bounds of the issuer request histogram, seconds. */
export const ISSUER_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;
