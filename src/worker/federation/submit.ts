/**
 * A bundle (or a fetch error) submitted by Node for an `https_spiffe` relationship, from `wisp federation
 * refresh` (admin API) or from the agent assigned to the relationship (agent API). Node did the
 * SPIFFE-authenticated fetch; the issuer applies the same checks as to any foreign bundle (strict parse,
 * spiffe_sequence never backwards) and records the outcome on the relationship.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { parseForeignBundle, planBundleUpdate, type ForeignBundle } from '../../shared/federation/foreign-bundle.js';
import type { FederationStore } from '../../shared/federation/federation-store.js';
import type { FederationRelationship } from '../../shared/federation/relationship.js';

/** Longest error text recorded on a relationship. */
export const REFRESH_ERROR_MAX_CHARS = 512;

export interface SubmitOutcome {
  status: 'updated' | 'unchanged' | 'failed';
  relationship: FederationRelationship | undefined;
  bundle?: ForeignBundle;
}

/** The fields of a submission; exactly one of them. */
export function parseSubmission(body: Record<string, unknown>): { bundle: unknown } | { error: string } {
  for (const key of Object.keys(body)) if (key !== 'bundle' && key !== 'error') throw new WispError('ERR_BAD_REQUEST', `unknown field "${key}"`);
  if ((body.bundle === undefined) === (body.error === undefined)) throw new WispError('ERR_BAD_REQUEST', 'send either bundle (the fetched bundle) or error (why the fetch failed)');
  if (body.error !== undefined) {
    if (typeof body.error !== 'string' || body.error.length === 0) throw new WispError('ERR_BAD_REQUEST', 'error must be a non-empty string');
    return { error: body.error };
  }
  return { bundle: body.bundle };
}

/** Stores a submitted bundle or records a submitted error. Throws for a malformed or older bundle (also recorded). */
export async function submitRefresh(store: FederationStore, rel: FederationRelationship, submission: { bundle: unknown } | { error: string }, now: number): Promise<SubmitOutcome> {
  const td = rel.trustDomain;
  const record = (lastRefreshError: string, ok: boolean) =>
    store.recordRefresh(td, { ...(ok ? { lastRefreshAt: now } : {}), lastRefreshError: lastRefreshError.slice(0, REFRESH_ERROR_MAX_CHARS), nextRefreshAt: rel.nextRefreshAt });
  if ('error' in submission) {
    await record(submission.error, false);
    return { status: 'failed', relationship: await store.getRelationship(td) };
  }
  const stored = await store.getBundle(td);
  let bundle: ForeignBundle;
  let plan;
  try {
    const incoming = await parseForeignBundle(submission.bundle, td);
    plan = planBundleUpdate(stored, incoming);
    bundle = { trustDomain: td, bundle: incoming.bundle, sequence: incoming.parsed.sequence, refreshHintSeconds: incoming.parsed.refreshHintSeconds, updatedAt: now };
  } catch (e) {
    if (e instanceof WispError) await record(`${e.code}: ${e.message}`, false);
    throw e;
  }
  if (plan === 'store' && !(await store.putBundle(bundle))) {
    const e = new WispError('ERR_BUNDLE_SEQUENCE_BACKWARDS', `bundle of "${td}": a bundle with a higher spiffe_sequence is stored`);
    await record(`${e.code}: ${e.message}`, false);
    throw e;
  }
  await record('', true);
  return { status: plan === 'store' ? 'updated' : 'unchanged', relationship: await store.getRelationship(td), bundle: await store.getBundle(td) };
}
