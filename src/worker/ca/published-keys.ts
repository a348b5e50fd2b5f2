/**
 * Reading the trust domain's published keys (and CRLs) from the CA Durable Object: the one place that turns the DO's
 * not-ready Result (or a failed RPC) into a thrown ERR_CA_NOT_READY (503) for the routes, with the cause logged.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { logEvent } from '../log.js';
import type { Result } from '../../shared/result.js';
import type { PublishedKeys, RevokedSerial, SignedCrl, TrustDomainCaApi } from './ca-api.js';

/** The value of a CA call, or ERR_CA_NOT_READY (503) with the cause logged as `failure`. */
async function readyValue<T>(call: () => Promise<Result<T>>, failure: string): Promise<T> {
  let cause: unknown;
  try {
    const result = await call();
    if (result.ok) return result.value;
    cause = result.error.message;
  } catch (e) {
    cause = e;
  }
  logEvent('error', `CA not ready: ${failure}`, { cause: cause instanceof Error ? cause.message : String(cause) });
  throw new WispError('ERR_CA_NOT_READY', 'the trust domain CA is not ready', { cause });
}

export function readPublishedKeys(ca: Pick<TrustDomainCaApi, 'getPublishedKeys'>): Promise<PublishedKeys> {
  return readyValue(() => ca.getPublishedKeys(), 'cannot read the published keys');
}

/** The CRLs of `revoked` (crl.ts), the active CA key's first; a not-ready CA is ERR_CA_NOT_READY like the keys. */
export function readCrls(ca: Pick<TrustDomainCaApi, 'getCrls'>, revoked: RevokedSerial[]): Promise<SignedCrl[]> {
  return readyValue(() => ca.getCrls(revoked), 'cannot sign the CRL');
}
