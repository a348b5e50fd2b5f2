// The whole daemon (runAgent) against the real issuer in process (test-issuer.ts), on a Unix socket in a
// tmpdir, with one entry for this process's uid: the set-up the runAgent tests share, and their helpers.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { runAgent } from '../../../../src/agent/agent.js';
import { healthcheck } from '../../../../src/agent/cli/api.js';
import { parseAgentConfig } from '../../../../src/agent/config.js';
import { silentLogger } from '../../../../src/agent/log.js';
import type { NewEntry } from '../../../../src/shared/registry/entry.js';
import { startAgentTestIssuer, type AgentTestIssuer } from './test-issuer.js';

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Registers the file's afterEach and returns `stops`: what a test pushes there is undone after it, last first. */
export function useStops(): Array<() => Promise<void>> {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  return stops;
}

export interface RunningAgentOptions {
  trustDomain?: string;
  /** the issuer's config vars (e.g. WIT_SVID_TTL) */
  issuerConfig?: Record<string, string>;
  /** the entry for this uid (`e-me`, `/me` unless given), under the agent */
  entry?: { id?: string; path?: string; extra?: Partial<NewEntry> };
  /** more of the agent's config file (rateLimit, ...) */
  agentConfig?: Record<string, unknown>;
  /** the tmpdir's prefix */
  dirPrefix?: string;
}

export interface RunningAgent {
  issuer: AgentTestIssuer;
  /** the join token the agent attested with */
  token: string;
  dir: string;
  socketPath: string;
}

/**
 * Starts the issuer, adds the entry, runs the agent until its healthcheck passes; both are stopped through
 * `stops` (useStops). Agent and issuer share the system clock.
 */
export async function startRunningAgent(stops: Array<() => Promise<void>>, o: RunningAgentOptions = {}): Promise<RunningAgent> {
  const trustDomain = o.trustDomain ?? 'example.org';
  const issuer = await startAgentTestIssuer({ trustDomain, clock: Date.now, ...(o.issuerConfig ? { config: o.issuerConfig } : {}) });
  stops.push(() => issuer.close());
  const token = await issuer.createJoinToken();
  await issuer.addEntry(o.entry?.id ?? 'e-me', o.entry?.path ?? '/me', [{ type: 'unix', value: `uid:${process.getuid!()}` }], { parentId: issuer.agentIdOf(token), ...o.entry?.extra });
  const dir = mkdtempSync(join(tmpdir(), o.dirPrefix ?? 'wisp-agent-run-'));
  const socketPath = join(dir, 'api.sock');
  const config = parseAgentConfig({ path: 'test', content: { serverUrl: issuer.url, trustDomain, dataDir: join(dir, 'data'), socketPath, syncIntervalSeconds: 1, ...o.agentConfig } }, {}, { joinToken: token });
  const controller = new AbortController();
  const done = runAgent(config, { log: silentLogger(), signal: controller.signal });
  stops.push(async () => {
    controller.abort();
    await done;
  });
  await until(async () => (await healthcheck({ address: socketPath, timeoutMs: 1_000 })).healthy);
  return { issuer, token, dir, socketPath };
}
