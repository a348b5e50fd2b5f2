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
import { openDataDir, type DataDir } from './data-dir.js';
import { createIssuerClient, isTransientIssuerError } from './issuer-client.js';
import { LOG_FIELDS, type Logger } from './log.js';
import { createAgentIdentity, type AgentIdentity } from './node-attestation.js';
import { backoffDelayMs } from './rotation-policy.js';
import { runRotator } from './rotator.js';
import { createSyncTrigger, runNotificationChannel } from './notifications.js';
import { abortableSleep, runTasks } from './run-tasks.js';
import { runBundleRefresher } from './federation/bundle-refresher.js';
import type { SpiffeTlsFetchOptions } from '../node/spiffe-bundle-fetch.js';

/** How often the agent reads its federation refresh tasks: 12 sync intervals, at most a minute. */
function federationPollMs(syncIntervalSeconds: number): number {
  return Math.min(60, Math.max(syncIntervalSeconds, 12 * syncIntervalSeconds)) * 1000;
}
import type { SdsDeps, SdsImpl } from './sds/handler.js';
import { createWorkloadApi } from './workload-api/handler.js';
import { createCallerRateLimiter } from './workload-api/rate-limit.js';
import { startWorkloadApiServer } from './workload-api/server.js';
import { trimMalloc } from './workload-api/peer.js';
import { runMemoryKeeper } from './memory.js';
import { createWorkloadAttestor } from './workload-api/workload-attestors.js';
import { openExeHashStore } from './workload-api/exe-hash-store.js';
import type { AgentTelemetry } from './telemetry/metrics.js';
import { agentVersion } from './telemetry/version.js';
import { startHealthListener, startMetricsListener, type HealthState, type Listener } from './telemetry/listeners.js';
import { trustDomainId } from '../shared/spiffe/id.js';
import { WispError } from '../shared/errors.js';

export interface RunAgentOptions {
  log: Logger;
  /** abort to shut down */
  signal: AbortSignal;
  clock?: Clock;
  random?: () => number;
  /** called with each HTTP listener's bound port once it listens (a port of 0 in the config picks one) */
  onListening?: (which: 'metrics' | 'health', port: number) => void;
}

