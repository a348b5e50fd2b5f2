/**
 * The Worker's side of the issuer metrics (names in shared/telemetry/issuer-names.ts): agent API calls and
 * their latency, node attestations by attestor, federated bundle refreshes. They happen in whichever isolate
 * took the request, so each isolate sums them in memory and sends the sums to the CA Durable Object in one
 * `recordTelemetry` call FLUSH_AFTER_MS after the first unsent one (kept alive by `waitUntil`, off the
 * response path), where they join the CA's own durable counters (ca/metrics.ts). A scrape flushes its own
 * isolate first. What an isolate that dies inside that window had not sent is lost (docs/telemetry.md).
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import { AGENT_API_PREFIX } from '../shared/agent-api.js';
import { grpcCodeOf } from '../shared/error-status.js';
import { WispError } from '../shared/errors.js';
import { AGENT_API_METHODS, histogramObservation, ISSUER_METRICS, type AgentApiMethod, type MetricDef, type MetricSample } from '../shared/telemetry/issuer-names.js';
import type { TrustDomainCaApi } from './ca/ca-api.js';
import { metricLabelKey } from './ca/ca-storage.js';
import { logEvent } from './log.js';
import { telemetryEvent } from './telemetry-events.js';

/** Agent API calls also logged as events (node attestation, agent SVID renewal: rotation); the others are too frequent. */
const LOGGED_METHODS: ReadonlySet<AgentApiMethod> = new Set(['attest', 'renew']);

/** How long an isolate sums before it sends (one CA call per isolate per window at most). */
export const FLUSH_AFTER_MS = 2000;
/** Distinct series one isolate holds before it sends at once. */
const MAX_PENDING_SERIES = 1024;

declare module 'hono' {
  interface ContextVariableMap {
    /** the node attestor type of an /attest call, once known (the attestations' `attestor` label) */
    telemetryAttestor: string;
  }
}

export interface TelemetryRecorder {
  /** one agent API call: its method, gRPC status and latency (ms) */
  call(method: AgentApiMethod, status: string, elapsedMs: number, extra?: Record<string, string>, waitUntil?: (p: Promise<unknown>) => void): void;
  /** one federated bundle refresh of `trustDomain` */
  bundleRefresh(trustDomain: string, outcome: 'updated' | 'unchanged' | 'failed', waitUntil?: (p: Promise<unknown>) => void): void;
  /** sends what this isolate holds now (a scrape, the end of a cron run) */
  flush(): Promise<void>;
}

export function createTelemetryRecorder(ca: () => TrustDomainCaApi, flushAfterMs = FLUSH_AFTER_MS): TelemetryRecorder {
  let pending = new Map<string, MetricSample>();
  let timer: Promise<void> | undefined;
  const add = (samples: MetricSample[]) => {
    for (const s of samples) {
      const id = `${s.name}\n${metricLabelKey(s.labels)}`;
      const found = pending.get(id);
      if (found) found.value += s.value;
      else pending.set(id, { ...s, labels: { ...s.labels } });
    }
  };
  const flush = async () => {
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending = new Map();
    try {
      const sent = await ca().recordTelemetry(batch);
      if (!sent.ok) logEvent('warn', 'telemetry refused by the CA', { code: sent.error.code, reason: sent.error.message });
    } catch (e) {
      add(batch); // the next flush tries again
      logEvent('warn', 'telemetry not sent to the CA', { cause: e instanceof Error ? e.message : String(e) });
    }
  };
  // A timer lives in the request context that made it (workerd cancels it when that context ends): only a
  // request that can keep it alive (waitUntil) starts one; without one the caller flushes (the cron run).
  let timerAt = 0;
  const schedule = (waitUntil?: (p: Promise<unknown>) => void) => {
    if (!waitUntil) return;
    if (pending.size >= MAX_PENDING_SERIES) return waitUntil(flush());
    if (timer && Date.now() - timerAt < flushAfterMs * 5) return; // one older than that was cancelled
    timerAt = Date.now();
    const started: Promise<void> = new Promise<void>((resolve) => setTimeout(resolve, flushAfterMs)).then(() => {
      if (timer === started) timer = undefined;
      return flush();
    });
    timer = started;
    waitUntil(started);
  };
  const count = (def: MetricDef, labels: Record<string, string>): MetricSample => ({ name: def.name, labels, value: 1 });
  return {
    call(method, status, elapsedMs, extra = {}, waitUntil) {
      const { calls, latency } = ISSUER_METRICS.rpc[method];
      add([count(calls, { status, ...extra }), ...histogramObservation(latency, { status }, Math.max(0, elapsedMs))]);
      if (LOGGED_METHODS.has(method)) telemetryEvent(calls, { status, ...(extra.attestor ? { attestor: extra.attestor } : {}), elapsed_ms: Math.max(0, elapsedMs) });
      schedule(waitUntil);
    },
    bundleRefresh(trustDomain, outcome, waitUntil) {
      const samples = [count(ISSUER_METRICS.federatedBundleFetch, { trust_domain_id: trustDomain, status: outcome === 'failed' ? 'Unavailable' : 'OK' })];
      if (outcome === 'updated') samples.push(count(ISSUER_METRICS.federatedBundleUpdate, { trust_domain_id: trustDomain }));
      add(samples);
      schedule(waitUntil);
    },
    flush,
  };
}

/** Counts a submitted federated bundle refresh (admin or agent) by its outcome; one that throws (e.g. a sequence going backwards) as failed. */
export async function countedSubmit<T extends { status: 'updated' | 'unchanged' | 'failed' }>(recorder: TelemetryRecorder, trustDomain: string, submitted: Promise<T>, waitUntil?: (p: Promise<unknown>) => void): Promise<T> {
  let outcome: T;
  try {
    outcome = await submitted;
  } catch (e) {
    recorder.bundleRefresh(trustDomain, 'failed', waitUntil);
    throw e;
  }
  recorder.bundleRefresh(trustDomain, outcome.status, waitUntil);
  return outcome;
}

/** The request's `waitUntil`, where there is an execution context (not in app.request tests). */
export function waitUntilOf(c: Context): ((p: Promise<unknown>) => void) | undefined {
  try {
    const ctx = c.executionCtx;
    return (p) => ctx.waitUntil(p);
  } catch {
    return undefined;
  }
}

const METHOD_BY_PATH = new Map<string, AgentApiMethod>(Object.keys(AGENT_API_METHODS).map((m) => [`${AGENT_API_PREFIX}/${m}`, m as AgentApiMethod]));

/** Counts every agent API call by method and gRPC status (SPIRE's call counters), with its latency. */
export function agentApiTelemetry(recorder: TelemetryRecorder, clock: () => number): MiddlewareHandler {
  return async (c, next) => {
    const method = METHOD_BY_PATH.get(c.req.path);
    if (!method) return next();
    const started = clock();
    await next();
    const status = c.error instanceof WispError ? grpcCodeOf(c.error.code) : c.error ? 'Internal' : c.res.status < 400 ? 'OK' : 'Unknown';
    const extra = method === 'attest' ? { attestor: c.get('telemetryAttestor') ?? 'unknown' } : undefined;
    recorder.call(method, status, clock() - started, extra, waitUntilOf(c));
  };
}
