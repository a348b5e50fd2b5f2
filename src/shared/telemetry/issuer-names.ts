/**
 * The issuer's metric names and labels, written once: SPIRE server's names where the same event exists
 * (key parts joined with `_` under the `spire_server` prefix, as SPIRE's Prometheus sink writes them; its
 * counters carry no `_total`), Wisp's own where SPIRE has none (docs/telemetry.md "## Issuer"). Also the
 * Prometheus text exposition (format 0.0.4) the issuer serves: prom-client needs Node, workerd has none.
 * Runtime-free.
 * @module
 */

export const ISSUER_METRIC_PREFIX = 'spire_server';
export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  name: string;
  type: MetricType;
  help: string;
  /** the only label names a sample may carry */
  labels: readonly string[];
}

const def = (type: MetricType, parts: readonly string[], help: string, labels: readonly string[] = []): MetricDef => ({ name: [ISSUER_METRIC_PREFIX, ...parts].join('_'), type, help, labels });

/** Agent API methods by route (SPIRE's RPC names where the call is the same; `wisp` for Wisp's own). */
export const AGENT_API_METHODS = {
  attest: ['agent', 'v1', 'agent', 'attest_agent'],
  renew: ['agent', 'v1', 'agent', 'renew_agent'],
  sync: ['entry', 'v1', 'entry', 'get_authorized_entries'],
  'x509-svids': ['svid', 'v1', 'svid', 'batch_new_x509_svid'],
  'jwt-svids': ['svid', 'v1', 'svid', 'new_jwt_svid'],
  bundle: ['bundle', 'v1', 'bundle', 'get_bundle'],
  'federation/refresh-tasks': ['wisp', 'v1', 'federation', 'get_refresh_tasks'],
  'federation/bundles': ['wisp', 'v1', 'federation', 'submit_bundle'],
} as const satisfies Record<string, readonly string[]>;
export type AgentApiMethod = keyof typeof AGENT_API_METHODS;

/** Latency buckets of the agent API histograms, milliseconds. */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const rpc = Object.fromEntries(
  Object.entries(AGENT_API_METHODS).map(([method, parts]) => [
    method,
    {
      calls: def('counter', ['rpc', ...parts], `agent API ${method} calls, by gRPC status`, method === 'attest' ? ['status', 'attestor'] : ['status']),
      latency: def('histogram', ['rpc', ...parts, 'elapsed_time'], `agent API ${method} latency in milliseconds, by gRPC status`, ['status']),
    },
  ]),
) as Record<AgentApiMethod, { calls: MetricDef; latency: MetricDef }>;

export const ISSUER_METRICS = {
  x509SvidSigned: def('counter', ['server_ca', 'sign', 'x509_svid'], 'X509-SVIDs signed by the CA'),
  jwtSvidSigned: def('counter', ['server_ca', 'sign', 'jwt_svid'], 'JWT-SVIDs signed by the CA'),
  x509CaPrepare: def('counter', ['ca', 'manager', 'x509_ca', 'prepare'], 'X.509 CA keys prepared'),
  x509CaActivate: def('counter', ['ca', 'manager', 'x509_ca', 'activate'], 'X.509 CA keys activated'),
  jwtKeyPrepare: def('counter', ['ca', 'manager', 'jwt_key', 'prepare'], 'JWT keys prepared'),
  jwtKeyActivate: def('counter', ['manager', 'jwt_key', 'activate'], 'JWT keys activated'),
  // Wisp's own: SPIRE counts these as localauthority RPCs
  x509CaTaint: def('counter', ['ca', 'manager', 'x509_ca', 'taint'], 'X.509 CA keys tainted (Wisp)'),
  x509CaRevoke: def('counter', ['ca', 'manager', 'x509_ca', 'revoke'], 'X.509 CA keys revoked (Wisp)'),
  jwtKeyTaint: def('counter', ['ca', 'manager', 'jwt_key', 'taint'], 'JWT keys tainted (Wisp)'),
  jwtKeyRevoke: def('counter', ['ca', 'manager', 'jwt_key', 'revoke'], 'JWT keys revoked (Wisp)'),
  x509CaExpiration: def('gauge', ['manager', 'x509_ca', 'rotate', 'expiration'], 'notAfter of the active X.509 CA, seconds since the epoch', ['trust_domain_id']),
  x509CaTtl: def('gauge', ['manager', 'x509_ca', 'rotate', 'ttl'], 'seconds the active X.509 CA has left', ['trust_domain_id']),
  federatedBundleFetch: def('counter', ['bundle_manager', 'fetch', 'federated_bundle'], 'federated bundle refreshes (https_web by the issuer, https_spiffe submitted by an agent), by gRPC status', ['trust_domain_id', 'status']),
  federatedBundleUpdate: def('counter', ['bundle_manager', 'update', 'federated_bundle'], 'federated bundle refreshes that stored a new bundle', ['trust_domain_id']),
  rateLimitExceeded: def('counter', ['rate_limit_exceeded'], 'calls refused by an issuer rate limit (Wisp)', ['limit']),
  registrationEntries: def('gauge', ['registration_entries'], 'registration entries in D1, read at scrape time (Wisp)'),
  attestedAgents: def('gauge', ['attested_agents'], 'attested agents in D1, read at scrape time (Wisp)'),
  joinTokens: def('gauge', ['join_tokens'], 'unused join tokens in D1, read at scrape time (Wisp)'),
  rpc,
} as const;

