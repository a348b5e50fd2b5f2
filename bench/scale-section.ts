/**
 * The scale section (issue 21), run by `npm run bench` (bench/run.ts) and alone by `npm run bench:scale`
 * (bench/scale.ts): the issuer at fleet scale, in workerd. 10,000 agents and 100,000 entries
 * in D1 (scale/seed.ts); the per-operation cost of each request a steady-state agent sends, measured at full
 * load through a meter in front of the bundled Worker (scale/meter-worker.ts: CA Durable Object calls, D1
 * statements with their rows read and written, D1 time by replaying the statements); the CA object's time per
 * call; a time-compressed run of real attested agents (scale/sim.ts), on one CA object and on SHARDS, compared
 * with what the model predicts for it; and the model (scale/model.ts) extrapolated to the fleet, with the fleet
 * size where one trust-domain DO saturates, each figure recorded (report.ts) beside its limit. `--quick`: a
 * smaller fleet and shorter runs (harness check). Never part of `npm test`.
 */
import 'reflect-metadata'; // before @peculiar/x509 loads (the issuer's agent-auth.ts, for its cache constant)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEntries, entry, QUICK } from './fleet.js';
import { record, results } from './report.js';
import { attestAgent, b64, makeCsr } from './stack.js';
import { randomUUID } from 'node:crypto';
import { median, pool, round } from './stats.js';
import { doCalls, startMeteredIssuer, type Counters, type MeteredIssuer, type StatementGroup } from './scale/meter.js';
import { replayMsPerOp, snapshotD1 } from './scale/sqlite-replay.js';
import { agentRates, DO_RPS_LIMIT, fleetLoad, saturatingFleet, SYNC_S, THREAD_MS_PER_S, X509_TTL_S, type Assumptions, type Op, type OpCost } from './scale/model.js';
import { PUBLISHED_AUTHORITIES_CACHE_MS } from '../src/worker/middleware/agent-auth.js';
import { seedFleet, ENTRIES_PER_AGENT, POOL_WORKLOADS, POOLS, type SeededAgent } from './scale/seed.js';
import { shardOf } from './scale/shard-map.js';
import { runSim } from './scale/sim.js';

const FLEET = 10_000;
const SEEDED_AGENTS = QUICK ? 2_000 : FLEET;
const REAL_AGENTS = QUICK ? 40 : 200;
const RENEW_AGENTS = QUICK ? 10 : 30;
const SHARDS = 4;
const OPS_PER_MEASURE = QUICK ? 200 : 1000;
const IN_FLIGHT = 16;
const SIM_SECONDS = QUICK ? 15 : 60;
/** requests the run's driver keeps waiting at most (past it the issuer has fallen behind: requests are dropped, counted) */
const SIM_IN_FLIGHT = 256;
/** the run's load: this share of the issuer's measured unchanged-sync rate (the driver signs every proof on the same cores) */
const SIM_LOAD = 0.25;
const ASSUMPTIONS: Assumptions = { svidsPerAgent: ENTRIES_PER_AGENT + POOL_WORKLOADS, jwtPairsPerAgent: 1, changesPerSecond: 1 / 60, agentsPerChange: 1 };
const ZERO: OpCost = { doCalls: 0, doMs: 0, d1Statements: 0, d1RowsRead: 0, d1RowsWritten: 0, d1Ms: 0 };
const DO_OP_OF: Record<string, string> = { getPublishedKeys: 'keys', signX509Svids: 'x509', signJwtSvids: 'jwt', getCrls: 'crls', status: 'status' };

interface Probe {
  op: Op;
  agents: SeededAgent[];
  /** the request of agent `a`'s i-th operation */
  request(a: SeededAgent, i: number): { path: string; body: unknown; method?: 'POST' | 'GET' };
}

/** One operation's measured cost, and the D1 statements of its first CAPTURED_OPS operations (replayed later). */
interface Measured extends OpCost {
  perSecond: number;
  /** CA calls per operation by method */
  doCallsByMethod: Record<string, number>;
  groups: StatementGroup[];
  groupOps: number;
}
const CAPTURED_OPS = 20;

