// The issuer's metric names (SPIRE server's, `spire_server` + parts joined with `_`) and the text exposition
// formatter (format 0.0.4): families, escaping, histogram series filled in and cumulative.
import { describe, expect, it } from 'vitest';
import { familyOf, formatExposition, histogramObservation, ISSUER_METRIC_DEFS, ISSUER_METRICS, LATENCY_BUCKETS_MS, withZeroCounters } from '../../../src/shared/telemetry/issuer-names.js';

describe('issuer metric names', () => {
  it("are SPIRE server's names under its Prometheus sink's prefix", () => {
    expect(ISSUER_METRICS.x509SvidSigned.name).toBe('spire_server_server_ca_sign_x509_svid');
    expect(ISSUER_METRICS.jwtSvidSigned.name).toBe('spire_server_server_ca_sign_jwt_svid');
    expect(ISSUER_METRICS.x509CaPrepare.name).toBe('spire_server_ca_manager_x509_ca_prepare');
    expect(ISSUER_METRICS.jwtKeyActivate.name).toBe('spire_server_manager_jwt_key_activate');
    expect(ISSUER_METRICS.x509CaTtl.name).toBe('spire_server_manager_x509_ca_rotate_ttl');
    expect(ISSUER_METRICS.rpc.attest.calls.name).toBe('spire_server_rpc_agent_v1_agent_attest_agent');
    expect(ISSUER_METRICS.rpc.attest.latency.name).toBe('spire_server_rpc_agent_v1_agent_attest_agent_elapsed_time');
    expect(ISSUER_METRICS.federatedBundleUpdate.name).toBe('spire_server_bundle_manager_update_federated_bundle');
  });

  it('are valid Prometheus names, each defined once', () => {
    const all = [...ISSUER_METRIC_DEFS.values()];
    expect(new Set(all.map((d) => d.name)).size).toBe(all.length);
    for (const d of all) {
      expect(d.name).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
      for (const l of d.labels) expect(l).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
    }
  });

  it("finds a histogram's family from its series, and nothing for unknown names", () => {
    const h = ISSUER_METRICS.rpc.sync.latency;
    expect(familyOf(`${h.name}_bucket`)).toBe(h);
    expect(familyOf(`${h.name}_count`)).toBe(h);
    expect(familyOf(h.name)).toBeUndefined();
    expect(familyOf(`${ISSUER_METRICS.x509SvidSigned.name}_count`)).toBeUndefined();
    expect(familyOf('spire_server_made_up')).toBeUndefined();
  });
});

describe('formatExposition', () => {
  it('writes HELP and TYPE once per family, escapes label values, drops unknown names', () => {
    const text = formatExposition([
      { name: ISSUER_METRICS.rateLimitExceeded.name, labels: { limit: 'a"b\\c\nd' }, value: 2 },
      { name: ISSUER_METRICS.x509SvidSigned.name, labels: {}, value: 7 },
      { name: ISSUER_METRICS.rateLimitExceeded.name, labels: { limit: 'attestation' }, value: 1 },
      { name: 'not_ours', labels: {}, value: 1 },
    ]);
    expect(text).toBe(
      [
        '# HELP spire_server_rate_limit_exceeded calls refused by an issuer rate limit (Wisp)',
        '# TYPE spire_server_rate_limit_exceeded counter',
        'spire_server_rate_limit_exceeded{limit="a\\"b\\\\c\\nd"} 2',
        'spire_server_rate_limit_exceeded{limit="attestation"} 1',
        '# HELP spire_server_server_ca_sign_x509_svid X509-SVIDs signed by the CA',
        '# TYPE spire_server_server_ca_sign_x509_svid counter',
        'spire_server_server_ca_sign_x509_svid 7',
        '',
      ].join('\n'),
    );
    expect(formatExposition([])).toBe('');
  });

  it('sums histogram observations into every bucket, +Inf, _sum and _count per label set', () => {
    const h = ISSUER_METRICS.rpc['x509-svids'].latency;
    const text = formatExposition([...histogramObservation(h, { status: 'OK' }, 3), ...histogramObservation(h, { status: 'OK' }, 40), ...histogramObservation(h, { status: 'Internal' }, 20000)]);
    const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
    const value = (series: string) => Number(lines.find((l) => l.startsWith(`${series} `))!.split(' ')[1]);
    expect(lines).toHaveLength(2 * (LATENCY_BUCKETS_MS.length + 3));
    expect(value(`${h.name}_bucket{status="OK",le="2"}`)).toBe(0);
    expect(value(`${h.name}_bucket{status="OK",le="5"}`)).toBe(1);
    expect(value(`${h.name}_bucket{status="OK",le="50"}`)).toBe(2);
    expect(value(`${h.name}_bucket{status="OK",le="+Inf"}`)).toBe(2);
    expect(value(`${h.name}_sum{status="OK"}`)).toBe(43);
    expect(value(`${h.name}_count{status="OK"}`)).toBe(2);
    expect(value(`${h.name}_bucket{status="Internal",le="10000"}`)).toBe(0);
    expect(value(`${h.name}_bucket{status="Internal",le="+Inf"}`)).toBe(1);
    // buckets of one label set are in ascending le, then _sum, then _count
    const ok = lines.filter((l) => l.includes('status="OK"')).map((l) => l.split(' ')[0]);
    expect(ok.at(-2)).toBe(`${h.name}_sum{status="OK"}`);
    expect(ok.at(-1)).toBe(`${h.name}_count{status="OK"}`);
  });

  it('adds a 0 for every label-less counter not yet counted, and keeps the counted ones', () => {
    const samples = withZeroCounters([{ name: ISSUER_METRICS.x509SvidSigned.name, labels: {}, value: 4 }]);
    expect(samples.filter((s) => s.name === ISSUER_METRICS.x509SvidSigned.name)).toEqual([{ name: ISSUER_METRICS.x509SvidSigned.name, labels: {}, value: 4 }]);
    expect(samples).toContainEqual({ name: ISSUER_METRICS.jwtSvidSigned.name, labels: {}, value: 0 });
    expect(samples.some((s) => s.name === ISSUER_METRICS.rateLimitExceeded.name)).toBe(false);
  });
});