/** Every definition, by name (what the CA accepts from the Worker and what the formatter prints). */
export const ISSUER_METRIC_DEFS: ReadonlyMap<string, MetricDef> = new Map(
  [...Object.values(ISSUER_METRICS).filter((d): d is MetricDef => 'name' in d), ...Object.values(rpc).flatMap((r) => [r.calls, r.latency])].map((d) => [d.name, d]),
);

/** `samples` plus a 0 for each label-less counter they lack: a counter is scraped from the start, not from its first event. */
export function withZeroCounters(samples: readonly MetricSample[]): MetricSample[] {
  const present = new Set(samples.map((s) => s.name));
  const zeros = [...ISSUER_METRIC_DEFS.values()].filter((d) => d.type === 'counter' && d.labels.length === 0 && !present.has(d.name)).map((d) => ({ name: d.name, labels: {}, value: 0 }));
  return [...samples, ...zeros];
}

/** One stored sample: a counter or gauge value, or one histogram series (`_bucket` with `le`, `_sum`, `_count`). */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const formatValue = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The family a sample belongs to (a histogram's `_bucket` / `_sum` / `_count` series belong to it). */
export function familyOf(sampleName: string): MetricDef | undefined {
  const exact = ISSUER_METRIC_DEFS.get(sampleName);
  if (exact) return exact.type === 'histogram' ? undefined : exact;
  const m = /^(.*)_(bucket|sum|count)$/.exec(sampleName);
  const family = m ? ISSUER_METRIC_DEFS.get(m[1]!) : undefined;
  return family?.type === 'histogram' ? family : undefined;
}

/** Text exposition format 0.0.4: one HELP and TYPE per family, its samples together; unknown names are dropped. */
export function formatExposition(samples: readonly MetricSample[]): string {
  const byFamily = new Map<MetricDef, MetricSample[]>();
  for (const s of samples) {
    const family = familyOf(s.name);
    if (!family) continue;
    let list = byFamily.get(family);
    if (!list) byFamily.set(family, (list = []));
    list.push(s);
  }
  const lines: string[] = [];
  for (const [family, list] of [...byFamily].sort(([a], [b]) => (a.name < b.name ? -1 : 1))) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    const series = family.type === 'histogram' ? histogramSeries(family, list) : [...list].sort((a, b) => (labelKey(a.labels) < labelKey(b.labels) ? -1 : 1));
    for (const s of series) lines.push(`${s.name}${labelText(family, s.labels)} ${formatValue(s.value)}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

const labelKey = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

/** Labels in the order the family declares them (`le` last), so a series always reads the same. */
function labelText(family: MetricDef, labels: Record<string, string>): string {
  const rank = (k: string) => (k === 'le' ? Infinity : family.labels.indexOf(k));
  const entries = Object.entries(labels)
    .filter(([k]) => LABEL_NAME.test(k))
    .sort(([a], [b]) => rank(a) - rank(b));
  return entries.length > 0 ? `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
}

/** Per label set: every bucket (one never reached is 0; buckets are cumulative), `+Inf`, `_sum`, `_count`. */
function histogramSeries(family: MetricDef, list: MetricSample[]): MetricSample[] {
  const sets = new Map<string, { labels: Record<string, string>; values: Map<string, number> }>();
  for (const s of list) {
    const { le, ...labels } = s.labels;
    const key = labelKey(labels);
    let set = sets.get(key);
    if (!set) sets.set(key, (set = { labels, values: new Map() }));
    const series = s.name.endsWith('_bucket') ? `le=${le}` : s.name.slice(family.name.length + 1);
    set.values.set(series, (set.values.get(series) ?? 0) + s.value);
  }
  const out: MetricSample[] = [];
  for (const [, { labels, values }] of [...sets].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const le of [...LATENCY_BUCKETS_MS.map(String), '+Inf']) out.push({ name: `${family.name}_bucket`, labels: { ...labels, le }, value: values.get(`le=${le}`) ?? 0 });
    out.push({ name: `${family.name}_sum`, labels, value: values.get('sum') ?? 0 }, { name: `${family.name}_count`, labels, value: values.get('count') ?? 0 });
  }
  return out;
}

/** The series one latency observation adds to a histogram (cumulative buckets, `+Inf`, sum, count). */
export function histogramObservation(family: MetricDef, labels: Record<string, string>, ms: number): MetricSample[] {
  const out: MetricSample[] = LATENCY_BUCKETS_MS.filter((b) => ms <= b).map((b) => ({ name: `${family.name}_bucket`, labels: { ...labels, le: String(b) }, value: 1 }));
  out.push({ name: `${family.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: 1 }, { name: `${family.name}_sum`, labels, value: ms }, { name: `${family.name}_count`, labels, value: 1 });
  return out;
}
