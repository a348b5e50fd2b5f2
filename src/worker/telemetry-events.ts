/**
 * The issuer's telemetry events for a deployed Worker (Workers Logs, `[observability]` in wrangler.toml):
 * one JSON line per event, `msg: "telemetry"`, `event` the metric it also counts (names in
 * shared/telemetry/issuer-names.ts), so logs and metrics are queried by the same names. Called where the
 * metric is counted (ca/metrics.ts, telemetry.ts). Fields are counts, statuses, attestor types and latencies
 * only: never a token, key, CSR or SVID (an agent's join-token SPIFFE ID carries its token, so no
 * SPIFFE ID is logged either).
 * @module
 */
import type { MetricDef } from '../shared/telemetry/issuer-names.js';
import { logEvent } from './log.js';

export const TELEMETRY_EVENT_MSG = 'telemetry';

/** The fields an event may carry: a closed list, so a secret cannot be added by accident. */
export interface TelemetryEventFields {
  /** SVIDs signed in one call */
  count?: number;
  /** gRPC status name of an agent API call */
  status?: string;
  /** node attestor type of an attestation */
  attestor?: string;
  /** call latency, milliseconds */
  elapsed_ms?: number;
}

export function telemetryEvent(metric: MetricDef, fields: TelemetryEventFields): void {
  logEvent('info', TELEMETRY_EVENT_MSG, { event: metric.name, ...fields });
}
