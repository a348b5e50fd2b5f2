/**
 * wisp-controller-manager: spire-controller-manager's resources (ClusterSPIFFEID, ClusterStaticEntry,
 * ClusterFederatedTrustDomain) reconciled into Wisp's registration entries and federation relationships
 * through the issuer's admin API. Wiring: flags → config file (config.ts) → logger → kubeconfig, admin
 * client (registry.ts) → leader election on a Lease (leader-election.ts) → informers (informers.ts) → the
 * coalescing trigger (trigger.ts) running the reconcilers (reconciler.ts, federation-reconciler.ts) while
 * this replica leads; SIGTERM stops the loop and releases the Lease.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Command, CommanderError } from 'commander';
import { pino, type Logger } from 'pino';
import { WispError } from '../shared/errors.js';
import { podNamespace, readControllerConfig, type ControllerConfig } from './config.js';
import { reconcileFederation } from './federation-reconciler.js';
import { startInformers, watchedKinds } from './informers.js';
import { createLeaseStore, createProblemEvents, createStatusWriter, loadKubeConfig } from './kube-client.js';
import { createLeaderElector } from './leader-election.js';
import { reconcileEntries } from './reconciler.js';
import { createControllerAdminClient, createRegistry } from './registry.js';
import { createTrigger } from './trigger.js';
import { stopOnSignals } from '../node/stop-signals.js';

/** Changes within this long become one reconcile. */
const COALESCE_MS = 250;

export interface ControllerFlags {
  config: string;
  kubeconfig?: string;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Runs the controller until `signal` aborts. */
export async function runController(config: ControllerConfig, flags: ControllerFlags, log: Logger, signal: AbortSignal, env: Readonly<Record<string, string | undefined>>): Promise<void> {
  const kc = loadKubeConfig(flags.kubeconfig, env);
  const registry = createRegistry(createControllerAdminClient(config.serverUrl, config.credential, config.timeoutSeconds));
  const writer = createStatusWriter(kc);
  const le = config.leaderElection;
  const identity = `${hostname()}_${randomUUID()}`;
  const problems = createProblemEvents(kc, identity, log);
  const elector = le.enabled
    ? createLeaderElector({
        store: createLeaseStore(kc, le.leaseNamespace, le.leaseName),
        identity,
        leaseDurationSeconds: le.leaseDurationSeconds,
        renewDeadlineSeconds: le.renewDeadlineSeconds,
        retryPeriodSeconds: le.retryPeriodSeconds,
        log,
        onStartedLeading: () => trigger.notify(),
        onNewLeader: (holder) => {
          if (holder !== identity) log.info({ leader: holder }, 'not leading: another replica holds the Lease');
        },
      })
    : undefined;
  const isLeading = () => elector?.isLeading() ?? true;
  let synced = false;
  const reconcile = async () => {
    if (!synced || !isLeading()) return;
    const state = informers.snapshot();
    const opts = config;
    try {
      if (config.reconcile.clusterSPIFFEIDs || config.reconcile.clusterStaticEntries) {
        const r = await reconcileEntries(state, { registry, statuses: writer, isLeading, log, problems }, opts);
        if (r.created + r.updated + r.deleted + r.failures > 0) log.info(r, 'entries reconciled');
      }
      if (config.reconcile.clusterFederatedTrustDomains) {
        await reconcileFederation(state.clusterFederatedTrustDomains, { registry, metadata: writer, isLeading, log, problems }, opts);
      }
    } catch (e) {
      log.error({ error: errorText(e) }, 'reconcile failed; retrying at the next change or interval');
    }
  };
  // the trigger before the informers that notify it; its first run is a period away, after they exist
  const trigger = createTrigger(reconcile, COALESCE_MS, config.gcIntervalSeconds * 1000);
  const informers = startInformers(kc, watchedKinds(config.reconcile), () => trigger.notify(), log);
  void informers.synced.then(() => {
    synced = true;
    log.info('caches synced');
    trigger.notify();
  });
  log.info(
    { identity, trustDomain: config.trustDomain, clusterName: config.clusterName, className: config.className ?? null, entryIDPrefix: config.entryIDPrefix, leaderElection: le.enabled ? `${le.leaseNamespace}/${le.leaseName}` : 'off', issuer: config.serverUrl },
    'wisp-controller-manager started',
  );
  try {
    if (elector) await elector.run(signal);
    else if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  } finally {
    await trigger.stop();
    await informers.stop();
    log.info('wisp-controller-manager stopped');
  }
}

function parseFlags(argv: readonly string[]): ControllerFlags {
  const cmd = new Command('wisp-controller-manager')
    .description('Reconciles spire-controller-manager resources (ClusterSPIFFEID, ClusterStaticEntry, ClusterFederatedTrustDomain) into Wisp entries and federation relationships.')
    .requiredOption('--config <path>', 'the ControllerManagerConfig YAML file')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, else KUBECONFIG or ~/.kube/config)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: () => undefined });
  cmd.parse(argv, { from: 'user' });
  if (cmd.args.length > 0) throw new CommanderError(2, 'wisp.args', `unexpected argument "${cmd.args[0]}"`);
  return cmd.opts<ControllerFlags>();
}

/** The CLI: returns the exit code (2 for a usage or config error). */
export async function main(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  let flags: ControllerFlags;
  let config: ControllerConfig;
  let warnings: string[];
  try {
    flags = parseFlags(argv.slice(2));
    ({ config, warnings } = readControllerConfig(flags.config, podNamespace()));
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed') return 0;
      process.stderr.write(`wisp-controller-manager: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    if (e instanceof WispError) {
      process.stderr.write(`wisp-controller-manager: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const log = pino({ level: config.logLevel, base: { svc: 'wisp-controller-manager' }, timestamp: pino.stdTimeFunctions.isoTime }, process.stderr);
  for (const w of warnings) log.warn(w);
  const stop = stopOnSignals(log);
  try {
    await runController(config, flags, log, stop.signal, env);
    return 0;
  } catch (e) {
    log.error({ error: errorText(e) }, 'wisp-controller-manager failed');
    return 1;
  } finally {
    stop.dispose();
  }
}
