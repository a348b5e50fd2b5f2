// The whole daemon (runAgent) against the real issuer in process (test/helpers/node/agent/test-issuer.ts),
// with the real Workload API server on a Unix socket in a tmpdir, driven through the same functions the
// `wisp-agent api` and `healthcheck` commands use. Agent and issuer share the system clock.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAgent } from '../../src/agent/agent.js';
import { fetchJwt, fetchX509, healthcheck, validateJwt, type ApiCommandOptions } from '../../src/agent/cli/api.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { silentLogger } from '../../src/agent/log.js';
import { RATE_LIMIT_EXCEEDED } from '../../src/agent/workload-api/rate-limit.js';
import { createWorkloadApiClient, isGrpcError } from '../../src/node/workload-api/client.js';
import { startRunningAgent, until, useStops } from '../helpers/node/agent/running-agent.js';
import { startAgentTestIssuer } from '../helpers/node/agent/test-issuer.js';

const stops = useStops();

describe('wisp-agent run', () => {
  it('attests, serves X509 and JWT SVIDs on its socket, shuts down cleanly, and restarts without a token', async () => {
    const issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    stops.push(() => issuer.close());
    const token = await issuer.createJoinToken();
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${process.getuid!()}` }], { parentId: issuer.agentIdOf(token) });
    const dir = mkdtempSync(join(tmpdir(), 'wisp-run-'));
    const socketPath = join(dir, 'api.sock');
    const config = parseAgentConfig(
      { path: 'test', content: { serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1 } },
      {},
      { joinToken: token },
    );
    const start = () => {
      const controller = new AbortController();
      const done = runAgent(config, { log: silentLogger(), signal: controller.signal });
      return { controller, done };
    };
    const api: ApiCommandOptions = { address: socketPath, output: 'json', timeoutMs: 5_000, print: (l) => lines.push(l) };
    const lines: string[] = [];

    const first = start();
    await until(async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy);

    const out = join(dir, 'out');
    await fetchX509({ ...api, writeDir: out });
    const x509 = JSON.parse(lines.pop()!) as { svids: Array<{ spiffeId: string; expiresAt: string }> };
    expect(x509.svids.map((s) => s.spiffeId)).toEqual(['spiffe://example.org/me']);
    expect(readFileSync(join(out, 'svid.0.pem'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(readFileSync(join(out, 'svid.0.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(statSync(join(out, 'svid.0.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(out, 'bundle.0.pem'), 'utf8')).toMatch(/BEGIN CERTIFICATE/);

    await fetchJwt({ ...api, audience: ['aud-x'] });
    const jwt = JSON.parse(lines.pop()!) as { svids: Array<{ spiffeId: string; svid: string }> };
    expect(jwt.svids[0]!.spiffeId).toBe('spiffe://example.org/me');
    await validateJwt({ ...api, audience: 'aud-x', svid: jwt.svids[0]!.svid });
    expect(JSON.parse(lines.pop()!)).toMatchObject({ spiffeId: 'spiffe://example.org/me' });

    first.controller.abort();
    await first.done;
    expect(existsSync(socketPath)).toBe(false);
    expect((await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy).toBe(false);

    // restart: the token is spent, yet the stored identity is reused without attesting again
    const second = start();
    await until(async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy);
    expect(issuer.callsTo('/attest').length).toBe(1);
    second.controller.abort();
    await second.done;
  });

  it('wires rateLimit from the config into the Workload API: a flood of FetchJWTSVID is refused, the healthcheck stays healthy', async () => {
    const { socketPath } = await startRunningAgent(stops, { agentConfig: { rateLimit: { fetch_jwt_svid: 1, fetch_x509_bundles: 1 } }, dirPrefix: 'wisp-run-rl-' });
    const client = createWorkloadApiClient(`unix://${socketPath}`);
    try {
      await until(async () => (await client.fetchX509SVID()[Symbol.asyncIterator]().next()).value?.svids.length === 1);
      const outcomes: string[] = [];
      for (let i = 0; i < 10; i++) {
        outcomes.push(
          await client.fetchJWTSVID({ audience: ['aud-x'] }).then(
            () => 'OK',
            (e: unknown) => (isGrpcError(e) && e.details.startsWith(RATE_LIMIT_EXCEEDED) ? 'LIMITED' : String(e)),
          ),
        );
      }
      // 1/s with a burst of 1: ten calls get 1 + (seconds they take) tokens; they take well under a second
      expect(outcomes.filter((o) => o === 'LIMITED').length).toBeGreaterThanOrEqual(3);
      expect(outcomes.every((o) => o === 'OK' || o === 'LIMITED')).toBe(true);
      for (let i = 0; i < 3; i++) expect((await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy).toBe(true);
    } finally {
      client.close();
    }
  });
});
