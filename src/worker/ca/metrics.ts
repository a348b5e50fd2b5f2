/**
 * The CA's telemetry counters (names in shared/telemetry/issuer-names.ts), counted where the work happens
 * and kept in the CA's storage (ca-storage.ts MetricStorage: DO SQLite, one upsert per counter touched, in
 * the same call, no extra round trip), so they are right across isolates and restarts. The Worker's own
 * events (agent API calls and latency) arrive coalesced through `recordTelemetry` (worker/telemetry.ts).
 * Gauges (CA expiry, TTL) are computed at scrape time from the slots.
 * @module
 */
import type { KeyKind } from '../../shared/ca/key-slot.js';
import { activeSlot } from '../../shared/ca/key-slot.js';
import type { AuthorityAction } from '../../shared/ca/rotation.js';
import type { WispErrorData } from '../../shared/errors.js';
import { err, ok, type Result } from '../../shared/result.js';
import { familyOf, ISSUER_METRICS, type MetricDef, type MetricSample } from '../../shared/telemetry/issuer-names.js';
import { TRUST_DOMAIN_MAX_BYTES } from '../../shared/spiffe/id.js';
import { telemetryEvent } from '../telemetry-events.js';
import type { MetricStorage, StoredSlot } from './ca-storage.js';

/** Most samples one recordTelemetry call may carry. */
export const MAX_TELEMETRY_SAMPLES = 4096;
/** Longest label value taken from the Worker: a trust domain name (shared/spiffe/id.ts) fits. */
const MAX_LABEL_CHARS = TRUST_DOMAIN_MAX_BYTES;
/** what the Worker counts (telemetry.ts); the CA counts the rest itself and takes none of it from outside */
const WORKER_FAMILIES: ReadonlySet<MetricDef> = new Set([...Object.values(ISSUER_METRICS.rpc).flatMap((r) => [r.calls, r.latency]), ISSUER_METRICS.federatedBundleFetch, ISSUER_METRICS.federatedBundleUpdate]);

const AUTHORITY_METRICS: Record<KeyKind, Partial<Record<AuthorityAction['kind'], MetricDef>>> = {
  x509: { prepare: ISSUER_METRICS.x509CaPrepare, activate: ISSUER_METRICS.x509CaActivate, taint: ISSUER_METRICS.x509CaTaint, revoke: ISSUER_METRICS.x509CaRevoke },
  jwt: { prepare: ISSUER_METRICS.jwtKeyPrepare, activate: ISSUER_METRICS.jwtKeyActivate, taint: ISSUER_METRICS.jwtKeyTaint, revoke: ISSUER_METRICS.jwtKeyRevoke },
  wit: {}, // SPIRE has no WIT metrics to name after
};

export interface CaMetrics {
  signed(kind: KeyKind, count: number): void;
  authority(kind: KeyKind, action: AuthorityAction['kind']): void;
  refused(limit: string): void;
  /** the Worker's samples: agent API families only, labels the family declares, finite non-negative values */
  record(samples: unknown): Result<true>;
  /** everything stored, plus the gauges of the active X.509 CA at `now` (ms) */
  snapshot(trustDomain: string, slots: readonly StoredSlot[], now: number): MetricSample[];
}

export function createCaMetrics(storage: MetricStorage): CaMetrics {
  const add = (def: MetricDef, value: number, labels: Record<string, string> = {}) => {
    if (value > 0) storage.add([{ name: def.name, labels, value }]);
  };
  return {
    signed(kind, count) {
      if (kind === 'wit') return;
      const def = kind === 'x509' ? ISSUER_METRICS.x509SvidSigned : ISSUER_METRICS.jwtSvidSigned;
      add(def, count);
      if (count > 0) telemetryEvent(def, { count });
    },
    authority(kind, action) {
      const def = AUTHORITY_METRICS[kind][action];
      if (!def) return;
      add(def, 1);
      telemetryEvent(def, { count: 1 });
    },
    refused: (limit) => add(ISSUER_METRICS.rateLimitExceeded, 1, { limit }),
    record(samples) {
      const checked = checkSamples(samples);
      if (!checked.ok) return checked;
      storage.add(checked.value);
      return ok(true);
    },
    snapshot(trustDomain, slots, now) {
      const samples = storage.list();
      const active = activeSlot(slots.filter((s) => s.kind === 'x509'), now);
      if (active) {
        const labels = { trust_domain_id: trustDomain };
        samples.push({ name: ISSUER_METRICS.x509CaExpiration.name, labels, value: Math.floor(active.notAfter / 1000) }, { name: ISSUER_METRICS.x509CaTtl.name, labels, value: Math.max(0, Math.floor((active.notAfter - now) / 1000)) });
      }
      return samples;
    },
  };
}

function checkSamples(samples: unknown): Result<MetricSample[]> {
  const bad = (message: string) => err<WispErrorData>({ code: 'ERR_BAD_REQUEST', message });
  if (!Array.isArray(samples) || samples.length > MAX_TELEMETRY_SAMPLES) return bad(`samples must be an array of at most ${MAX_TELEMETRY_SAMPLES}`);
  const out: MetricSample[] = [];
  for (const s of samples as unknown[]) {
    const { name, labels, value } = (s ?? {}) as Partial<MetricSample>;
    const family = typeof name === 'string' ? familyOf(name) : undefined;
    if (!family || !WORKER_FAMILIES.has(family)) return bad('unknown metric');
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return bad('a sample value must be a finite non-negative number');
    if (typeof labels !== 'object' || labels === null) return bad('labels must be an object');
    const allowed = name!.endsWith('_bucket') ? [...family.labels, 'le'] : family.labels;
    for (const [k, v] of Object.entries(labels)) {
      if (!allowed.includes(k) || typeof v !== 'string' || v.length > MAX_LABEL_CHARS) return bad(`label ${k.slice(0, 32)} is not allowed on ${family.name}`);
    }
    out.push({ name: name!, labels: { ...labels }, value });
  }
  return ok(out);
}
