/**
 * The agent's metrics (names: src/shared/telemetry/names.ts) on its own prom-client Registry, never the
 * global one. The rest of the agent sees only `AgentTelemetry`'s small functions: handler, cache and client
 * code never touch prom-client. Per-call metrics (SPIRE's call counters, connection and stream counts) are
 * plain numbers and typed arrays laid out up front, read by the registry at scrape time: a Workload API call
 * costs a count, a sum and a bucket increment and allocates nothing. With telemetry off the callers hold
 * `undefined` and pay one branch. prom-client writes the exposition and the Node process metrics.
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  AGENT_CALLS,
  AGENT_METRICS,
  ELAPSED_MS_BUCKETS,
  GRPC_STATUS_NAMES,
  ISSUER_ROUTES,
  ISSUER_SECONDS_BUCKETS,
  LABELS,
  RPC_SERVICES,
  rpcCallCounter,
  type AgentCallKey,
  type CallCounterName,
  type GrpcStatusName,
  type IssuerRoute,
} from '../../shared/telemetry/names.js';

export { agentVersion } from './version.js';

/** The RPCs on the agent socket that are counted, by gRPC method name. */
export const COUNTED_RPCS = {
  FetchX509SVID: RPC_SERVICES.workloadApi,
  FetchX509Bundles: RPC_SERVICES.workloadApi,
  FetchJWTSVID: RPC_SERVICES.workloadApi,
  FetchJWTBundles: RPC_SERVICES.workloadApi,
  ValidateJWTSVID: RPC_SERVICES.workloadApi,
  FetchWITSVID: RPC_SERVICES.workloadApi,
  FetchWITBundles: RPC_SERVICES.workloadApi,
  StreamSecrets: RPC_SERVICES.sdsV3,
  FetchSecrets: RPC_SERVICES.sdsV3,
} as const;
export type CountedRpc = keyof typeof COUNTED_RPCS;
/** The streaming ones (the `method` values of the open-streams gauge). */
const STREAMING_RPCS = ['FetchX509SVID', 'FetchX509Bundles', 'FetchJWTBundles', 'StreamSecrets'] as const satisfies readonly CountedRpc[];

/** What the Workload API server reports. `startMs` comes from `now()` (performance.now). */
export interface RpcTelemetry {
  now(): number;
  rpcDone(method: CountedRpc, status: GrpcStatusName, startMs: number): void;
  streamOpened(method: CountedRpc): void;
  streamClosed(method: CountedRpc): void;
  connectionOpened(): void;
  connectionClosed(): void;
}

/** What the issuer client, identity and sync loop report. */
export interface WorkTelemetry {
  now(): number;
  callDone(key: AgentCallKey, status: GrpcStatusName, startMs: number): void;
  issuerRequest(route: IssuerRoute, startMs: number, errorCode?: string): void;
  bundleUpdated(): void;
}

/** Values read at scrape time (cheap getters; nothing counted on the hot path). */
export interface ScrapeSources {
  cacheSizes?: () => { entries: number; x509Svids: number; jwtSvids: number };
  rateLimitExceeded?: () => Record<string, number>;
}

export interface AgentTelemetry extends RpcTelemetry, WorkTelemetry {
  readonly registry: Registry;
  /** register the scrape-time sources (once, when the agent has built them) */
  watch(sources: ScrapeSources): void;
  /** the exposition in the Prometheus text format */
  metrics(): Promise<string>;
  readonly contentType: string;
}

const STATUS_INDEX = Object.fromEntries(GRPC_STATUS_NAMES.map((s, i) => [s, i])) as Record<GrpcStatusName, number>;
const BOUNDS = ELAPSED_MS_BUCKETS;

/**
 * One SPIRE call counter (`<key>` and `<key>_elapsed_time`) kept in typed arrays, one slot per status:
 * recording a call is a few array writes, with no allocation and no label hashing (prom-client's own
 * children hash their labels on every inc and observe). The registry reads the arrays when scraped and
 * formats them (prom-client's text writer), as a counter and a histogram.
 */
