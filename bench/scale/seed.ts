/**
 * The scale run's registry: `agents` agent records and 10 entries each in D1, plus node-alias entries. The
 * first `real` agents are attested for real (join token; their proofs are valid) and drive the traffic; the
 * others are rows inserted into D1's agents table (an attested agent's row, with no SVID of ours to sign
 * with), so tables and indexes are at fleet size while the real agents' requests run. Entries of every agent
 * go through the admin batch API (validated, revision bumped, selectors indexed) like an operator's would.
 * Every agent is in one of POOLS node pools (a node selector); each pool has a node-alias entry under the
 * server ID and POOL_WORKLOADS entries parented to it, so every sync walks the alias path too.
 */
import { serverId, type TrustDomain } from '../../src/shared/spiffe/id.js';
import { createEntries, entry } from '../fleet.js';
import { attestAgent, TD, type BenchAgent, type Issuer } from '../stack.js';
import { pool } from '../stats.js';

export const ENTRIES_PER_AGENT = 10;
export const POOLS = 100;
export const POOL_WORKLOADS = 2;
/** how many agent rows go into one INSERT (one JSON parameter, json_each) */
const AGENT_ROWS_PER_INSERT = 2000;

export interface SeededAgent {
  agent: BenchAgent;
  /** the join token (the shard key) */
  token: string;
  /** entry ids: its own, then its pool's */
  entryIds: string[];
}

export interface Fleet {
  real: SeededAgent[];
  agents: number;
  entries: number;
}

const poolSelector = (p: number) => ({ type: 'k8s_psat', value: `agent_node_pool:pool-${p}` });
const AGENT_ID_PREFIX = `spiffe://${TD}/spire/agent/join_token/`;

export async function seedFleet(issuer: Issuer, opts: { agents: number; real: number; log: (s: string) => void }): Promise<Fleet> {
  const t0 = performance.now();
  const server = serverId(TD as TrustDomain);
  // node aliases and their workloads
  const aliasIds = await createEntries(issuer, Array.from({ length: POOLS }, (_, p) => ({ spiffeId: `spiffe://${TD}/pool/${p}`, parentId: server, selectors: [poolSelector(p)] })));
  const poolEntries = await createEntries(
    issuer,
    Array.from({ length: POOLS * POOL_WORKLOADS }, (_, i) => entry(`/pool/${i % POOLS}/daemon/${Math.floor(i / POOLS)}`, `spiffe://${TD}/pool/${i % POOLS}`, `uid:${5000 + Math.floor(i / POOLS)}`)),
  );
  const poolEntryIds = (p: number) => Array.from({ length: POOL_WORKLOADS }, (_, k) => poolEntries[k * POOLS + p]!);

  // the real agents, attested with join tokens (a few at a time: each attestation signs an agent SVID)
  const attested = await pool(opts.real, 8, () => attestAgent(issuer));
  opts.log(`  ${opts.real} agents attested (${Math.round(performance.now() - t0)} ms)`);

  // the other agents' rows, as an attestation writes them
  const db = await issuer.d1();
  const now = Math.floor(Date.now() / 1000);
  const inserted = Array.from({ length: opts.agents - opts.real }, (_, i) => `${AGENT_ID_PREFIX}scale-${i}`);
  for (let i = 0; i < inserted.length; i += AGENT_ROWS_PER_INSERT) {
    const rows = inserted.slice(i, i + AGENT_ROWS_PER_INSERT).map((id, k) => ({ id, serial: `scale-${i + k}`, selectors: JSON.stringify([poolSelector((opts.real + i + k) % POOLS)]) }));
    await db
      .prepare(
        `INSERT INTO agents (spiffe_id, attestation_type, serial, previous_serial, expires_at, banned, node_selectors, created_at, updated_at)
         SELECT json_extract(r.value, '$.id'), 'join_token', json_extract(r.value, '$.serial'), NULL, ?2, 0, json_extract(r.value, '$.selectors'), ?3, ?3 FROM json_each(?1) r`,
      )
      .bind(JSON.stringify(rows), now + 3600, now)
      .run();
  }
  // the real agents join their pools too (a node selector as a k8s_psat attestation would record)
  for (let i = 0; i < attested.length; i += AGENT_ROWS_PER_INSERT) {
    const rows = attested.slice(i, i + AGENT_ROWS_PER_INSERT).map((a, k) => ({ id: a.agentId, selectors: JSON.stringify([poolSelector((i + k) % POOLS)]) }));
    await db
      .prepare(`UPDATE agents SET node_selectors = (SELECT json_extract(r.value, '$.selectors') FROM json_each(?1) r WHERE json_extract(r.value, '$.id') = agents.spiffe_id) WHERE spiffe_id IN (SELECT json_extract(value, '$.id') FROM json_each(?1))`)
      .bind(JSON.stringify(rows))
      .run();
  }
  opts.log(`  ${inserted.length} agent rows inserted (${Math.round(performance.now() - t0)} ms)`);

  // ten entries per agent, through the admin batch API
  const parents = [...attested.map((a) => a.agentId), ...inserted];
  const all = parents.flatMap((parent, a) => Array.from({ length: ENTRIES_PER_AGENT }, (_, k) => entry(`/agent/${a}/workload/${k}`, parent as never, `uid:${1000 + k}`)));
  const ids = await createEntries(issuer, all, 3);
  opts.log(`  ${ids.length} entries created (${Math.round(performance.now() - t0)} ms)`);
  const real = attested.map((agent, a) => ({
    agent,
    token: agent.agentId.slice(AGENT_ID_PREFIX.length),
    entryIds: [...ids.slice(a * ENTRIES_PER_AGENT, (a + 1) * ENTRIES_PER_AGENT), ...poolEntryIds(a % POOLS)],
  }));
  return { real, agents: opts.agents, entries: ids.length + aliasIds.length + poolEntries.length };
}
