/**
 * The time-compressed run: real attested agents send the requests a wisp-agent sends in steady state (model.ts),
 * every period divided by `compression`, open loop (each request at its time, whatever the answers take), for
 * `seconds`. SVIDs start at random ages (steady state, not a fleet booting). Admin changes are real entry
 * updates (registry revision bumped), each followed by a push: the affected agent syncs at once. An agent
 * renews its own SVID at most once in a run (the bench's agent keeps signing with its first SVID, which the
 * issuer accepts as the previous one until the new one is used).
 */
import { makeCsr, b64, type Issuer } from '../stack.js';
import { AGENT_RENEW_S, FEDERATION_POLL_S, JWT_REMINT_S, SYNC_S, X509_RENEW_S, X509_TTL_S, type Op } from './model.js';
import { ROTATION_JITTER_FRACTION } from '../../src/agent/rotation-policy.js';
import { entry } from '../fleet.js';
import type { SeededAgent } from './seed.js';

export interface SimResult {
  seconds: number;
  /** admin changes made (Poisson: the model is checked against the rate that happened) */
  changes: number;
  sent: Record<Op, number>;
  /** requests answered with an error, by status, and the first error's text */
  failed: number;
  failures: Record<string, number>;
  firstFailure?: string;
  /** requests not sent: the driver already had maxInFlight waiting (the issuer fell behind) */
  dropped: number;
  /** 99th percentile of how late requests left (the driver keeping up), ms */
  lateP99Ms: number;
}

interface SyncState {
  revision?: string;
  bundleSequence?: number;
}

