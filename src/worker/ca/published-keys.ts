/**
 * Reading the trust domain's published keys from the CA Durable Object. The DO's RPC returns plain data and
 * throws when it has no usable keys (a failed first generation or rotation); error classes do not survive
 * RPC, so this is the one place that turns such a failure into ERR_CA_NOT_READY (503), with the cause logged.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { logEvent } from '../log.js';
import type { PublishedKeys, TrustDomainCaApi } from './ca-api.js';

export async function readPublishedKeys(ca: Pick<TrustDomainCaApi, 'getPublishedKeys'>): Promise<PublishedKeys> {
  try {
    return await ca.getPublishedKeys();
  } catch (e) {
    logEvent('error', 'CA not ready: cannot read the published keys', { cause: e instanceof Error ? e.message : String(e) });
    throw new WispError('ERR_CA_NOT_READY', 'the trust domain CA is not ready', { cause: e });
  }
}
