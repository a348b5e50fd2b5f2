/**
 * Refresh of `https_web` federated bundles from the Worker (SPIFFE_Federation.md §5.2.1): GET the bundle
 * endpoint with a timeout and a size cap, follow at most a few redirects to valid endpoint URLs (never
 * remembered), parse strictly, refuse a spiffe_sequence that goes backwards, and keep the last good bundle
 * on any failure. Each attempt is recorded on the relationship (last refresh, last error, next refresh at
 * the bundle's refresh hint bounded to 1 min..1 day; a failure retries at the default interval).
 * `https_spiffe` endpoints cannot be verified by a Worker's fetch; they are refreshed from Node
 * (`wisp federation refresh`).
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { parseForeignBundle, planBundleUpdate } from '../../shared/federation/foreign-bundle.js';
import type { FederationStore } from '../../shared/federation/federation-store.js';
import {
  FEDERATION_REFRESH_DEFAULT_SECONDS,
  parseBundleEndpointUrl,
  refreshIntervalSeconds,
  type FederationRelationship,
} from '../../shared/federation/relationship.js';
import { MAX_BUNDLE_BYTES } from '../../shared/spiffe/bundle.js';
import { readBodyBytes } from '../http-json.js';
import { logEvent } from '../log.js';

/** Timeout of one bundle endpoint fetch (STYLE G21), ms. */
export const FEDERATION_FETCH_TIMEOUT_MS = 10_000;
/** Redirects followed per fetch. */
export const FEDERATION_MAX_REDIRECTS = 3;
/** Relationships refreshed per cron run. */
export const FEDERATION_REFRESH_BATCH = 50;
/** Longest error text recorded on a relationship. */
const MAX_ERROR_CHARS = 512;

export interface RefreshDeps {
  store: FederationStore;
  fetch: typeof fetch;
  /** seconds since the epoch */
  now: () => number;
}

export type RefreshOutcome = { trustDomain: string; status: 'updated' | 'unchanged' } | { trustDomain: string; status: 'failed'; error: string };

async function readCapped(res: Response): Promise<string> {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(await readBodyBytes(res, MAX_BUNDLE_BYTES, 'bundle'));
}

/** GETs a bundle endpoint (web PKI): the body text. Throws WispError ERR_UNAVAILABLE / ERR_BAD_REQUEST. */
export async function fetchBundleDocument(url: string, doFetch: typeof fetch, timeoutMs = FEDERATION_FETCH_TIMEOUT_MS): Promise<string> {
  const signal = AbortSignal.timeout(timeoutMs);
  let target = url;
  for (let hop = 0; hop <= FEDERATION_MAX_REDIRECTS; hop++) {
    let res: Response;
    try {
      res = await doFetch(target, { method: 'GET', headers: { accept: 'application/json' }, redirect: 'manual', signal });
    } catch (e) {
      const timedOut = (e as Error).name === 'TimeoutError' || signal.aborted;
      throw new WispError('ERR_UNAVAILABLE', timedOut ? `no answer from ${target} within ${timeoutMs / 1000}s` : `cannot fetch ${target}: ${(e as Error).message}`);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      target = parseBundleEndpointUrl(new URL(res.headers.get('location')!, target).toString());
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new WispError('ERR_UNAVAILABLE', `${target} answered HTTP ${res.status}`);
    }
    return readCapped(res);
  }
  throw new WispError('ERR_UNAVAILABLE', `more than ${FEDERATION_MAX_REDIRECTS} redirects from ${url}`);
}

function errorText(e: unknown): string {
  const text = e instanceof WispError ? `${e.code}: ${e.message}` : 'ERR_INTERNAL: unexpected error';
  return text.slice(0, MAX_ERROR_CHARS);
}

/** Refreshes one https_web relationship; never throws (the outcome and the relationship record say how it went). */
export async function refreshRelationship(deps: RefreshDeps, rel: FederationRelationship): Promise<RefreshOutcome> {
  const td = rel.trustDomain;
  try {
    if (rel.bundleEndpointProfile !== 'https_web') throw new WispError('ERR_BAD_REQUEST', 'https_spiffe endpoints are refreshed from Node: wisp federation refresh');
    const text = await fetchBundleDocument(rel.bundleEndpointUrl, deps.fetch);
    const incoming = await parseForeignBundle(text, td);
    const stored = await deps.store.getBundle(td);
    const plan = planBundleUpdate(stored, incoming);
    const now = deps.now();
    if (plan === 'store') {
      const written = await deps.store.putBundle({ trustDomain: td, bundle: incoming.bundle, sequence: incoming.parsed.sequence, refreshHintSeconds: incoming.parsed.refreshHintSeconds, updatedAt: now });
      if (!written) throw new WispError('ERR_BUNDLE_SEQUENCE_BACKWARDS', `bundle of "${td}": a newer bundle was stored meanwhile`);
    }
    await deps.store.recordRefresh(td, { lastRefreshAt: now, lastRefreshError: '', nextRefreshAt: now + refreshIntervalSeconds(incoming.parsed.refreshHintSeconds) });
    if (plan === 'store') logEvent('info', 'federated bundle updated', { trust_domain: td, sequence: incoming.parsed.sequence ?? null });
    return { trustDomain: td, status: plan === 'store' ? 'updated' : 'unchanged' };
  } catch (e) {
    const error = errorText(e);
    logEvent('warn', 'federated bundle refresh failed', { trust_domain: td, error });
    try {
      await deps.store.recordRefresh(td, { lastRefreshError: error, nextRefreshAt: deps.now() + FEDERATION_REFRESH_DEFAULT_SECONDS });
    } catch (recordError) {
      logEvent('error', 'cannot record a federation refresh failure', { trust_domain: td, error: errorText(recordError) });
    }
    return { trustDomain: td, status: 'failed', error };
  }
}

/** The cron's job: refresh every https_web relationship that is due, a bounded batch per run. */
export async function refreshDueRelationships(deps: RefreshDeps): Promise<RefreshOutcome[]> {
  const due = await deps.store.dueForRefresh(deps.now(), FEDERATION_REFRESH_BATCH);
  return Promise.all(due.map((rel) => refreshRelationship(deps, rel)));
}