export async function runSim(
  issuer: Issuer,
  agents: SeededAgent[],
  opts: { compression: number; seconds: number; /** called after the agents' first syncs, right before the run (the meter's reset) */ beforeStart: () => Promise<void>; changesPerSecond: number; jwtPairsPerAgent: number; maxInFlight: number; shards: number; shardOf: (a: SeededAgent) => number },
): Promise<SimResult> {
  const F = opts.compression;
  const csrs = await Promise.all(Array.from({ length: 16 }, () => makeCsr()));
  const sent: Record<Op, number> = { sync_unchanged: 0, sync_changed: 0, x509_batch: 0, jwt_batch: 0, renew: 0, federation_tasks: 0, push: 0 };
  let failed = 0;
  let dropped = 0;
  const failures: Record<string, number> = {};
  let firstFailure: string | undefined;
  const fail = (why: string, text: string) => {
    failed++;
    failures[why] = (failures[why] ?? 0) + 1;
    firstFailure ??= text.slice(0, 300);
  };
  let inFlight = 0;
  const late: number[] = [];
  const q = (a: SeededAgent) => (opts.shards > 1 ? `?shard=${opts.shardOf(a)}` : '');
  const state = new Map<SeededAgent, SyncState>();
  // every agent's state as after its last sync (its first sync is not part of the run)
  await Promise.all(
    agents.map(async (a) => {
      const r = await a.agent.call<{ revision: string; bundle?: { spiffe_sequence?: number } }>(`/agent/v1/sync${q(a)}`, {});
      state.set(a, { revision: r.revision, bundleSequence: r.bundle?.spiffe_sequence });
    }),
  );
  let registry = 0; // changes made so far
  const seen = new Map<SeededAgent, number>(agents.map((a) => [a, 0]));

  const send = async (op: Op, a: SeededAgent, path: string, body: unknown, method: 'POST' | 'GET' = 'POST') => {
    if (inFlight >= opts.maxInFlight) {
      dropped++;
      return undefined;
    }
    inFlight++;
    sent[op]++;
    try {
      const res = await (await a.agent.prepare(`${path}${q(a)}`, body, method))();
      const text = await res.text();
      if (!res.ok) {
        fail(`${op} ${res.status}`, `${op}: ${res.status} ${text}`);
        return undefined;
      }
      return text;
    } catch (e) {
      fail(`${op} network`, `${op}: ${String(e)}`);
      return undefined;
    } finally {
      inFlight--;
    }
  };
  const sync = async (a: SeededAgent, op: Op) => {
    const s = state.get(a)!;
    const before = registry;
    const text = await send(op === 'push' ? 'push' : seen.get(a)! < registry ? 'sync_changed' : 'sync_unchanged', a, '/agent/v1/sync', { revision: s.revision, bundleSequence: s.bundleSequence });
    if (text) {
      const r = JSON.parse(text) as SyncState & { bundle?: { spiffe_sequence?: number } };
      state.set(a, { revision: r.revision, bundleSequence: r.bundle?.spiffe_sequence ?? s.bundleSequence });
      seen.set(a, before);
    }
  };

  // the schedule: [time ms, action]
  const T = opts.seconds * 1000;
  const events: [number, () => Promise<unknown>][] = [];
  const every = (periodS: number, action: () => Promise<unknown>, phase = Math.random()) => {
    for (let t = phase * (periodS * 1000) / F; t < T; t += (periodS * 1000) / F) events.push([t, action]);
  };
  const renewed = new Set<SeededAgent>();
  for (const a of agents) {
    // sync ticks carry the X509-SVID renewals due (batched, as the agent's sync round does)
    const due = a.entryIds.map(() => Math.random() * X509_RENEW_S * 1000);
    const tick = (t: number) => async () => {
      await sync(a, 'sync_unchanged');
      const now = (t * F);
      const batch = a.entryIds.filter((_, i) => due[i]! <= now);
      if (batch.length === 0) return;
      for (let i = 0; i < due.length; i++) if (due[i]! <= now) due[i] = now + X509_TTL_S * 1000 * (0.5 - ROTATION_JITTER_FRACTION * Math.random());
      await send('x509_batch', a, '/agent/v1/x509-svids', { requests: batch.map((id, k) => ({ entryId: id, csr: b64(csrs[k % csrs.length]!.der) })) });
    };
    const phase = Math.random();
    for (let t = (phase * SYNC_S * 1000) / F; t < T; t += (SYNC_S * 1000) / F) events.push([t, tick(t)]);
    for (let j = 0; j < opts.jwtPairsPerAgent; j++) every(JWT_REMINT_S, () => send('jwt_batch', a, '/agent/v1/jwt-svids', { requests: [{ entryId: a.entryIds[j % a.entryIds.length], audience: [`scale-${j}`] }] }));
    every(FEDERATION_POLL_S, () => send('federation_tasks', a, '/agent/v1/federation/refresh-tasks', undefined, 'GET'));
    every(AGENT_RENEW_S, async () => {
      if (renewed.has(a)) return;
      renewed.add(a);
      await send('renew', a, '/agent/v1/renew', { csr: b64(csrs[0]!.der) });
    });
  }
  // admin changes (Poisson), each pushed to the agent whose entry changed
  for (let t = 0, n = 0; ; n++) {
    t += (-Math.log(1 - Math.random()) / (opts.changesPerSecond * F)) * 1000;
    if (t >= T) break;
    const a = agents[n % agents.length]!;
    events.push([t, async () => {
      await issuer.admin('POST', '/entries/batch-update', { entries: [{ id: a.entryIds[0], ...entry(`/agent/x/workload/${a.agent.agentId.slice(-12)}-0`, a.agent.agentId, 'uid:1000', { hint: `change-${n}` }) }] }).catch((e: unknown) => fail('admin change', String(e)));
      registry++;
      await sync(a, 'push');
    }]);
  }
  events.sort((x, y) => x[0] - y[0]);
  await opts.beforeStart();
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (const [at, action] of events) {
    const wait = at - (performance.now() - t0);
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    late.push(Math.max(0, performance.now() - t0 - at));
    pending.push(action());
  }
  await Promise.all(pending);
  late.sort((x, y) => x - y);
  return { seconds: (performance.now() - t0) / 1000, changes: registry, sent, failed, failures, firstFailure, dropped, lateP99Ms: Math.round(late[Math.floor(late.length * 0.99)] ?? 0) };
}