class CallStats {
  readonly #counts = new Float64Array(GRPC_STATUS_NAMES.length);
  readonly #sums = new Float64Array(GRPC_STATUS_NAMES.length);
  /** per status, per bucket: calls whose latency falls in that bucket (not cumulative) */
  readonly #buckets = new Float64Array(GRPC_STATUS_NAMES.length * BOUNDS.length);

  constructor(registry: Registry, n: CallCounterName) {
    // OK is listed from the start (at 0, so a rate() sees the first call); other statuses once they happen
    const seen = (i: number) => i === STATUS_INDEX.OK || this.#counts[i]! > 0;
    registry.registerMetric(scrapedMetric(n.name, n.help, 'counter', () =>
      GRPC_STATUS_NAMES.flatMap((status, i) => (seen(i) ? [{ labels: { [LABELS.STATUS]: status }, value: this.#counts[i]! }] : [])),
    ));
    registry.registerMetric(scrapedMetric(n.elapsed, n.elapsedHelp, 'histogram', () =>
      GRPC_STATUS_NAMES.flatMap((status, i) => {
        if (this.#counts[i] === 0) return [];
        let cumulative = 0;
        const buckets = BOUNDS.map((le, b) => {
          cumulative += this.#buckets[i * BOUNDS.length + b]!;
          return { metricName: `${n.elapsed}_bucket`, labels: { le: String(le), [LABELS.STATUS]: status }, value: cumulative };
        });
        return [
          ...buckets,
          { metricName: `${n.elapsed}_bucket`, labels: { le: '+Inf', [LABELS.STATUS]: status }, value: this.#counts[i]! },
          { metricName: `${n.elapsed}_sum`, labels: { [LABELS.STATUS]: status }, value: this.#sums[i]! },
          { metricName: `${n.elapsed}_count`, labels: { [LABELS.STATUS]: status }, value: this.#counts[i]! },
        ];
      }),
    ));
  }

  record(status: GrpcStatusName, ms: number): void {
    const i = STATUS_INDEX[status];
    this.#counts[i]!++;
    this.#sums[i]! += ms;
    let b = 0;
    while (b < BOUNDS.length && ms > BOUNDS[b]!) b++;
    if (b < BOUNDS.length) this.#buckets[i * BOUNDS.length + b]!++;
  }
}

type ScrapedValue = { labels: Record<string, string>; value: number; metricName?: string };

/** A metric whose values are computed at scrape time, in the shape prom-client's Registry formats. */
function scrapedMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => ScrapedValue[]) {
  const get = () => Promise.resolve({ name, help, type, values: values(), aggregator: 'sum' as const });
  return { name, help, type, aggregator: 'sum', get, reset() {} } as unknown as Parameters<Registry['registerMetric']>[0];
}

export interface AgentTelemetryOptions {
  version: string;
  trustDomainId: string;
  /** ms since the epoch, for uptime */
  startedAt: number;
  clock: () => number;
}

/** @example const telemetry = createAgentTelemetry({ version, trustDomainId: 'spiffe://example.org', startedAt: Date.now(), clock: Date.now }) */
export function createAgentTelemetry(o: AgentTelemetryOptions): AgentTelemetry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const M = AGENT_METRICS;

  const rpcs = {} as Record<CountedRpc, CallStats>;
  for (const [method, service] of Object.entries(COUNTED_RPCS) as [CountedRpc, string][]) rpcs[method] = new CallStats(registry, rpcCallCounter(service, method));
  const calls = {} as Record<AgentCallKey, CallStats>;
  for (const key of Object.keys(AGENT_CALLS) as AgentCallKey[]) calls[key] = new CallStats(registry, AGENT_CALLS[key]);

  // connection and stream counts: plain numbers, read at scrape time
  const open = { accepted: 0, connections: 0, sdsStreams: 0 };
  const streams = Object.fromEntries(Object.keys(COUNTED_RPCS).map((m) => [m, 0])) as Record<CountedRpc, number>;
  const plain = (m: { name: string; help: string }, type: 'counter' | 'gauge', value: () => number) =>
    registry.registerMetric(scrapedMetric(m.name, m.help, type, () => [{ labels: {}, value: value() }]));
  plain(M.workloadApiConnection, 'counter', () => open.accepted);
  plain(M.workloadApiConnections, 'gauge', () => open.connections);
  plain(M.sdsApiConnections, 'gauge', () => open.sdsStreams);
  registry.registerMetric(scrapedMetric(M.workloadApiStreams.name, M.workloadApiStreams.help, 'gauge', () =>
    STREAMING_RPCS.map((m) => ({ labels: { [LABELS.METHOD]: m }, value: streams[m] })),
  ));
  const bundles = new Counter({ name: M.bundlesUpdateJwt.name, help: M.bundlesUpdateJwt.help, registers: [registry] });

  const issuerLatency = new Histogram({ name: M.issuerRequestDuration.name, help: M.issuerRequestDuration.help, labelNames: [...M.issuerRequestDuration.labels], buckets: [...ISSUER_SECONDS_BUCKETS], registers: [registry] });
  const issuerErrors = new Counter({ name: M.issuerRequestErrors.name, help: M.issuerRequestErrors.help, labelNames: [...M.issuerRequestErrors.labels], registers: [registry] });
  const routeChildren = {} as Record<IssuerRoute, { observe(v: number): void }>;
  for (const route of ISSUER_ROUTES) routeChildren[route] = issuerLatency.labels(route);

  let sources: ScrapeSources = {};
  new Gauge({
    name: M.lruCacheRecordMapSize.name, help: M.lruCacheRecordMapSize.help, labelNames: [...M.lruCacheRecordMapSize.labels], registers: [registry],
    collect() { const s = sources.cacheSizes?.(); if (s) this.labels('x509').set(s.entries); },
  });
  new Gauge({
    name: M.lruCacheSvidMapSize.name, help: M.lruCacheSvidMapSize.help, labelNames: [...M.lruCacheSvidMapSize.labels], registers: [registry],
    collect() { const s = sources.cacheSizes?.(); if (s) this.labels('x509').set(s.x509Svids); },
  });
  new Gauge({
    name: M.jwtSvidCacheSize.name, help: M.jwtSvidCacheSize.help, registers: [registry],
    collect() { const s = sources.cacheSizes?.(); if (s) this.set(s.jwtSvids); },
  });
  new Counter({
    name: M.rateLimitExceeded.name, help: M.rateLimitExceeded.help, labelNames: [...M.rateLimitExceeded.labels], registers: [registry],
    collect() {
      // the limiter counts refusals (rate-limit.ts exceeded()); the counter shows its totals
      const counts = sources.rateLimitExceeded?.() ?? {};
      this.reset();
      for (const [method, n] of Object.entries(counts)) this.labels(method).inc(n);
    },
  });
  new Gauge({ name: M.started.name, help: M.started.help, labelNames: [...M.started.labels], registers: [registry] }).labels(o.version, o.trustDomainId).set(1);
  new Gauge({ name: M.uptimeInMs.name, help: M.uptimeInMs.help, registers: [registry], collect() { this.set(Math.max(0, o.clock() - o.startedAt)); } });

  const now = () => performance.now();
  return {
    registry,
    contentType: registry.contentType,
    now,
    rpcDone: (method, status, startMs) => rpcs[method].record(status, now() - startMs),
    streamOpened(method) {
      streams[method]++;
      if (method === 'StreamSecrets') open.sdsStreams++;
    },
    streamClosed(method) {
      streams[method]--;
      if (method === 'StreamSecrets') open.sdsStreams--;
    },
    connectionOpened() {
      open.accepted++;
      open.connections++;
    },
    connectionClosed: () => void open.connections--,
    callDone: (key, status, startMs) => calls[key].record(status, now() - startMs),
    issuerRequest(route, startMs, errorCode) {
      routeChildren[route].observe((now() - startMs) / 1000);
      if (errorCode !== undefined) issuerErrors.labels(route, errorCode).inc();
    },
    bundleUpdated: () => bundles.inc(),
    watch(s) {
      sources = s;
    },
    metrics: () => registry.metrics(),
  };
}
