// The agent's metrics listener and health checks: the whole daemon (runAgent) against the real issuer in
// process, real Workload API calls on its Unix socket, the exposition scraped over HTTP and parsed, and
// checked by `promtool check metrics` where promtool exists (Debian's `prometheus` package).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../src/agent/agent.js';
import { createJoinTokenAttestor } from '../../src/agent/attestor/join-token.js';
import { openDataDir } from '../../src/agent/data-dir.js';
import { createIssuerClient } from '../../src/agent/issuer-client.js';
import { createAgentIdentity } from '../../src/agent/node-attestation.js';
import { createAgentTelemetry } from '../../src/agent/telemetry/metrics.js';
import { healthcheck } from '../../src/agent/cli/api.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { silentLogger } from '../../src/agent/log.js';
import { RATE_LIMIT_EXCEEDED } from '../../src/agent/workload-api/rate-limit.js';
import { createWorkloadApiClient, isGrpcError } from '../../src/node/workload-api/client.js';
import { startAgentTestIssuer, type AgentTestIssuer } from '../helpers/node/agent/test-issuer.js';
import { checkMetrics, findPrometheusTool } from '../helpers/node/promtool.js';
import { until } from '../helpers/node/agent/running-agent.js';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

/** A clock both the agent and the issuer read: real time plus an offset the test moves forward. */
function offsetClock() {
  const c = { offsetMs: 0, fn: () => Date.now() + c.offsetMs };
  return c;
}

