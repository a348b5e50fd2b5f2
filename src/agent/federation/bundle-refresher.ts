/**
 * The agent's https_spiffe bundle refresh (SPIFFE_Federation.md §5.2.2): for each relationship the issuer
 * assigns to this agent (`refreshAgentId`), fetch the foreign bundle over TLS authenticated with the stored
 * bundle and the endpoint SPIFFE ID, and submit the bundle, or the error, to the issuer, which checks it like
 * any foreign bundle and records the outcome. Each relationship is fetched again at its bundle's refresh hint
 * (bounded to 1 min..1 day; 5 min without a hint or after a failure). The task list is polled every
 * `pollMs`. Never throws: a failure is logged and retried at the next poll.
 * @module
 */
import type { FederationRefreshTask } from '../../shared/agent-api.js';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import { parseForeignBundle } from '../../shared/federation/foreign-bundle.js';
import { FEDERATION_REFRESH_DEFAULT_SECONDS, refreshIntervalSeconds } from '../../shared/federation/relationship.js';
import type { SpiffeBundleJson } from '../../shared/spiffe/bundle.js';
import type { IssuerClient } from '../issuer-client.js';
import type { Logger } from '../log.js';
import { certificateKey } from '../../node/certificate-key.js';
import type { SpiffeTlsFetchOptions } from '../../node/spiffe-bundle-fetch.js';

/** Timeout of one bundle endpoint fetch, ms. */
export const FEDERATION_FETCH_TIMEOUT_MS = 10_000;

export interface BundleRefresherDeps {
  client: Pick<IssuerClient, 'federationRefreshTasks' | 'submitFederatedBundle'>;
  fetchBundle: (o: SpiffeTlsFetchOptions) => Promise<string>;
  clock: Clock;
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** how often the task list is read from the issuer */
  pollMs: number;
}

const describe = (e: unknown) => (e instanceof WispError ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

/** One refresh of one task; returns when it should run again (ms since the epoch). */
export async function refreshTask(deps: BundleRefresherDeps, task: FederationRefreshTask): Promise<number> {
  const now = deps.clock();
  const td = task.trustDomain;
  let text: string;
  let hint: number | undefined;
  try {
    if (!task.bundle) throw new WispError('ERR_BUNDLE_NOT_FOUND', `no stored bundle of "${td}" to authenticate its endpoint`);
    text = await deps.fetchBundle({ url: task.bundleEndpointUrl, endpointSpiffeId: task.endpointSpiffeId, trustBundle: task.bundle, trustDomain: td, timeoutMs: FEDERATION_FETCH_TIMEOUT_MS });
    hint = (await parseForeignBundle(text, td as never, certificateKey)).parsed.refreshHintSeconds;
  } catch (e) {
    deps.log.warn({ trust_domain: td, err: describe(e) }, 'federated bundle refresh failed');
    try {
      await deps.client.submitFederatedBundle({ trustDomain: td, error: describe(e).slice(0, 512) });
    } catch (submitError) {
      deps.log.warn({ trust_domain: td, err: describe(submitError) }, 'cannot report a federated bundle refresh failure to the issuer');
    }
    return now + FEDERATION_REFRESH_DEFAULT_SECONDS * 1000;
  }
  try {
    const { status } = await deps.client.submitFederatedBundle({ trustDomain: td, bundle: JSON.parse(text) as SpiffeBundleJson });
    if (status === 'updated') deps.log.info({ trust_domain: td, status }, 'federated bundle refreshed');
    else deps.log.debug({ trust_domain: td, status }, 'federated bundle refreshed');
    return now + refreshIntervalSeconds(hint) * 1000;
  } catch (e) {
    deps.log.warn({ trust_domain: td, err: describe(e) }, 'the issuer did not take the refreshed federated bundle');
    return now + FEDERATION_REFRESH_DEFAULT_SECONDS * 1000;
  }
}

/** Runs until `signal` aborts. */
export async function runBundleRefresher(deps: BundleRefresherDeps, signal: AbortSignal): Promise<void> {
  /** next refresh per trust domain, ms; a task whose endpoint changed starts over */
  const next = new Map<string, { key: string; at: number }>();
  while (!signal.aborted) {
    let tasks: FederationRefreshTask[] | undefined;
    try {
      tasks = (await deps.client.federationRefreshTasks()).tasks;
    } catch (e) {
      deps.log.debug({ err: describe(e) }, 'cannot read federation refresh tasks; retrying at the next poll');
    }
    if (tasks) {
      const seen = new Set<string>();
      for (const task of tasks) {
        if (signal.aborted) return;
        seen.add(task.trustDomain);
        const key = `${task.bundleEndpointUrl} ${task.endpointSpiffeId}`;
        const due = next.get(task.trustDomain);
        if (due && due.key === key && due.at > deps.clock()) continue;
        next.set(task.trustDomain, { key, at: await refreshTask(deps, task) });
      }
      for (const td of next.keys()) if (!seen.has(td)) next.delete(td);
    }
    await deps.sleep(deps.pollMs, signal);
  }
}