async function measureOp(issuer: MeteredIssuer, probe: Probe, n: number, doMsPerCall: Record<string, number>): Promise<Measured> {
  const reqs = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const a = probe.agents[i % probe.agents.length]!;
      const r = probe.request(a, Math.floor(i / probe.agents.length));
      return a.agent.prepare(r.path, r.body, r.method);
    }),
  );
  await issuer.reset();
  await issuer.capture(true);
  const t0 = performance.now();
  await pool(n, IN_FLIGHT, async (i) => {
    const res = await reqs[i]!();
    if (!res.ok) throw new Error(`${probe.op}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  });
  const elapsed = performance.now() - t0;
  const c = await issuer.counters();
  const captured = await issuer.captured();
  await issuer.capture(false);
  // the statement groups of about CAPTURED_OPS operations (operations interleave, so by share)
  const groupOps = Math.min(n, CAPTURED_OPS);
  const groups = captured.slice(0, Math.max(1, Math.round((captured.length * groupOps) / n)));
  const doCallsByMethod: Record<string, number> = {};
  for (const byMethod of Object.values(c.do)) for (const [m, v] of Object.entries(byMethod)) doCallsByMethod[m] = (doCallsByMethod[m] ?? 0) + v.calls / n;
  return { ...costOf(c, n, doMsPerCall), perSecond: n / (elapsed / 1000), doCallsByMethod, groups, groupOps };
}

function costOf(c: Counters, n: number, doMsPerCall: Record<string, number>): OpCost {
  let doMs = 0;
  for (const byMethod of Object.values(c.do)) for (const [m, v] of Object.entries(byMethod)) if (m !== 'recordTelemetry') doMs += v.calls * (doMsPerCall[DO_OP_OF[m] ?? 'status'] ?? 0);
  return {
    doCalls: (doCalls(c) - doCalls(c, 'recordTelemetry')) / n,
    doMs: doMs / n,
    d1Statements: c.d1.statements / n,
    d1RowsRead: c.d1.rowsRead / n,
    d1RowsWritten: c.d1.rowsWritten / n,
    d1Ms: 0,
  };
}

/** What the section measured, for bench/scale.ts's own results file. */
export interface ScaleRun {
  assumptions: Assumptions;
  costs: Record<Op, OpCost>;
}

/**
 * Measures the issuer at fleet scale on a metered issuer of its own (its own workerd and D1, in a temporary
 * directory), records every figure with report.ts, and returns the per-operation costs.
 */
export async function benchScale(): Promise<ScaleRun> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'wisp-scale-'));
  mkdirSync(join(dir, 'run'), { recursive: true });
  console.log(`\n== Fleet scale${QUICK ? ' (--quick: a reduced fleet)' : ''}, ${dir}`);
  const costs: Record<Op, OpCost> = { sync_unchanged: ZERO, sync_changed: ZERO, x509_batch: ZERO, jwt_batch: ZERO, renew: ZERO, federation_tasks: ZERO, push: ZERO };
  const measured: Partial<Record<Op, Measured>> = {};
  const rates = agentRates(ASSUMPTIONS, FLEET);
  let busiestShare: number;
  let doMsPerCall: Record<string, number>;
  try {
    const issuer = await startMeteredIssuer(dir);
    try {
      doMsPerCall = await measureDoCalls(issuer);
      const { real, sharded } = await measureOps(issuer, measured, costs, doMsPerCall);
      busiestShare = await validate(issuer, real, sharded, costs, rates);
    } finally {
      await issuer.stop();
    }
    console.log('\n== D1 time per operation: its statements replayed on the run\'s database (SQLite, no durable commit)');
    const snapshot = join(dir, 'replay.sqlite');
    snapshotD1(join(dir, 'state'), snapshot);
    for (const op of Object.keys(measured) as Op[]) {
      const m = measured[op]!;
      costs[op] = { ...costs[op], d1Ms: replayMsPerOp(snapshot, m.groups, m.groupOps, QUICK ? 20 : 50) };
      record(`scale_d1_ms_per_${op}`, round(costs[op].d1Ms, 4));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  costs.push = costs.sync_changed;
  extrapolate(rates, costs, doMsPerCall, busiestShare);
  record('scale_section_seconds', Math.round((Date.now() - started) / 1000), { limit: QUICK ? 'reduced fleet' : `${FLEET} agents modeled, ${SEEDED_AGENTS} in D1` });
  return { assumptions: ASSUMPTIONS, costs };
}

/** the CA object's time per call of each method the agent API makes, ms */
async function measureDoCalls(issuer: MeteredIssuer): Promise<Record<string, number>> {
  console.log('\n== The CA Durable Object: time per call (n sequential calls in one request, minus none)');
  const doMsPerCall: Record<string, number> = {};
  for (const op of ['keys', 'x509', 'jwt', 'crls']) {
    await issuer.doCalls(op, 20);
    const n = op === 'keys' || op === 'crls' ? 2000 : 500;
    const samples = [];
    for (let r = 0; r < 3; r++) samples.push(((await issuer.doCalls(op, n)) - (await issuer.doCalls(op, 0))) / n);
    doMsPerCall[op] = Math.max(0.001, median(samples));
    record(`scale_do_ms_per_call_${op}`, round(doMsPerCall[op]!, 3), { limit: `${Math.round(1000 / doMsPerCall[op]!)} calls/s on one object's thread` });
  }
  return doMsPerCall;
}

/** seeds the fleet and measures each operation's cost at full load; returns the agents of the validation runs */
async function measureOps(issuer: MeteredIssuer, measured: Partial<Record<Op, Measured>>, costs: Record<Op, OpCost>, doMsPerCall: Record<string, number>) {
  console.log(`\n== Fleet: ${SEEDED_AGENTS} agents in D1 (${REAL_AGENTS + RENEW_AGENTS} attested for real), ${ENTRIES_PER_AGENT} entries each, ${POOLS} node aliases`);
  const fleet = await seedFleet(issuer, { agents: SEEDED_AGENTS, real: REAL_AGENTS + RENEW_AGENTS, log: (s) => console.log(s) });
  const real = fleet.real.slice(0, REAL_AGENTS);
  const renewers = fleet.real.slice(REAL_AGENTS);
  record('scale_agents_in_d1', fleet.agents);
  record('scale_entries_in_d1', fleet.entries);

  console.log(`\n== Per-operation cost at full load (${OPS_PER_MEASURE} requests, ${IN_FLIGHT} in flight)`);
  const state = new Map<SeededAgent, { revision: string; bundleSequence?: number }>();
  await pool(fleet.real.length, 8, async (i) => {
    const a = fleet.real[i]!;
    const s = await a.agent.call<{ revision: string; bundle?: { spiffe_sequence?: number } }>('/agent/v1/sync', {});
    state.set(a, { revision: s.revision, bundleSequence: s.bundle?.spiffe_sequence });
  });
  const csr = await makeCsr();
  const probes: Probe[] = [
    { op: 'sync_unchanged', agents: real, request: (a) => ({ path: '/agent/v1/sync', body: state.get(a) }) },
    // a revision from before a change: the entries are listed again (what every agent's poll does after any change)
    { op: 'sync_changed', agents: real, request: (a) => ({ path: '/agent/v1/sync', body: { ...state.get(a), revision: `x${state.get(a)!.revision}` } }) },
    { op: 'x509_batch', agents: real, request: (a, i) => ({ path: '/agent/v1/x509-svids', body: { requests: [{ entryId: a.entryIds[i % a.entryIds.length], csr: b64(csr.der) }] } }) },
    { op: 'jwt_batch', agents: real, request: (a, i) => ({ path: '/agent/v1/jwt-svids', body: { requests: [{ entryId: a.entryIds[i % a.entryIds.length], audience: ['scale'] }] } }) },
    { op: 'federation_tasks', agents: real, request: () => ({ path: '/agent/v1/federation/refresh-tasks', body: undefined, method: 'GET' }) },
    // each renewer renews once (a second renewal would retire the SVID the bench signs with)
    { op: 'renew', agents: renewers, request: () => ({ path: '/agent/v1/renew', body: { csr: b64(csr.der) } }) },
  ];
  for (const probe of probes) {
    const m = await measureOp(issuer, probe, probe.op === 'renew' ? renewers.length : OPS_PER_MEASURE, doMsPerCall);
    measured[probe.op] = m;
    costs[probe.op] = m;
    record(`scale_issuer_${probe.op}_per_s`, Math.round(m.perSecond), { limit: `DO calls ${round(m.doCalls, 3)}, D1 ${round(m.d1Statements, 2)} queries, ${round(m.d1RowsRead, 1)} rows read, ${round(m.d1RowsWritten, 1)} written per op` });
  }
  // the sync after a push is a changed sync; the push itself is one message on the notification object, not the CA's
  costs.push = costs.sync_changed;

  console.log(`\n== Agents on ${SHARDS} CA objects (the meter routes by hash(join token) mod ${SHARDS})`);
  await issuer.setShards(SHARDS);
  const agents = await pool(REAL_AGENTS, 8, () => attestAgent(issuer));
  const ids = await createEntries(issuer, agents.flatMap((a, i) => Array.from({ length: ENTRIES_PER_AGENT }, (_, k) => entry(`/sharded/${i}/workload/${k}`, a.agentId, `uid:${1000 + k}`))), 3);
  const sharded = agents.map((agent, i) => ({ agent, token: agent.agentId.split('/').pop()!, entryIds: ids.slice(i * ENTRIES_PER_AGENT, (i + 1) * ENTRIES_PER_AGENT) }));
  await issuer.setShards(1);
  return { real, sharded };
}

/** the time-compressed runs, on one CA object and on SHARDS; returns the busiest object's share of the sharded run */
async function validate(issuer: MeteredIssuer, real: SeededAgent[], sharded: SeededAgent[], costs: Record<Op, OpCost>, rates: Record<Op, number>): Promise<number> {
  const perAgent = (Object.keys(rates) as Op[]).filter((op) => op !== 'push').reduce((t, op) => t + rates[op], 0);
  const compression = Math.max(1, Math.floor((SIM_LOAD * (results.scale_issuer_sync_unchanged_per_s as number)) / (REAL_AGENTS * perAgent)));
  const simulate = async (agents: SeededAgent[], shards: number) => {
    await issuer.setShards(shards);
    const sim = await runSim(issuer, agents, { beforeStart: () => issuer.reset(), compression, seconds: SIM_SECONDS, changesPerSecond: ASSUMPTIONS.changesPerSecond, jwtPairsPerAgent: ASSUMPTIONS.jwtPairsPerAgent, maxInFlight: SIM_IN_FLIGHT, shards, shardOf: (a) => shardOf(a.token, shards) });
    const c = await issuer.counters();
    const equivalent = agents.length * compression;
    // the model at the change rate that happened (a few Poisson changes in a short run)
    const predicted = fleetLoad(agentRates({ ...ASSUMPTIONS, changesPerSecond: sim.changes / sim.seconds / compression }, equivalent), costs, equivalent);
    const agentDo = (m: Record<string, { calls: number }>) => Object.entries(m).filter(([k]) => k !== 'recordTelemetry').reduce((t, [, v]) => t + v.calls, 0);
    const measuredDo = (doCalls(c) - doCalls(c, 'recordTelemetry')) / sim.seconds;
    const perObject = Object.entries(c.do).map(([name, m]) => [name, agentDo(m) / sim.seconds] as const).filter(([, r]) => r > 0);
    console.log(`  ${equivalent} agent-equivalents for ${round(sim.seconds, 1)} s; ${sim.changes} admin changes; sent ${JSON.stringify(sim.sent)}, ${sim.failed} failed ${JSON.stringify(sim.failures)}${sim.firstFailure ? ` (first: ${sim.firstFailure})` : ''}, ${sim.dropped} not sent (${SIM_IN_FLIGHT} already waiting), late p99 ${sim.lateP99Ms} ms`);
    console.log(`    DO requests/s ${round(measuredDo, 1)} (model ${round(predicted.doRequestsPerSecond, 1)}); per object ${perObject.map(([n, r]) => `${n}: ${round(r, 1)}`).join(', ')}`);
    console.log(`    D1 queries/s ${round(c.d1.statements / sim.seconds, 1)} (model ${round(predicted.d1StatementsPerSecond, 1)}); rows read/s ${round(c.d1.rowsRead / sim.seconds)} (${round(predicted.d1RowsReadPerSecond)}), written/s ${round(c.d1.rowsWritten / sim.seconds)} (${round(predicted.d1RowsWrittenPerSecond)})`);
    return { sim, measuredDo, predicted, perObject, d1: c.d1.statements / sim.seconds };
  };
  console.log(`\n== Time-compressed run: ${REAL_AGENTS} agents, every period / ${compression}, one CA object`);
  const v1 = await simulate(real, 1);
  record('scale_sim_agent_equivalents', REAL_AGENTS * compression, { limit: `${REAL_AGENTS} attested agents, periods / ${compression}, ${SIM_SECONDS} s` });
  record('scale_sim_do_requests_per_s', round(v1.measuredDo, 1), { limit: `model: ${round(v1.predicted.doRequestsPerSecond, 1)}` });
  record('scale_sim_do_model_ratio', round(v1.measuredDo / v1.predicted.doRequestsPerSecond), { limit: 'measured / model' });
  record('scale_sim_d1_model_ratio', round(v1.d1 / v1.predicted.d1StatementsPerSecond), { limit: 'measured / model' });
  record('scale_sim_failed_requests', v1.sim.failed, { target: '0', met: v1.sim.failed === 0 });
  record('scale_sim_dropped_requests', v1.sim.dropped, { limit: 'not sent: the local issuer fell behind' });

  console.log(`\n== The same on ${SHARDS} CA objects`);
  const vN = await simulate(sharded, SHARDS);
  const share = Math.max(...vN.perObject.map(([, r]) => r)) / Math.max(1e-9, vN.measuredDo);
  record(`scale_sim_${SHARDS}_shards_do_requests_per_s`, round(vN.measuredDo, 1), { limit: `model: ${round(vN.predicted.doRequestsPerSecond, 1)}; busiest object ${round(share * 100, 1)} % (even: ${round(100 / SHARDS, 1)} %)` });
  record(`scale_sim_${SHARDS}_shards_failed_requests`, vN.sim.failed, { target: '0', met: vN.sim.failed === 0 });
  record(`scale_sim_${SHARDS}_shards_dropped_requests`, vN.sim.dropped, { limit: 'not sent: the local issuer fell behind' });
  // at fleet size the hash spreads agents more evenly than over the run's few: the busiest shard of FLEET join tokens
  const counts = new Array<number>(SHARDS).fill(0);
  for (let i = 0; i < FLEET; i++) counts[shardOf(randomUUID(), SHARDS)]!++;
  return Math.max(...counts) / FLEET;
}

/** the model at fleet size: load against the limits, and the fleet sizes where they are reached */
function extrapolate(rates: Record<Op, number>, costs: Record<Op, OpCost>, doMsPerCall: Record<string, number>, busiestShare: number): void {
  const one = fleetLoad(rates, costs, 1);
  const fleet = fleetLoad(rates, costs, FLEET);
  console.log(`\n== Steady state per agent (X509-SVID TTL ${X509_TTL_S} s, sync every ${SYNC_S} s, ${ASSUMPTIONS.svidsPerAgent} SVIDs, ${ASSUMPTIONS.jwtPairsPerAgent} JWT-SVID in use, ${round(ASSUMPTIONS.changesPerSecond * 60, 1)} admin change/min fleet-wide), extrapolated to ${FLEET} agents`);
  for (const op of Object.keys(rates) as Op[]) console.log(`  ${op}: ${round(rates[op], 5)}/s per agent`);
  record('scale_agent_requests_per_s', round(one.requestsPerSecond, 4));
  record('scale_agent_do_requests_per_s', round(one.doRequestsPerSecond, 4), { limit: `${DO_RPS_LIMIT}/s per object (soft), shared by the fleet` });
  record('scale_fleet_10k_requests_per_s', Math.round(fleet.requestsPerSecond));
  record('scale_fleet_10k_do_requests_per_s', Math.round(fleet.doRequestsPerSecond), { limit: `${DO_RPS_LIMIT}/s per object (soft)`, target: `≤ ${DO_RPS_LIMIT}`, met: fleet.doRequestsPerSecond <= DO_RPS_LIMIT });
  record('scale_fleet_10k_do_busy_ms_per_s', Math.round(fleet.doMsPerSecond), { limit: `${THREAD_MS_PER_S} ms/s (one object's thread)`, target: `≤ ${THREAD_MS_PER_S}`, met: fleet.doMsPerSecond <= THREAD_MS_PER_S });
  record('scale_fleet_10k_d1_queries_per_s', Math.round(fleet.d1StatementsPerSecond), { limit: 'one at a time: their time is scale_fleet_10k_d1_busy_ms_per_s' });
  record('scale_fleet_10k_d1_rows_read_per_s', Math.round(fleet.d1RowsReadPerSecond), { limit: `${round((fleet.d1RowsReadPerSecond * 86400 * 30) / 1e9, 1)} billion rows/month` });
  record('scale_fleet_10k_d1_rows_written_per_s', Math.round(fleet.d1RowsWrittenPerSecond), { limit: `${round((fleet.d1RowsWrittenPerSecond * 86400 * 30) / 1e9, 1)} billion rows/month` });
  record('scale_fleet_10k_d1_busy_ms_per_s', round(fleet.d1MsPerSecond, 1), { limit: `${THREAD_MS_PER_S} ms/s (D1 runs one query at a time)`, target: `≤ ${THREAD_MS_PER_S}`, met: fleet.d1MsPerSecond <= THREAD_MS_PER_S });
  record('scale_fleet_10k_notify_messages_per_s', round(FLEET * rates.push, 3), { limit: 'on the notification object, not the CA' });
  const satRequests = saturatingFleet(DO_RPS_LIMIT, one.doRequestsPerSecond);
  const satCpu = saturatingFleet(THREAD_MS_PER_S, one.doMsPerSecond);
  const satD1 = saturatingFleet(THREAD_MS_PER_S, one.d1MsPerSecond);
  record('scale_agents_at_do_request_limit', satRequests, { limit: `${DO_RPS_LIMIT} DO requests/s` });
  record('scale_agents_at_do_cpu', satCpu, { limit: 'DO thread full (local per-call time)' });
  record('scale_agents_at_d1_busy', satD1, { limit: 'D1 thread full (SQLite time, no commit)' });
  const first = Math.min(satRequests, satCpu);
  record('scale_agents_per_trust_domain_do', first, { limit: first === satRequests ? 'DO requests/s reach the limit first' : 'DO CPU saturates first' });
  // a fleet-wide push (a bundle change, an authority rotation): every agent syncs at once
  record('scale_fleet_10k_push_all_do_seconds', round((FLEET * costs.sync_changed.doCalls) / DO_RPS_LIMIT, 1), { limit: `s of one object at ${DO_RPS_LIMIT}/s: the least a fleet-wide push must be spread over` });
  // /sync and agent authentication read the published keys from the isolate's cache: a cost per isolate, not per agent
  const keysPerIsolate = 1000 / PUBLISHED_AUTHORITIES_CACHE_MS;
  record('scale_do_keys_reads_per_s_per_isolate', round(keysPerIsolate, 2), {
    limit: `${Math.round(DO_RPS_LIMIT / keysPerIsolate)} isolates at ${DO_RPS_LIMIT}/s; ${round((doMsPerCall.keys ?? 0) * keysPerIsolate, 3)} ms/s of the object each`,
  });
  const perShard = fleetLoad(rates, costs, FLEET, 1 / busiestShare);
  record(`scale_busiest_shard_share_${SHARDS}_shards`, round(busiestShare, 4), { limit: `hash of ${FLEET} join tokens (even: ${round(1 / SHARDS, 4)})` });
  record(`scale_fleet_10k_do_requests_per_s_${SHARDS}_shards`, Math.round(perShard.doRequestsPerSecond), { limit: 'busiest object', target: `≤ ${DO_RPS_LIMIT}`, met: perShard.doRequestsPerSecond <= DO_RPS_LIMIT });
  record(`scale_agents_at_do_request_limit_${SHARDS}_shards`, Math.floor(satRequests / busiestShare), { limit: `the busiest of ${SHARDS} objects at ${DO_RPS_LIMIT}/s` });
}

