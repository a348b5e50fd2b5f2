// The agent's `telemetry.prometheus` and `healthChecks` keys (SPIRE's `telemetry { Prometheus }` and
// `health_checks`): off by default, loopback by default, anything malformed is the one-line config error.
// Also SPIRE's metric-key rule for RPC names (src/shared/telemetry/names.ts).
import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from '../../src/agent/config.js';
import { metricKeyOf, rpcCallCounter } from '../../src/shared/telemetry/names.js';

const file = (content: unknown) => ({ path: '/etc/wisp/agent.json', content });
const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };
const parse = (extra: Record<string, unknown>) => parseAgentConfig(file({ ...base, ...extra }), {}, {});

describe('agent config: telemetry and healthChecks', () => {
  it('both are off by default', () => {
    const c = parse({});
    expect(c.telemetry).toBeUndefined();
    expect(c.healthChecks).toBeUndefined();
  });

  it('prometheus: host defaults to 127.0.0.1, port is required', () => {
    expect(parse({ telemetry: { prometheus: { port: 9988 } } }).telemetry).toEqual({ prometheus: { host: '127.0.0.1', port: 9988 } });
    expect(parse({ telemetry: { prometheus: { host: '0.0.0.0', port: 0 } } }).telemetry).toEqual({ prometheus: { host: '0.0.0.0', port: 0 } });
    expect(parse({ telemetry: {} }).telemetry).toBeUndefined();
    expect(() => parse({ telemetry: { prometheus: {} } })).toThrow(/^telemetry\.prometheus\.port \(from file \/etc\/wisp\/agent\.json\): is required/);
  });

  it('reads WISP_TELEMETRY and WISP_HEALTH_CHECKS as JSON', () => {
    const c = parseAgentConfig(file(base), { WISP_TELEMETRY: '{"prometheus":{"port":9100}}', WISP_HEALTH_CHECKS: '{"listenerEnabled":true}' }, {});
    expect(c.telemetry).toEqual({ prometheus: { host: '127.0.0.1', port: 9100 } });
    expect(c.healthChecks).toEqual({ listenerEnabled: true, bindAddress: '127.0.0.1', bindPort: 8080, livePath: '/live', readyPath: '/ready' });
  });

  it.each([
    [{ telemetry: { prometheus: { port: 70000 } } }, /^telemetry\.prometheus\.port \(from file \/etc\/wisp\/agent\.json\): must be a whole number from 0/],
    [{ telemetry: { prometheus: { port: '9988' } } }, /^telemetry\.prometheus\.port \(from file /],
    [{ telemetry: { prometheus: { port: 1, host: 'a b' } } }, /^telemetry\.prometheus\.host \(from file /],
    [{ telemetry: { prometheus: { port: 1, tls: {} } } }, /^telemetry\.prometheus\.tls \(from file /],
    [{ telemetry: { statsd: {} } }, /^telemetry\.statsd \(from file /],
    [{ healthChecks: { listenerEnabled: 'yes' } }, /^healthChecks\.listenerEnabled \(from file /],
    [{ healthChecks: { livePath: 'live' } }, /^healthChecks\.livePath \(from file .*must be a path starting with \//],
    [{ healthChecks: { livePath: '/x', readyPath: '/x' } }, /^healthChecks \(from file .*livePath and readyPath must differ/],
    [{ healthChecks: { bindPort: -1 } }, /^healthChecks\.bindPort \(from file /],
  ])('rejects %j with one line', (extra, message) => {
    let err: unknown;
    try {
      parse(extra);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });
});

describe("SPIRE's metric names for RPCs", () => {
  it.each([
    ['FetchX509SVID', 'fetch_x509svid'],
    ['FetchJWTSVID', 'fetch_jwtsvid'],
    ['FetchJWTBundles', 'fetch_jwt_bundles'],
    ['FetchX509Bundles', 'fetch_x509_bundles'],
    ['ValidateJWTSVID', 'validate_jwtsvid'],
    ['StreamSecrets', 'stream_secrets'],
    ['WorkloadAPI', 'workload_api'],
    ['AttestAgent', 'attest_agent'],
  ])('%s → %s', (name, key) => {
    expect(metricKeyOf(name)).toBe(key);
  });

  it('joins prefix, rpc, service parts and method with _', () => {
    expect(rpcCallCounter('WorkloadAPI', 'FetchX509SVID').name).toBe('spire_agent_rpc_workload_api_fetch_x509svid');
    expect(rpcCallCounter('SDS.v3', 'StreamSecrets').elapsed).toBe('spire_agent_rpc_sds_v3_stream_secrets_elapsed_time');
  });
});
