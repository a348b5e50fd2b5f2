/**
 * The agent's main loop: every `intervalMs`, renew the agent's own SVID if due, sync entries and bundle,
 * and issue or renew workload X509-SVIDs. While the issuer is unreachable it keeps serving what the cache
 * holds until each SVID expires, and retries with capped exponential backoff plus jitter. When the
 * issuer stops accepting the agent (401) it re-attests; failures no retry can fix end the loop, which
 * stops the agent (runTasks).
 * @module
 */
import type { Clock } from '../shared/clock.js';
import { WispError } from '../shared/errors.js';
import type { SvidCache } from './cache/svid-cache.js';
import { syncOnce, type SyncDeps } from './cache/sync.js';
import type { DataDir } from './data-dir.js';
import { isAgentUnknownError, isTransientIssuerError, type IssuerClient } from './issuer-client.js';
import { LOG_FIELDS, type Logger } from './log.js';
import type { AgentIdentity } from './node-attestation.js';
import { backoffDelayMs } from './rotation-policy.js';

export interface RotatorDeps {
  identity: AgentIdentity;
  cache: SvidCache;
  client: Pick<IssuerClient, 'sync' | 'signX509Svids'>;
  dataDir: Pick<DataDir, 'saveBundle'>;
  clock: Clock;
  /** waits `ms` or until `signal` aborts (tests pass one that advances their clock) */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  random: () => number;
  intervalMs: number;
  log: Logger;
  /** sync counters; absent: metrics off */
  telemetry?: SyncDeps['telemetry'];
}

/** Runs until `signal` aborts; rejects only on a failure retrying cannot fix. */
export async function runRotator(deps: RotatorDeps, signal: AbortSignal): Promise<void> {
  const { identity, cache, log } = deps;
  let failures = 0;
  while (!signal.aborted) {
    let delay = deps.intervalMs;
    try {
      await tick(deps);
      if (failures > 0) log.info({ attempts: failures }, 'issuer reachable again');
      failures = 0;
    } catch (caught) {
      let e = caught;
      if (isAgentUnknownError(e)) {
        log.warn({ [LOG_FIELDS.AGENT_ID]: identity.current()?.spiffeId, [LOG_FIELDS.ERROR_CODE]: (e as WispError).code }, 'issuer no longer accepts this agent SVID; re-attesting');
        try {
          await cache.setBundle(await identity.reattest('issuer rejected the agent SVID'));
          cache.resetRevision();
          continue;
        } catch (again) {
          e = again;
        }
      }
      if (!isTransientIssuerError(e)) throw e;
      failures++;
      delay = backoffDelayMs(failures, deps.random());
      if (cache.dropExpired(deps.clock())) cache.notify();
      log.warn(
        { [LOG_FIELDS.ERROR_CODE]: e instanceof WispError ? e.code : undefined, err: e instanceof WispError ? undefined : e, [LOG_FIELDS.RETRY_IN_MS]: delay, attempts: failures },
        `issuer call failed, serving cached SVIDs until they expire: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    await deps.sleep(delay, signal);
  }
}

async function tick(deps: RotatorDeps): Promise<void> {
  await deps.identity.renewIfDue();
  await syncOnce({
    client: deps.client,
    cache: deps.cache,
    clock: deps.clock,
    log: deps.log,
    onBundleChanged: (bundle) => deps.dataDir.saveBundle(bundle),
    ...(deps.telemetry ? { telemetry: deps.telemetry } : {}),
  });
  // a tainted authority signed the agent's own SVID: replace it in this round, not at half-life
  const own = deps.identity.current();
  if (own && deps.cache.signedByTaintedAuthority(own.certChain)) await deps.identity.renewIfDue(true);
}