/** Resolves after a clean shutdown; rejects with the failure that stopped the agent. */
export async function runAgent(config: AgentConfig, options: RunAgentOptions): Promise<void> {
  const { log, signal } = options;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const dataDir = await openDataDir(config.dataDir);
  // metrics on only when configured (prom-client is loaded only then); every component below gets `telemetry` or nothing (STYLE: wired once, here)
  const prometheus = config.telemetry?.prometheus;
  const telemetry: AgentTelemetry | undefined = prometheus
    ? (await import('./telemetry/metrics.js')).createAgentTelemetry({ version: agentVersion(), trustDomainId: trustDomainId(config.trustDomain), startedAt: clock(), clock })
    : undefined;
  const withTelemetry = telemetry ? { telemetry } : {};
  const holder: { identity?: AgentIdentity } = {};
  const client = createIssuerClient({
    serverUrl: config.serverUrl,
    timeoutMs: config.requestTimeoutSeconds * 1000,
    clock,
    credentials: () => holder.identity?.current(),
    ...withTelemetry,
  });
  const identity = createAgentIdentity({ client, dataDir, attestor: selectNodeAttestor(config), clock, log, ...withTelemetry });
  holder.identity = identity;
  const cache = new SvidCache({ trustDomain: config.trustDomain, clock, jwt: client, wit: client, log, random });

  log.info({ server_url: config.serverUrl, trust_domain: config.trustDomain, data_dir: config.dataDir }, 'agent starting');
  // executables hashed by an earlier run (same boot, same file state) are not read again (exe-hash-store.ts)
  const exeHashes = await openExeHashStore(config.dataDir, { log });
  const attest = await createWorkloadAttestor(config.workloadAttestors, exeHashes ? { knownHashes: exeHashes } : {}); // unix, and k8s when configured
  if (config.workloadAttestors?.k8s) log.info({ kubelet_url: config.workloadAttestors.k8s.kubeletUrl }, 'k8s workload attestor on');
  // one limiter per agent, shared by both APIs (SPIRE's buckets are per selector set, not per API)
  const limiter = createCallerRateLimiter(config.rateLimit ?? {}, { clock, log });
  if (limiter.active) log.info({ rate_limit: config.rateLimit }, 'Workload API rate limits on');
  const server = await startWorkloadApiServer({
    socketPath: config.socketPath,
    impl: createWorkloadApi({ attest, source: cache, clock, log, limiter }),
    ...(config.disableSdsApi ? {} : { sds: lazySds({ attest, source: cache, ...(config.sds ? { config: config.sds } : {}), log, limiter }) }),
    log,
    ...withTelemetry,
  });
  let serving = true;
  telemetry?.watch({ cacheSizes: () => cache.sizes(), rateLimitExceeded: () => limiter.exceeded() });
  const listeners: Listener[] = [];
  const closeListeners = async () => {
    for (const l of listeners.splice(0)) await l.close();
  };
  try {
    if (telemetry && prometheus) {
      const l = await listenOrExplain('telemetry.prometheus', prometheus.host, prometheus.port, () => startMetricsListener({ ...prometheus, metrics: () => telemetry.metrics(), contentType: telemetry.contentType, onError: (err) => log.error({ err }, 'metrics collection failed') }));
      listeners.push(l);
      log.info({ host: prometheus.host, port: l.port }, 'metrics listener on');
      options.onListening?.('metrics', l.port);
    }
    const hc = config.healthChecks;
    if (hc?.listenerEnabled) {
      const state = (): HealthState => healthState({ serving, svid: identity.current(), cache, now: clock() });
      const l = await listenOrExplain('healthChecks', hc.bindAddress, hc.bindPort, () => startHealthListener({ host: hc.bindAddress, port: hc.bindPort, livePath: hc.livePath, readyPath: hc.readyPath, state }));
      listeners.push(l);
      log.info({ host: hc.bindAddress, port: l.port, live_path: hc.livePath, ready_path: hc.readyPath }, 'health checks listener on');
      options.onListening?.('health', l.port);
    }
  } catch (e) {
    await closeListeners();
    await server.close();
    throw e;
  }

  await runTasks(
    {
      workloadApi: async (taskSignal) => {
        await new Promise<void>((resolve) => (taskSignal.aborted ? resolve() : taskSignal.addEventListener('abort', () => resolve(), { once: true })));
        serving = false;
        await server.close();
        await closeListeners();
        await exeHashes?.flush();
        log.info('Workload API closed, socket removed');
      },
      // freed memory back to the kernel after bursts, when idle (memory.ts)
      memory: (taskSignal) =>
        runMemoryKeeper({ trim: trimMalloc, activity: () => server.activity(), connections: () => server.connectionCount(), onPass: (p) => log.debug({ rss_before_mb: mb(p.rssBefore), rss_after_mb: mb(p.rssAfter), gc: p.gc, elapsed_ms: Math.round(p.ms * 10) / 10 }, 'memory returned') }, taskSignal),
      // https_spiffe relationships assigned to this agent (none: one cheap call per poll)
      federation: (taskSignal) =>
        runBundleRefresher(
          { client, fetchBundle: fetchBundleLazily, clock, log, sleep: abortableSleep, pollMs: federationPollMs(config.syncIntervalSeconds) },
          taskSignal,
        ),
      agent: async (taskSignal) => {
        // the first attestation that cannot reach the issuer loads the cache file, once (cacheBeforeAttesting)
        let early: Promise<boolean> | undefined;
        const onUnreachable = async () => {
          early ??= cacheBeforeAttesting({ identity, cache, dataDir, trustDomain: config.trustDomain, log });
          await early;
        };
        const bundle = await startIdentity(identity, { log, random, signal: taskSignal, onUnreachable });
        const servedWhileAttesting = (await early) ?? false;
        if (taskSignal.aborted) return;
        if (bundle) await cache.setBundle(bundle);
        const agentId = identity.current()?.spiffeId ?? '';
        // attested anew (maybe as another agent): the first sync fetches every entry, which replaces what was loaded
        if (servedWhileAttesting) cache.resetRevision();
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
          if (!servedWhileAttesting) await loadSvidCacheFile({ dataDir, cache, trustDomain: config.trustDomain, agentId, log });
          // the poll's sleep, cut short by the issuer's notices (notifications.ts)
          const trigger = createSyncTrigger(clock);
          await Promise.all([
            runRotator({ identity, cache, client, dataDir, clock, random, sleep: trigger.sleep, intervalMs: config.syncIntervalSeconds * 1000, log, ...withTelemetry }, taskSignal),
            config.notifications === false ? undefined : runNotificationChannel({ serverUrl: config.serverUrl, client, onNotice: trigger.fire, log, random, sleep: abortableSleep }, taskSignal),
          ]);
        } finally {
          unwatch();
          await persister.flush();
        }
      },
    },
    signal,
  );
}

