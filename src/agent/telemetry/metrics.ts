/**
 * The agent's metrics (names: src/shared/telemetry/names.ts) on its own prom-client Registry, never the
 * global one. The rest of the agent sees only `AgentTelemetry`'s small functions: handler, cache and client
 * code never touch prom-client. Every labelled child of a per-call metric is created here up front, so a
 * Workload API call costs one counter inc and one histogram observe and allocates nothing; with telemetry
 * off the callers hold `undefined` and pay one branch.
 * @module
 */
import { readFileSync } from 'node:fs';
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

interface CallChildren {
  count: Record<GrpcStatusName, { inc(): void }>;
  elapsed: Record<GrpcStatusName, { observe(v: number): void }>;
}

function callCounterChildren(registry: Registry, n: CallCounterName): CallChildren {
  const counter = new Counter({ name: n.name, help: n.help, labelNames: [LABELS.STATUS], registers: [registry] });
  const hist = new Histogram({ name: n.elapsed, help: n.elapsedHelp, labelNames: [LABELS.STATUS], buckets: [...ELAPSED_MS_BUCKETS], registers: [registry] });
  const count = {} as CallChildren['count'];
  const elapsed = {} as CallChildren['elapsed'];
  // OK is listed from the start (at 0, so a rate() sees the first call); another status's children are
  // created on its first call and kept, so the exposition lists only the statuses that happened
  for (const s of GRPC_STATUS_NAMES) {
    count[s] = s === 'OK' ? counter.labels(s) : { inc: () => (count[s] = counter.labels(s)).inc() };
    elapsed[s] = s === 'OK' ? hist.labels(s) : { observe: (v) => (elapsed[s] = hist.labels(s)).observe(v) };
  }
  counter.labels('OK').inc(0);
  return { count, elapsed };
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

  const rpcs = {} as Record<CountedRpc, CallChildren>;
  for (const [method, service] of Object.entries(COUNTED_RPCS) as [CountedRpc, string][]) rpcs[method] = callCounterChildren(registry, rpcCallCounter(service, method));
  const calls = {} as Record<AgentCallKey, CallChildren>;
  for (const key of Object.keys(AGENT_CALLS) as AgentCallKey[]) calls[key] = callCounterChildren(registry, AGENT_CALLS[key]);

  const connection = new Counter({ name: M.workloadApiConnection.name, help: M.workloadApiConnection.help, registers: [registry] });
  const connections = new Gauge({ name: M.workloadApiConnections.name, help: M.workloadApiConnections.help, registers: [registry] });
  const sdsConnections = new Gauge({ name: M.sdsApiConnections.name, help: M.sdsApiConnections.help, registers: [registry] });
  const streams = new Gauge({ name: M.workloadApiStreams.name, help: M.workloadApiStreams.help, labelNames: [...M.workloadApiStreams.labels], registers: [registry] });
  const streamChildren = {} as Record<CountedRpc, { inc(): void; dec(): void }>;
  for (const method of Object.keys(COUNTED_RPCS) as CountedRpc[]) streamChildren[method] = streams.labels(method);
  const bundles = new Counter({ name: M.bundlesUpdateJwt.name, help: M.bundlesUpdateJwt.help, registers: [registry] });

  const issuerLatency = new Histogram({ name: M.issuerRequestDuration.name, help: M.issuerRequestDuration.help, labelNames: [...M.issuerRequestDuration.labels], buckets: [...ISSUER_SECONDS_BUCKETS], registers: [registry] });
  const issuerErrors = new Counter({ name: M.issuerRequestErrors.name, help: M.issuerRequestErrors.help, labelNames: [...M.issuerRequestErrors.labels], registers: [registry] });
  const routeChildren = {} as Record<IssuerRoute, { observe(v: number): void }>;
  for (const route of ISSUER_ROUTES) routeChildren[route] = issuerLatency.labels(route);

  let sources: ScrapeSources = {};
  const recordMap = new Gauge({
    name: M.lruCacheRecordMapSize.name, help: M.lruCacheRecordMapSize.help, labelNames: [...M.lruCacheRecordMapSize.labels], registers: [registry],
    collect() { const s = sources.cacheSizes?.(); if (s) this.labels('x509').set(s.entries); },
  });
  void recordMap;
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
    rpcDone(method, status, startMs) {
      const c = rpcs[method];
      c.count[status].inc();
      c.elapsed[status].observe(now() - startMs);
    },
    streamOpened(method) {
      streamChildren[method].inc();
      if (method === 'StreamSecrets') sdsConnections.inc();
    },
    streamClosed(method) {
      streamChildren[method].dec();
      if (method === 'StreamSecrets') sdsConnections.dec();
    },
    connectionOpened() {
      connection.inc();
      connections.inc();
    },
    connectionClosed: () => connections.dec(),
    callDone(key, status, startMs) {
      const c = calls[key];
      c.count[status].inc();
      c.elapsed[status].observe(now() - startMs);
    },
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

/** The package version (the `version` label of `spire_agent_started`); "unknown" if package.json is not beside the sources. */
export function agentVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
