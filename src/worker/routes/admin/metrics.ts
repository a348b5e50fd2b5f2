/**
 * `GET /admin/v1/metrics`: the issuer's Prometheus endpoint (text format 0.0.4), behind the admin API's
 * authentication like every admin route. It sends this isolate's unsent agent API samples first
 * (telemetry.ts), then reads the CA's durable counters and gauges in one DO call (ca/metrics.ts) and the
 * registry sizes in one D1 statement (db/counts.ts). Names in shared/telemetry/issuer-names.ts.
 * @module
 */
import { Hono } from 'hono';
import { unwrap } from '../../../shared/result.js';
import { formatExposition, ISSUER_METRICS, withZeroCounters, type MetricSample } from '../../../shared/telemetry/issuer-names.js';
import type { AppDeps } from '../../deps.js';
import { nowSeconds } from './params.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function metricsRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    await deps.telemetry.flush();
    const [stored, counts] = await Promise.all([deps.ca().getMetrics(), deps.stores.counts(nowSeconds(deps))]);
    const gauge = (name: string, value: number): MetricSample => ({ name, labels: {}, value });
    const samples = [
      ...unwrap(stored),
      gauge(ISSUER_METRICS.registrationEntries.name, counts.entries),
      gauge(ISSUER_METRICS.attestedAgents.name, counts.agents),
      gauge(ISSUER_METRICS.joinTokens.name, counts.joinTokens),
    ];
    return c.body(formatExposition(withZeroCounters(samples)), 200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE });
  });
  return app;
}
