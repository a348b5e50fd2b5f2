/**
 * Reading the trust domain's published keys from the CA Durable Object: the one place that turns the DO's
 * not-ready Result (or a failed RPC) into a thrown ERR_CA_NOT_READY (503) for the routes, with the cause logged.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { logEvent } from '../log.js';
import type { PublishedKeys, TrustDomainCaApi } from './ca-api.js';

export async function readPublishedKeys(ca: Pick<TrustDomainCaApi, 'getPublishedKeys'>): Promise<PublishedKeys> {
  let cause: unknown;
  try {
    const keys = await ca.getPublishedKeys();
    if (keys.ok) return keys.value;
    cause = keys.error.message;
  } catch (e) {
    cause = e;
  }
  logEvent('error', 'CA not ready: cannot read the published keys', { cause: cause instanceof Error ? cause.message : String(cause) });
  throw new WispError('ERR_CA_NOT_READY', 'the trust domain CA is not ready', { cause });
}
