/**
 * Entry changes pushed, not polled (issue 21): a real wisp-agent with the DEFAULT sync interval (5 s) holds
 * the issuer's notification channel (the AgentNotifier Durable Object in the same workerd); a workload's
 * FetchX509SVID stream stays open on its socket. Measured from the admin API's 2xx to the stream: a created
 * entry's SVID appearing, a deleted entry's SVID gone, and 1,000 entries created in one batch until the
 * stream (the agent's cache) holds all of them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess, waitFor } from '../scripts/local-stack.js';
import { createWorkloadApiClient } from '../src/node/workload-api/client.js';
import { createEntries, entry, QUICK, startRealAgent } from './fleet.js';
import { record } from './report.js';
import { TD, type Issuer } from './stack.js';
import { median, percentile, round, sleep } from './stats.js';

const ROUNDS = QUICK ? 5 : 20;
const MANY = 1000;
const uid = process.getuid?.() ?? 0;
const POLL_LIMIT = 'polling alone: up to 5000 (syncIntervalSeconds 5)';

export async function benchPush(issuer: Issuer, dir: string): Promise<void> {
  console.log(`\n== Entry changes pushed to a workload's open stream (agent at the default 5 s poll, ${ROUNDS} rounds)`);
  const own = join(dir, 'push');
  mkdirSync(join(own, 'run'), { recursive: true });
  const agent = await startRealAgent(issuer, own, { svids: 1, config: { syncIntervalSeconds: 5 } });
  const client = createWorkloadApiClient(`unix://${agent.socketPath}`);
  const stream = new AbortController();
  // each response's SPIFFE IDs, with when it arrived
  let latest: { at: number; ids: Set<string> } = { at: 0, ids: new Set() };
  const reading = (async () => {
    for await (const res of client.fetchX509SVID({ signal: stream.signal })) latest = { at: performance.now(), ids: new Set(res.svids.map((s) => s.spiffeId)) };
  })().catch(() => undefined);
  const arrival = async (what: string, done: (ids: Set<string>) => boolean): Promise<number> =>
    waitFor(what, async () => (done(latest.ids) ? latest.at : undefined), 30_000, 2);
  try {
    await arrival('the first SVID', (ids) => ids.size > 0);
    const created: number[] = [];
    const deleted: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const spiffeId = `spiffe://${TD}/bench/push/${r}`;
      const { entry: e } = await issuer.admin<{ entry: { id: string } }>('POST', '/entries', entry(`/bench/push/${r}`, agent.agentId, `uid:${uid}`));
      const t0 = performance.now();
      created.push((await arrival(`${spiffeId} on the stream`, (ids) => ids.has(spiffeId))) - t0);
      // off the poll's phase: a notice-driven sync must not ride on a poll by luck
      await sleep(100 + Math.random() * 400);
      await issuer.admin('DELETE', `/entries/${e.id}`);
      const t1 = performance.now();
      deleted.push((await arrival(`${spiffeId} gone from the stream`, (ids) => !ids.has(spiffeId))) - t1);
      await sleep(100 + Math.random() * 400);
    }
    console.log(`  create: ${created.map((x) => Math.round(x)).join(' ')} ms; delete: ${deleted.map((x) => Math.round(x)).join(' ')} ms`);
    for (const [key, values] of [['entry_create_to_workload_ms', created], ['entry_delete_to_workload_ms', deleted]] as const) {
      record(`${key}_p50`, round(median(values), 1), { limit: POLL_LIMIT });
      const p99 = round(percentile(values, 99), 1);
      record(`${key}_p99`, p99, { limit: POLL_LIMIT, target: '≤ 1000', met: p99 <= 1000 });
    }

    // 1,000 new entries in one batch call (the admin API's batch is 500: two calls, back to back)
    const base = latest.ids.size;
    const many = Array.from({ length: MANY }, (_, i) => entry(`/bench/push/many/${i}`, agent.agentId, `uid:${uid}`));
    const t0 = performance.now();
    await createEntries(issuer, many, 2);
    const held = (await arrival(`${MANY} new SVIDs on the stream`, (ids) => ids.size >= base + MANY)) - t0;
    const ms = Math.round(held);
    record('new_entries_1000_to_all_held_ms', ms, { limit: 'from the first batch call; includes 1,000 agent key pairs and CSRs and the issuer signing them', target: '≤ 2000', met: ms <= 2000 });
  } finally {
    stream.abort();
    client.close();
    await reading;
    await stopProcess(agent.child);
  }
}
