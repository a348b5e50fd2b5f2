// Wires the agent's core (issuer client, identity, cache) against the real issuer in process
// (test-issuer.ts), with one settable clock shared by the agent, the issuer app and its CA.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';
import type { NodeAttestor } from '../../../../src/agent/attestor/node-attestor.js';
import { createJoinTokenAttestor } from '../../../../src/agent/attestor/join-token.js';
import { SvidCache } from '../../../../src/agent/cache/svid-cache.js';
import { openDataDir, type DataDir } from '../../../../src/agent/data-dir.js';
import { createIssuerClient, type IssuerClient } from '../../../../src/agent/issuer-client.js';
import { silentLogger } from '../../../../src/agent/log.js';
import { createAgentIdentity, type AgentIdentity } from '../../../../src/agent/node-attestation.js';
import { runRotator } from '../../../../src/agent/rotator.js';
import type { NewEntry } from '../../../../src/shared/registry/entry.js';
import type { Selector } from '../../../../src/shared/registry/selectors.js';
import type { SpiffeId, TrustDomain } from '../../../../src/shared/spiffe/id.js';
import { createD1Pool, type D1Pool } from '../in-process-issuer.js';
import { startAgentTestIssuer, type AgentTestIssuer } from './test-issuer.js';

export const TRUST_DOMAIN = 'example.org' as TrustDomain;
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/**
 * Lifetimes in these tests, seconds. The issuer signs the agent's SVID for X509_SVID_TTL and a workload's
 * for its entry's x509SvidTtl (the harness sets it on every entry it adds); JWT-SVIDs live JWT_SVID_TTL.
 * CA_TTL is short enough that the CA prepares its next key (at half its life) while the agent SVID is valid.
 */
export const TTL = { agent: 3600, x509: 600, jwt: 300, ca: 5400 } as const;
const ISSUER_CONFIG = { X509_SVID_TTL: `${TTL.agent}s`, JWT_SVID_TTL: `${TTL.jwt}s`, CA_TTL: `${TTL.ca}s` };

export interface TestClock {
  now: number;
  advance(ms: number): void;
  fn: () => number;
}

export function testClock(start = T0): TestClock {
  const clock: TestClock = {
    now: start,
    advance(ms: number) {
      clock.now += ms;
    },
    fn: () => clock.now,
  };
  return clock;
}

export interface Harness {
  issuer: AgentTestIssuer;
  clock: TestClock;
  /** the join token the agent attests with (a real one, single use) */
  joinToken: string;
  /** the agent ID that token gives, parent of the entries `addEntry` makes */
  agentId: SpiffeId;
  dataDir: DataDir;
  dataDirPath: string;
  client: IssuerClient;
  identity: AgentIdentity;
  cache: SvidCache;
  /** POST /admin/v1/entries under the agent, with x509SvidTtl TTL.x509 unless `extra` says otherwise */
  addEntry(id: string, spiffePath: string, selectors: Selector[], extra?: Partial<NewEntry>): Promise<void>;
  /** the CA's alarm fires: the clock moves to the time the CA asked for (its next rotation check), then it runs */
  fireCaAlarm(): Promise<void>;
  /** a new identity over the same data dir (a restarted agent) */
  restart(attestor: NodeAttestor | undefined): Promise<{ identity: AgentIdentity; client: IssuerClient }>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** default: the join-token attestor with `joinToken`; a function gets the harness's token */
  attestor?: (joinToken: string) => NodeAttestor;
}

/**
 * Registers the file's hooks and returns `createHarness`: one Miniflare D1 pool per test file (each
 * harness gets an emptied, migrated database and a new CA), every harness a test made closed after it.
 */
export function useAgentHarness(): (opts?: HarnessOptions) => Promise<Harness> {
  const pool = createD1Pool();
  const open: Harness[] = [];
  afterEach(async () => {
    for (const h of open.splice(0)) await h.close();
  });
  afterAll(() => pool.dispose());
  return async (opts = {}) => {
    const h = await createHarness(pool, opts);
    open.push(h);
    return h;
  };
}

async function createHarness(pool: D1Pool, opts: HarnessOptions): Promise<Harness> {
  const clock = testClock();
  const issuer = await startAgentTestIssuer({ trustDomain: TRUST_DOMAIN, clock: clock.fn, config: ISSUER_CONFIG, d1: pool });
  const joinToken = await issuer.createJoinToken();
  const agentId = issuer.agentIdOf(joinToken);
  issuer.defaultParentId = agentId;
  const dataDirPath = join(mkdtempSync(join(tmpdir(), 'wisp-agent-')), 'data');
  const dataDir = await openDataDir(dataDirPath);
  const log = silentLogger();
  const wire = (attestor: NodeAttestor | undefined) => {
    const holder: { identity?: AgentIdentity } = {};
    const client = createIssuerClient({ serverUrl: issuer.url, timeoutMs: 5_000, clock: clock.fn, credentials: () => holder.identity?.current() });
    const identity = createAgentIdentity({ client, dataDir, attestor, clock: clock.fn, log });
    holder.identity = identity;
    return { identity, client };
  };
  const { identity, client } = wire(opts.attestor ? opts.attestor(joinToken) : createJoinTokenAttestor(joinToken));
  const cache = new SvidCache({ trustDomain: TRUST_DOMAIN, clock: clock.fn, jwt: client, wit: client, log, random: () => 0 });
  let closed: Promise<void> | undefined;
  return {
    issuer,
    clock,
    joinToken,
    agentId,
    dataDir,
    dataDirPath,
    client,
    identity,
    cache,
    addEntry: async (id, spiffePath, selectors, extra = {}) => {
      await issuer.addEntry(id, spiffePath, selectors, { x509SvidTtl: TTL.x509, ...extra });
    },
    async fireCaAlarm() {
      const at = await issuer.caStorage.getAlarm();
      if (at === null) throw new Error('the CA has set no alarm yet');
      clock.advance(Math.max(0, at - clock.now));
      await issuer.ca.alarm();
    },
    restart: async (attestor) => wire(attestor),
    close: () => (closed ??= issuer.close()),
  };
}

/**
 * One rotator round (renew if due, sync, sign) over the harness's parts, as the agent runs it, then stops:
 * the rotator's sleep aborts it. `cache` replaces the harness's (a second cache restored from the same file).
 */
export async function rotatorRound(h: Harness, cache: SvidCache = h.cache): Promise<void> {
  const controller = new AbortController();
  await runRotator(
    { identity: h.identity, cache, client: h.client, dataDir: h.dataDir, clock: h.clock.fn, random: () => 0, intervalMs: 5_000, log: silentLogger(), sleep: async () => controller.abort() },
    controller.signal,
  );
}
