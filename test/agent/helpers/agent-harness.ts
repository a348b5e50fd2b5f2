// Wires the agent's core (issuer client, identity, cache) against a FakeIssuer, with one settable clock.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeAttestor } from '../../../src/agent/attestor/node-attestor.js';
import { createJoinTokenAttestor } from '../../../src/agent/attestor/join-token.js';
import { SvidCache } from '../../../src/agent/cache/svid-cache.js';
import { openDataDir, type DataDir } from '../../../src/agent/data-dir.js';
import { createIssuerClient, type IssuerClient } from '../../../src/agent/issuer-client.js';
import { silentLogger } from '../../../src/agent/log.js';
import { createAgentIdentity, type AgentIdentity } from '../../../src/agent/node-attestation.js';
import type { TrustDomain } from '../../../src/shared/spiffe/id.js';
import { FakeIssuer } from './fake-issuer.js';

export const TRUST_DOMAIN = 'example.org' as TrustDomain;
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

export interface Harness {
  issuer: FakeIssuer;
  clock: { now: number; advance(ms: number): void; fn: () => number };
  dataDir: DataDir;
  dataDirPath: string;
  client: IssuerClient;
  identity: AgentIdentity;
  cache: SvidCache;
  /** a new identity over the same data dir (a restarted agent) */
  restart(attestor: NodeAttestor | undefined): Promise<{ identity: AgentIdentity; client: IssuerClient }>;
  close(): Promise<void>;
}

export async function createHarness(opts: { attestor?: NodeAttestor; joinToken?: string } = {}): Promise<Harness> {
  const clock = {
    now: T0,
    advance(ms: number) {
      this.now += ms;
    },
    fn: () => clock.now,
  };
  const issuer = await new FakeIssuer({ trustDomain: TRUST_DOMAIN, clock: clock.fn }).start();
  const token = opts.joinToken ?? 'token-1';
  issuer.joinTokens.add(token);
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
  const { identity, client } = wire(opts.attestor ?? createJoinTokenAttestor(token));
  const cache = new SvidCache({ trustDomain: TRUST_DOMAIN, clock: clock.fn, jwt: client, log, random: () => 0 });
  return {
    issuer,
    clock,
    dataDir,
    dataDirPath,
    client,
    identity,
    cache,
    restart: async (attestor) => wire(attestor),
    close: () => issuer.stop(),
  };
}
