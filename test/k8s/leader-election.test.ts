// The controller's leader election against the testbed's real API server (coordination.k8s.io/v1 Leases,
// resourceVersion conflicts): one leader among racing candidates, never two at once, a cut-off leader
// stops before anyone takes over, a released Lease is taken at once, a Lease taken under the leader ends
// its term at the next renewal.
import { randomBytes } from 'node:crypto';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../scripts/local-stack.js';
import { createLeaseStore, leaseHolder } from '../../src/controller/kube-client.js';
import { createLeaderElector, type LeaderElector, type LeaseStore } from '../../src/controller/leader-election.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';

const tb = testbed();
const NS = `wisp-le-${randomBytes(3).toString('hex')}`;
const log = pino({ level: 'silent' });
let env: TestbedEnv;
let kc: KubeConfig;

/** A store whose calls can be cut, as a network partition between one replica and the API server. */
function cuttable(store: LeaseStore): LeaseStore & { cut: boolean } {
  const s = {
    cut: false,
    get: () => (s.cut ? Promise.reject(new Error('connection refused')) : store.get()),
    create: (r: Parameters<LeaseStore['create']>[0]) => (s.cut ? Promise.reject(new Error('connection refused')) : store.create(r)),
    update: (r: Parameters<LeaseStore['update']>[0], v: string) => (s.cut ? Promise.reject(new Error('connection refused')) : store.update(r, v)),
  };
  return s;
}

interface Candidate {
  elector: LeaderElector;
  store: ReturnType<typeof cuttable>;
  stop: AbortController;
  done: Promise<void>;
}

function candidates(lease: string, n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) => {
    const store = cuttable(createLeaseStore(kc, NS, lease));
    const elector = createLeaderElector({ store, identity: `${lease}-${i}`, leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5, log });
    const stop = new AbortController();
    return { elector, store, stop, done: elector.run(stop.signal) };
  });
}

/** Samples who leads every 25 ms for `ms`; fails on any moment with two leaders. */
async function watchLeaders(cs: Candidate[], ms: number): Promise<string[]> {
  const seen: string[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const leading = cs.filter((c) => c.elector.isLeading()).map((c) => c.elector.identity);
    expect(leading.length).toBeLessThanOrEqual(1);
    if (leading[0] && seen.at(-1) !== leading[0]) seen.push(leading[0]);
    await new Promise((r) => setTimeout(r, 25));
  }
  return seen;
}

const stopAll = async (cs: Candidate[]) => {
  for (const c of cs) c.stop.abort();
  await Promise.all(cs.map((c) => c.done));
};

describe.skipIf(!tb.ready)(`leader election on a Lease${tb.ready ? '' : ` (skipped: ${tb.skipReason})`}`, () => {
  beforeAll(() => {
    if (!tb.ready) return;
    env = tb.env;
    kc = new KubeConfig();
    kc.loadFromFile(env.KUBECONFIG);
    kubectl(env, ['create', 'namespace', NS]);
  });
  afterAll(() => {
    if (tb.ready) kubectl(env, ['delete', 'namespace', NS, '--wait=false']);
  });

  it('three racing candidates: one leader, renewing, never two at once', async () => {
    const cs = candidates('race', 3);
    await waitFor('a leader', async () => (cs.some((c) => c.elector.isLeading()) ? true : undefined), 10_000, 25);
    const seen = await watchLeaders(cs, 4000);
    expect(seen).toHaveLength(1);
    expect(await leaseHolder(kc, NS, 'race')).toBe(seen[0]);
    const lease = JSON.parse(kubectl(env, ['get', 'lease', 'race', '-n', NS, '-o', 'json'])) as { spec: { leaseTransitions: number; leaseDurationSeconds: number } };
    expect(lease.spec).toMatchObject({ leaseTransitions: 0, leaseDurationSeconds: 3 });
    await stopAll(cs);
  });

  it('a leader cut off from the API server stops leading before another takes over', async () => {
    const cs = candidates('cut', 2);
    await waitFor('a leader', async () => (cs.some((c) => c.elector.isLeading()) ? true : undefined), 10_000, 25);
    const leader = cs.find((c) => c.elector.isLeading())!;
    const other = cs.find((c) => c !== leader)!;
    const cutAt = Date.now();
    leader.store.cut = true;
    const seen = await watchLeaders(cs, 6000);
    expect(seen.at(-1)).toBe(other.elector.identity);
    expect(leader.elector.isLeading()).toBe(false);
    // the old leader stopped within renewDeadline of its last renewal; the new one waited a whole leaseDuration
    expect(await leaseHolder(kc, NS, 'cut')).toBe(other.elector.identity);
    expect(Date.now() - cutAt).toBeGreaterThan(3000);
    leader.store.cut = false;
    await stopAll(cs);
  });

  it('a stopping leader releases the Lease and another takes it at once', async () => {
    const cs = candidates('release', 2);
    await waitFor('a leader', async () => (cs.some((c) => c.elector.isLeading()) ? true : undefined), 10_000, 25);
    const leader = cs.find((c) => c.elector.isLeading())!;
    const other = cs.find((c) => c !== leader)!;
    const stoppedAt = Date.now();
    leader.stop.abort();
    await leader.done;
    await waitFor('the other to lead', async () => (other.elector.isLeading() ? true : undefined), 5000, 25);
    expect(Date.now() - stoppedAt).toBeLessThan(3000); // sooner than the 3 s lease could expire
    await stopAll(cs);
  });

  it('a Lease taken from under the leader ends its term at the next renewal', async () => {
    const [c] = candidates('stolen', 1);
    await waitFor('it to lead', async () => (c!.elector.isLeading() ? true : undefined), 10_000, 25);
    kubectl(env, ['patch', 'lease', 'stolen', '-n', NS, '--type=merge', '-p', JSON.stringify({ spec: { holderIdentity: 'someone-else', renewTime: new Date().toISOString().replace('Z', '000Z') } })]);
    await waitFor('it to stop leading', async () => (c!.elector.isLeading() ? undefined : true), 1500, 25);
    await stopAll([c!]);
    expect(await leaseHolder(kc, NS, 'stolen')).toBe('someone-else');
  });
});
