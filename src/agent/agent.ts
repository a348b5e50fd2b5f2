/**
 * Runs the agent daemon from a parsed `AgentConfig`: data dir, issuer client, node attestation, cache,
 * the sync/rotation loop and the Workload API server on the Unix socket, all under one AbortController
 * (runTasks): the first failure stops the rest, and aborting `signal` (SIGINT/SIGTERM) shuts down cleanly,
 * closing the server and removing the socket. The workload SVID cache is loaded from the data dir right
 * after the agent identity, before the first sync (so cached SVIDs are served while the issuer is down),
 * written back after changes, and flushed on shutdown.
 * @module
 */
import type { SpiffeBundleJson } from '../shared/agent-api.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { selectNodeAttestor } from './attestor/node-attestor.js';
import { createCachePersister, encodeCacheFileParts, loadSvidCacheFile } from './cache/cache-file.js';
import { SvidCache } from './cache/svid-cache.js';
import type { AgentConfig } from './config.js';
import { openDataDir } from './data-dir.js';
import { createIssuerClient, isTransientIssuerError } from './issuer-client.js';
import { LOG_FIELDS, type Logger } from './log.js';
import { createAgentIdentity, type AgentIdentity } from './node-attestation.js';
import { backoffDelayMs } from './rotation-policy.js';
import { runRotator } from './rotator.js';
import { abortableSleep, runTasks } from './run-tasks.js';
import { runBundleRefresher } from './federation/bundle-refresher.js';
import { fetchBundleOverSpiffeTls } from '../node/spiffe-bundle-fetch.js';

/** How often the agent reads its federation refresh tasks: 12 sync intervals, at most a minute. */
function federationPollMs(syncIntervalSeconds: number): number {
  return Math.min(60, Math.max(syncIntervalSeconds, 12 * syncIntervalSeconds)) * 1000;
}
import { createSds } from './sds/handler.js';
import { createWorkloadApi } from './workload-api/handler.js';
import { createCallerRateLimiter } from './workload-api/rate-limit.js';
import { startWorkloadApiServer } from './workload-api/server.js';
import { createWorkloadAttestor } from './workload-api/workload-attestors.js';

export interface RunAgentOptions {
  log: Logger;
  /** abort to shut down */
  signal: AbortSignal;
  clock?: Clock;
  random?: () => number;
}

/** Resolves after a clean shutdown; rejects with the failure that stopped the agent. */
export async function runAgent(config: AgentConfig, options: RunAgentOptions): Promise<void> {
  const { log, signal } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const dataDir = await openDataDir(config.dataDir);
  const holder: { identity?: AgentIdentity } = {};
  const client = createIssuerClient({
    serverUrl: config.serverUrl,
    timeoutMs: config.requestTimeoutSeconds * 1000,
    clock,
    credentials: () => holder.identity?.current(),
  });
  const identity = createAgentIdentity({ client, dataDir, attestor: selectNodeAttestor(config), clock, log });
  holder.identity = identity;
  const cache = new SvidCache({ trustDomain: config.trustDomain, clock, jwt: client, log, random });

  log.info({ server_url: config.serverUrl, trust_domain: config.trustDomain, data_dir: config.dataDir }, 'agent starting');
  const attest = await createWorkloadAttestor(config.workloadAttestors); // unix, and k8s when configured
  if (config.workloadAttestors?.k8s) log.info({ kubelet_url: config.workloadAttestors.k8s.kubeletUrl }, 'k8s workload attestor on');
  // one limiter per agent, shared by both APIs (SPIRE's buckets are per selector set, not per API)
  const limiter = createCallerRateLimiter(config.rateLimit ?? {}, { clock, log });
  if (limiter.active) log.info({ rate_limit: config.rateLimit }, 'Workload API rate limits on');
  const server = await startWorkloadApiServer({
    socketPath: config.socketPath,
    impl: createWorkloadApi({ attest, source: cache, clock, log, limiter }),
    ...(config.disableSdsApi ? {} : { sds: createSds({ attest, source: cache, ...(config.sds ? { config: config.sds } : {}), log, limiter }) }),
    log,
  });

  await runTasks(
    {
      workloadApi: async (taskSignal) => {
        await new Promise<void>((resolve) => (taskSignal.aborted ? resolve() : taskSignal.addEventListener('abort', () => resolve(), { once: true })));
        await server.close();
        log.info('Workload API closed, socket removed');
      },
      // https_spiffe relationships assigned to this agent (none: one cheap call per poll)
      federation: (taskSignal) =>
        runBundleRefresher(
          { client, fetchBundle: fetchBundleOverSpiffeTls, clock, log, sleep: abortableSleep, pollMs: federationPollMs(config.syncIntervalSeconds) },
          taskSignal,
        ),
      agent: async (taskSignal) => {
        const bundle = await startIdentity(identity, { log, random, signal: taskSignal });
        if (taskSignal.aborted) return;
        if (bundle) await cache.setBundle(bundle);
        const agentId = identity.current()?.spiffeId ?? '';
        const persister = createCachePersister({
          write: (text) => dataDir.writeSvidCache(text),
          encode: () => {
            const owner = identity.current()?.spiffeId;
            return owner ? encodeCacheFileParts(cache.snapshot(), { trustDomain: config.trustDomain, agentId: owner }, clock()) : undefined;
          },
          log,
        });
        const unwatch = cache.onStateChange(() => persister.schedule());
        try {
          await loadSvidCacheFile({ dataDir, cache, trustDomain: config.trustDomain, agentId, log });
          await runRotator(
            { identity, cache, client, dataDir, clock, random, sleep: abortableSleep, intervalMs: config.syncIntervalSeconds * 1000, log },
            taskSignal,
          );
        } finally {
          unwatch();
          await persister.flush();
        }
      },
    },
    signal,
  );
}

/** Attests (or loads the stored identity), retrying while the issuer is unreachable. */
async function startIdentity(
  identity: AgentIdentity,
  o: { log: Logger; random: () => number; signal: AbortSignal },
): Promise<SpiffeBundleJson | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { svid, bundle } = await identity.start();
      o.log.info({ [LOG_FIELDS.AGENT_ID]: svid.spiffeId }, 'agent identity ready');
      return bundle;
    } catch (e) {
      if (!isTransientIssuerError(e)) throw e;
      const delay = backoffDelayMs(attempt, o.random());
      o.log.warn({ [LOG_FIELDS.RETRY_IN_MS]: delay, attempts: attempt }, `cannot reach the issuer to attest: ${(e as Error).message}`);
      await abortableSleep(delay, o.signal);
      if (o.signal.aborted) return undefined;
    }
  }
}
