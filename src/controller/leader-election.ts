/**
 * Leader election on a coordination.k8s.io/v1 Lease, client-go's algorithm (client-node 1.x has none):
 * a candidate takes the Lease when it is absent, released (no holder) or not renewed for
 * `leaseDurationSeconds` as observed on the candidate's own clock (never the holder's: no clock skew); the
 * leader renews every `retryPeriod`; every write is a replace carrying the resourceVersion read, so of two
 * candidates racing only one wins (the other gets 409 Conflict). A leader that has not renewed for
 * `renewDeadline` (< leaseDuration) stops leading at once, before anyone else may take over, so two replicas
 * never both write. `isLeading()` is that test, made before each write.
 * @module
 */
import type { Logger } from 'pino';

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime?: Date;
  renewTime?: Date;
  leaseTransitions: number;
}

/** The Lease object as the election needs it; `create`/`update` answer false on a conflict (409). */
export interface LeaseStore {
  get(): Promise<{ record: LeaseRecord; resourceVersion: string } | undefined>;
  create(record: LeaseRecord): Promise<boolean>;
  update(record: LeaseRecord, resourceVersion: string): Promise<boolean>;
}

export interface LeaderElectionOptions {
  store: LeaseStore;
  identity: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
  log: Logger;
  /** milliseconds; tests may pass their own */
  now?: () => number;
  /** leadership starts: `signal` aborts when it ends */
  onStartedLeading?: (signal: AbortSignal) => void;
  onStoppedLeading?: () => void;
  onNewLeader?: (identity: string) => void;
}

export interface LeaderElector {
  readonly identity: string;
  /** true while this replica holds the Lease and renewed it less than renewDeadline ago */
  isLeading(): boolean;
  /** campaigns, leads, and campaigns again after losing the Lease, until `signal` aborts; then releases it */
  run(signal: AbortSignal): Promise<void>;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

export function createLeaderElector(o: LeaderElectionOptions): LeaderElector {
  const now = o.now ?? Date.now;
  const renewDeadlineMs = o.renewDeadlineSeconds * 1000;
  const retryMs = o.retryPeriodSeconds * 1000;
  let lastRenewAt: number | undefined;
  let observed: { key: string; at: number; holder: string } | undefined;
  let reportedLeader: string | undefined;

  const leading = () => lastRenewAt !== undefined && now() - lastRenewAt < renewDeadlineMs;

  /** One attempt; true when we hold the Lease afterwards. */
  async function tryAcquireOrRenew(): Promise<boolean> {
    const t = new Date(now());
    const mine: LeaseRecord = { holderIdentity: o.identity, leaseDurationSeconds: o.leaseDurationSeconds, acquireTime: t, renewTime: t, leaseTransitions: 0 };
    const current = await o.store.get();
    if (!current) {
      if (!(await o.store.create(mine))) return false;
      observed = { key: `created:${t.getTime()}`, at: now(), holder: o.identity };
      return true;
    }
    const r = current.record;
    // the record as seen: a change (any renewal) restarts the expiry countdown on our clock
    const key = `${r.holderIdentity}|${r.renewTime?.getTime() ?? ''}|${current.resourceVersion}`;
    if (observed?.key !== key) observed = { key, at: now(), holder: r.holderIdentity };
    if (r.holderIdentity !== reportedLeader && r.holderIdentity !== '') {
      reportedLeader = r.holderIdentity;
      o.onNewLeader?.(r.holderIdentity);
    }
    const heldByOther = r.holderIdentity !== '' && r.holderIdentity !== o.identity;
    // someone else holds it (the Lease was deleted or edited under us): our term ends now, not at the deadline
    if (heldByOther) lastRenewAt = undefined;
    if (heldByOther && observed.at + r.leaseDurationSeconds * 1000 > now()) return false;
    const next: LeaseRecord =
      r.holderIdentity === o.identity
        ? { ...mine, acquireTime: r.acquireTime ?? t, leaseTransitions: r.leaseTransitions }
        : { ...mine, leaseTransitions: r.leaseTransitions + 1 };
    if (!(await o.store.update(next, current.resourceVersion))) return false;
    return true;
  }

  async function attempt(): Promise<boolean> {
    try {
      return await tryAcquireOrRenew();
    } catch (err) {
      o.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'leader election: cannot read or write the Lease');
      return false;
    }
  }

  async function release(): Promise<void> {
    try {
      const current = await o.store.get();
      if (current?.record.holderIdentity !== o.identity) return;
      const t = new Date(now());
      await o.store.update({ ...current.record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: t }, current.resourceVersion);
      o.log.info('leader election: released the Lease');
    } catch (err) {
      o.log.warn({ error: err instanceof Error ? err.message : String(err) }, 'leader election: cannot release the Lease');
    }
  }

  return {
    identity: o.identity,
    isLeading: leading,
    async run(signal) {
      while (!signal.aborted) {
        // candidate
        while (!signal.aborted) {
          const before = now();
          if (await attempt()) {
            lastRenewAt = before;
            break;
          }
          await sleep(retryMs, signal);
        }
        if (signal.aborted) break;
        o.log.info({ identity: o.identity }, 'leader election: became the leader');
        reportedLeader = o.identity;
        const term = new AbortController();
        const onAbort = () => term.abort();
        signal.addEventListener('abort', onAbort, { once: true });
        // the term also ends the moment renewDeadline passes without a renewal, even while a call hangs
        const watchdog = setInterval(() => {
          if (!leading()) term.abort();
        }, Math.min(retryMs, 250));
        o.onStartedLeading?.(term.signal);
        while (!term.signal.aborted) {
          await sleep(retryMs, term.signal);
          if (term.signal.aborted) break;
          const before = now();
          if ((await attempt()) && leading()) lastRenewAt = before;
          else if (!leading()) term.abort();
        }
        clearInterval(watchdog);
        signal.removeEventListener('abort', onAbort);
        lastRenewAt = undefined;
        o.onStoppedLeading?.();
        if (signal.aborted) {
          await release();
          break;
        }
        o.log.warn({ identity: o.identity }, 'leader election: lost the Lease; stopped writing');
      }
    },
  };
}
