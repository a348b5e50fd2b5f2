/**
 * Reading the trust domain's published keys (and CRLs) from the CA Durable Object: the one place that turns the DO's
 * not-ready Result (or a failed RPC) into a thrown ERR_CA_NOT_READY (503) for the routes, with the cause logged.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { logEvent } from '../log.js';
import type { PublishedKeys, RevokedSerial, SignedCrl, TrustDomainCaApi } from './ca-api.js';

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

/** The CRLs of `revoked` (crl.ts), the active CA key's first; a not-ready CA is ERR_CA_NOT_READY like the keys. */
export async function readCrls(ca: Pick<TrustDomainCaApi, 'getCrls'>, revoked: RevokedSerial[]): Promise<SignedCrl[]> {
  let cause: unknown;
  try {
    const crls = await ca.getCrls(revoked);
    if (crls.ok) return crls.value;
    cause = crls.error.message;
  } catch (e) {
    cause = e;
  }
  logEvent('error', 'CA not ready: cannot sign the CRL', { cause: cause instanceof Error ? cause.message : String(cause) });
  throw new WispError('ERR_CA_NOT_READY', 'the trust domain CA is not ready', { cause });
}