/** node:https and the SPIFFE-TLS check are loaded with the first https_spiffe relationship, not at start (most agents have none). */
async function fetchBundleLazily(options: SpiffeTlsFetchOptions): Promise<string> {
  return (await import('../node/spiffe-bundle-fetch.js')).fetchBundleOverSpiffeTls(options);
}
const mb = (bytes: number) => Math.round(bytes / 104_857.6) / 10;

/** SDS's handler (and with it Envoy's protobuf descriptors) loads with the first SDS call, not at start (most agents serve no Envoy). */
function lazySds(deps: SdsDeps): SdsImpl {
  let impl: Promise<SdsImpl> | undefined;
  const load = () => (impl ??= import('./sds/handler.js').then((m) => m.createSds(deps)));
  return {
    fetchSecrets: async (request, ctx) => (await load()).fetchSecrets(request, ctx),
    async *streamSecrets(requests, ctx) {
      yield* (await load()).streamSecrets(requests, ctx);
    },
  };
}

/** A listener that cannot bind (port taken, address not local) is a one-line config error naming the key. */
async function listenOrExplain(key: string, host: string, port: number, start: () => Promise<Listener>): Promise<Listener> {
  try {
    return await start();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    throw new WispError('ERR_CONFIG_INVALID', `${key}: cannot listen on ${host}:${port} (${typeof code === 'string' ? code : (e as Error).message})`, { cause: e });
  }
}

/**
 * SPIRE's health semantics: ready once the agent holds a valid SVID and a bundle and serves the Workload
 * API (its cache has synced or was loaded); live while it can still serve, that is until it stops, or its
 * own SVID has expired (an unreachable issuer alone does not make it unlive: cached SVIDs are served).
 * Before the first attestation the agent is live (starting) but not ready.
 */
function healthState(o: { serving: boolean; svid: { notAfter: number } | undefined; cache: Pick<SvidCache, 'isReady' | 'bundleJson'>; now: number }): HealthState {
  const svidValid = o.svid !== undefined && o.now < o.svid.notAfter;
  const bundle = o.cache.bundleJson() !== undefined;
  const cacheReady = o.cache.isReady();
  const checks = { serving: o.serving, agent_svid_valid: svidValid, bundle, cache_ready: cacheReady };
  return { live: o.serving && (o.svid === undefined || svidValid), ready: o.serving && svidValid && bundle && cacheReady, checks };
}

/**
 * The stored agent SVID expired and the issuer cannot be reached to attest again: loads the workload SVID
 * cache written under that agent ID, so the SVIDs still valid are served meanwhile, as a running agent
 * serves them through an outage (rotator.ts). True when it loaded; a failure only loses the head start.
 */
async function cacheBeforeAttesting(o: { identity: AgentIdentity; cache: SvidCache; dataDir: DataDir; trustDomain: string; log: Logger }): Promise<boolean> {
  const stored = o.identity.stored();
  if (!stored) return false;
  try {
    if (stored.bundle) await o.cache.setBundle(stored.bundle);
    const loaded = await loadSvidCacheFile({ dataDir: o.dataDir, cache: o.cache, trustDomain: o.trustDomain, agentId: stored.spiffeId, log: o.log });
    if (!loaded) return false;
    o.log.warn({ [LOG_FIELDS.AGENT_ID]: stored.spiffeId, [LOG_FIELDS.COUNT]: loaded.served }, 'stored agent SVID expired and the issuer is unreachable: serving the cached X509-SVIDs still valid until the agent attests again');
    return true;
  } catch (e) {
    o.log.warn({ err: e }, 'cannot serve the SVID cache before attesting; waiting for the issuer');
    return false;
  }
}

/** Attests (or loads the stored identity), retrying while the issuer is unreachable; `onUnreachable` after each such failure. */
async function startIdentity(
  identity: AgentIdentity,
  o: { log: Logger; random: () => number; signal: AbortSignal; onUnreachable: () => Promise<void> },
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
      await o.onUnreachable();
      await abortableSleep(delay, o.signal);
      if (o.signal.aborted) return undefined;
    }
  }
}