/** One sample line of the exposition: name{labels} value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (0.0.4) strictly enough to fail on a malformed line. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') types.set(meta[2]!, meta[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) labels[l[1]!] = l[2]!;
    const value = Number(m[3]);
    if (Number.isNaN(value) && m[3]!.toLowerCase() !== 'nan') throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(port: number): Promise<{ text: string; samples: Sample[]; types: Map<string, string> }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, ...parseExposition(text) };
}

async function startAgent(issuer: AgentTestIssuer, clock: () => number, extra: Record<string, unknown>, joinToken: string) {
  const dir = mkdtempSync(join(tmpdir(), 'wisp-tel-'));
  const socketPath = join(dir, 'api.sock');
  const config = parseAgentConfig(
    { path: 'test', content: { serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1, ...extra } },
    {},
    { joinToken },
  );
  const ports: Partial<Record<'metrics' | 'health', number>> = {};
  const controller = new AbortController();
  const done = runAgent(config, { log: silentLogger(), signal: controller.signal, clock, onListening: (which, port) => (ports[which] = port) });
  const stop = async () => {
    controller.abort();
    await done.catch(() => undefined); // a test that expects a failure asserts it on `done`
  };
  stops.push(stop);
  return { socketPath, ports, stop, done };
}

const uid = () => process.getuid!();

describe('agent telemetry', () => {
  it('counts N FetchX509SVID and M FetchJWTSVID calls, a failed call by status, rate-limit refusals, the attestation and a rotation, in a valid exposition', async () => {
    const clock = offsetClock();
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: clock.fn, config: { X509_SVID_TTL: '1h', CA_TTL: '1h' } });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${uid()}` }], { parentId: issuer.agentIdOf(token) });
    const agent = await startAgent(issuer, clock.fn, { telemetry: { prometheus: { port: 0 } }, rateLimit: { fetch_x509_bundles: 1 } }, token);
    await until(async () => (await healthcheck({ address: agent.socketPath, timeoutMs: 1_000 })).healthy);
    const port = agent.ports.metrics!;
    expect(port).toBeGreaterThan(0);

    const before = await scrape(port);
    expect(valueOf(before.samples, 'spire_agent_node_attestor_new_svid', { status: 'OK' })).toBe(1);
    expect(before.types.get('spire_agent_node_attestor_new_svid')).toBe('counter');
    expect(valueOf(before.samples, 'spire_agent_node_attestor_new_svid_elapsed_time_count', { status: 'OK' })).toBe(1);
    // the healthcheck above made FetchX509SVID calls of its own: count from here
    const x509Before = valueOf(before.samples, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'OK' }) ?? 0;
    const jwtBefore = valueOf(before.samples, 'spire_agent_rpc_workload_api_fetch_jwtsvid', { status: 'OK' }) ?? 0;
    // (and FetchX509Bundles, refused as not ready while it polled)
    const bundlesUnavailableBefore = valueOf(before.samples, 'spire_agent_rpc_workload_api_fetch_x509_bundles', { status: 'Unavailable' }) ?? 0;
    const limitedBefore = valueOf(before.samples, 'spire_agent_workload_api_rate_limit_exceeded', { method: 'FetchX509Bundles' }) ?? 0;

    const N = 3;
    const M = 2;
    const client = createWorkloadApiClient(`unix://${agent.socketPath}`);
    let refused = 0;
    try {
      for (let i = 0; i < N; i++) {
        const it = client.fetchX509SVID()[Symbol.asyncIterator]();
        expect((await it.next()).value?.svids.length).toBe(1);
        if (i === 0) expect(valueOf((await scrape(port)).samples, 'wisp_agent_workload_api_streams', { method: 'FetchX509SVID' })).toBe(1);
        await it.return?.();
      }
      for (let i = 0; i < M; i++) expect((await client.fetchJWTSVID({ audience: ['aud-x'] })).svids.length).toBe(1);
      const failed = await client.fetchJWTSVID({ audience: [''] }).then(() => undefined, (e: unknown) => e);
      expect(isGrpcError(failed) && failed.code).toBe(3); // InvalidArgument
      // FetchX509Bundles at 1/s with a burst of 1: a quick run of opens is partly refused
      for (let i = 0; i < 5; i++) {
        const it = client.fetchX509Bundles()[Symbol.asyncIterator]();
        const outcome = await it.next().then(() => 'OK', (e: unknown) => (isGrpcError(e) && e.details.startsWith(RATE_LIMIT_EXCEEDED) ? 'LIMITED' : String(e)));
        if (outcome === 'LIMITED') refused++;
        else await it.return?.();
      }
    } finally {
      client.close();
    }

    // streams are counted when they end (the agent sees the cancellation a moment later)
    let after = await scrape(port);
    await until(async () => {
      after = await scrape(port);
      return valueOf(after.samples, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'OK' }) === x509Before + N;
    });
    const s = after.samples;
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_x509svid', { status: 'OK' })).toBe(x509Before + N);
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_jwtsvid', { status: 'OK' })).toBe(jwtBefore + M);
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_jwtsvid', { status: 'InvalidArgument' })).toBe(1);
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_jwtsvid_elapsed_time_count', { status: 'OK' })).toBe(jwtBefore + M);
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_jwtsvid_elapsed_time_count', { status: 'InvalidArgument' })).toBe(1);
    expect(after.types.get('spire_agent_rpc_workload_api_fetch_jwtsvid_elapsed_time')).toBe('histogram');
    // no other status appeared for these methods
    expect(s.filter((x) => x.name === 'spire_agent_rpc_workload_api_fetch_jwtsvid').map((x) => x.labels.status).sort()).toEqual(['InvalidArgument', 'OK']);
    expect(valueOf(s, 'wisp_agent_workload_api_streams', { method: 'FetchX509SVID' })).toBe(0);
    expect(valueOf(s, 'spire_agent_workload_api_connection')).toBeGreaterThanOrEqual(1);
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(valueOf(s, 'spire_agent_workload_api_rate_limit_exceeded', { method: 'FetchX509Bundles' })).toBe(limitedBefore + refused);
    expect(valueOf(s, 'spire_agent_rpc_workload_api_fetch_x509_bundles', { status: 'Unavailable' })).toBe(bundlesUnavailableBefore + refused);
    expect(valueOf(s, 'spire_agent_lru_cache_record_map_size', { svid_type: 'x509' })).toBe(1);
    expect(valueOf(s, 'spire_agent_lru_cache_svid_map_size', { svid_type: 'x509' })).toBe(1);
    expect(valueOf(s, 'spire_agent_jwt_svid_cache_size')).toBe(1);
    expect(valueOf(s, 'spire_agent_manager_sync_fetch_entries_updates', { status: 'OK' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(s, 'spire_agent_manager_sync_fetch_svids_updates', { status: 'OK' })).toBeGreaterThanOrEqual(1);
    // the bundle came with the attestation; no sync has changed it yet
    expect(valueOf(s, 'spire_agent_workload_api_bundles_update_jwt')).toBe(0);
    expect(valueOf(s, 'wisp_agent_issuer_request_duration_seconds_count', { route: '/attest' })).toBe(1);
    expect(valueOf(s, 'wisp_agent_issuer_request_duration_seconds_count', { route: '/jwt-svids' })).toBe(issuer.callsTo('/jwt-svids').length);
    expect(valueOf(s, 'spire_agent_started', { version: '0.1.0', trust_domain_id: 'spiffe://example.org' })).toBe(1);
    expect(valueOf(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(s, 'spire_agent_agent_svid_rotate', { status: 'OK' })).toBe(0); // listed from the start, at 0

    // past half of the agent SVID's hour: the next round rotates it
    clock.offsetMs += 35 * 60_000;
    await until(async () => valueOf((await scrape(port)).samples, 'spire_agent_agent_svid_rotate', { status: 'OK' }) === 1);
    expect(issuer.callsTo('/renew').filter((c) => c.status === 200).length).toBe(1);
    // past half the CA's hour too: it prepares its next key, and the sync that brings the new bundle counts
    await until(async () => (valueOf((await scrape(port)).samples, 'spire_agent_workload_api_bundles_update_jwt') ?? 0) >= 1);

    // the issuer unreachable: requests fail with ERR_UNAVAILABLE, counted by route
    issuer.down = true;
    await until(async () => (valueOf((await scrape(port)).samples, 'wisp_agent_issuer_request_errors_total', { route: '/sync', code: 'ERR_UNAVAILABLE' }) ?? 0) >= 1);
    const last = await scrape(port);
    expect(valueOf(last.samples, 'spire_agent_manager_sync_fetch_entries_updates', { status: 'Unavailable' })).toBeGreaterThanOrEqual(1);

    const promtool = findPrometheusTool('promtool');
    if (!promtool.path) {
      console.warn(`skipping promtool check metrics: ${promtool.why}`);
      return;
    }
    // Known and kept on purpose (docs/telemetry.md, test/helpers/node/promtool.ts): SPIRE's counters without
    // `_total`, its `_in_ms` uptime, prom-client's three `_total` gauges. Any other problem fails.
    const { problems, unexpected: other } = checkMetrics(promtool.path, last.text);
    expect(problems.length).toBeGreaterThan(0); // promtool ran and spoke (the `_total` lints above are certain)
    expect(other).toEqual([]);
  }, 60_000);

  it('a metrics port already taken stops the agent with a one-line config error, its socket removed', async () => {
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    stops.push(() => issuer.close());
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    stops.push(() => new Promise<void>((resolve) => taken.close(() => resolve())));
    const port = (taken.address() as AddressInfo).port;
    const agent = await startAgent(issuer, Date.now, { telemetry: { prometheus: { port } } }, await issuer.createJoinToken());
    await expect(agent.done).rejects.toThrow(new RegExp(`^telemetry\\.prometheus: cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)$`));
    expect(existsSync(agent.socketPath)).toBe(false);
  });

  it('a refused node attestation is counted with its status, and the issuer error by route and code', async () => {
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    stops.push(() => issuer.close());
    const telemetry = createAgentTelemetry({ version: 'test', trustDomainId: 'spiffe://example.org', startedAt: Date.now(), clock: Date.now });
    const client = createIssuerClient({ serverUrl: issuer.url, timeoutMs: 5_000, clock: Date.now, credentials: () => undefined, telemetry });
    const dataDir = await openDataDir(join(mkdtempSync(join(tmpdir(), 'wisp-tel-att-')), 'data'));
    const identity = createAgentIdentity({ client, dataDir, attestor: createJoinTokenAttestor('no-such-token'), clock: Date.now, log: silentLogger(), telemetry });
    await expect(identity.start()).rejects.toThrow(/ERR_JOIN_TOKEN_INVALID/);
    const { samples } = parseExposition(await telemetry.metrics());
    expect(valueOf(samples, 'spire_agent_node_attestor_new_svid', { status: 'Unauthenticated' })).toBe(1);
    expect(valueOf(samples, 'spire_agent_node_attestor_new_svid', { status: 'OK' })).toBe(0);
    expect(valueOf(samples, 'spire_agent_node_attestor_new_svid_elapsed_time_count', { status: 'Unauthenticated' })).toBe(1);
    expect(valueOf(samples, 'wisp_agent_issuer_request_errors_total', { route: '/attest', code: 'ERR_JOIN_TOKEN_INVALID' })).toBe(1);
  });

  it('health: live but not ready while attesting against an unreachable issuer, ready once it serves, still ready with the issuer down and a valid cache, neither once the agent SVID expires', async () => {
    const clock = offsetClock();
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: clock.fn, config: { X509_SVID_TTL: '1h' } });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${uid()}` }], { parentId: issuer.agentIdOf(token) });
    issuer.down = true;
    const agent = await startAgent(issuer, clock.fn, { healthChecks: { listenerEnabled: true, bindPort: 0 } }, token);
    await until(() => agent.ports.health !== undefined);
    const base = `http://127.0.0.1:${agent.ports.health!}`;
    const probe = async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, boolean> } };
    };

    expect((await probe('/live')).status).toBe(200);
    const notReady = await probe('/ready');
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatchObject({ status: 'unavailable', checks: { agent_svid_valid: false } });
    expect((await probe('/other')).status).toBe(404);

    issuer.down = false;
    await until(async () => (await probe('/ready')).status === 200);
    expect((await probe('/ready')).body.status).toBe('ok');
    // 5 s, not the CLI's 1 s default: the first call loads and connects a gRPC client, which took over 1 s on a loaded CI machine
    expect((await healthcheck({ address: agent.socketPath, timeoutMs: 5_000 })).healthy).toBe(true);

    // issuer down: the agent keeps serving its cache, so it stays live and ready
    issuer.down = true;
    await new Promise((r) => setTimeout(r, 2_500)); // two failed sync rounds
    expect((await probe('/live')).status).toBe(200);
    expect((await probe('/ready')).status).toBe(200);
    expect((await healthcheck({ address: agent.socketPath, timeoutMs: 5_000 })).healthy).toBe(true);

    // past the agent SVID's end with the issuer still down: it can no longer serve
    clock.offsetMs += 2 * 3600_000;
    expect((await probe('/live')).status).toBe(503);
    const dead = await probe('/ready');
    expect(dead.status).toBe(503);
    expect(dead.body.checks.agent_svid_valid).toBe(false);

    await agent.stop();
    await expect(fetch(`${base}/live`)).rejects.toThrow();
  }, 60_000);
});
