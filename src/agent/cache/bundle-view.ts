/**
 * SPIFFE bundle JSON from the issuer → the `TrustDomainBundle` the Workload API serves, through the shared
 * strict parser (src/shared/spiffe/bundle.ts, go-spiffe's rules), certificates read by node:crypto
 * (src/node/certificate-key.ts). A bundle that does not parse is
 * reported to the caller, which keeps serving the previous one.
 * @module
 */
import type { SpiffeBundleJson } from '../../shared/agent-api.js';
import { parseBundleJson } from '../../shared/spiffe/bundle.js';
import { certificateKey } from '../../node/certificate-key.js';
import type { TrustDomainBundle } from './identity-source.js';

export function emptyBundle(trustDomain: string): TrustDomainBundle {
  return { trustDomain, x509Authorities: [], jwtAuthorities: [] };
}

/** Parses a bundle document; throws WispError (ERR_BAD_REQUEST) when it is malformed. */
export async function bundleFromJson(trustDomain: string, json: SpiffeBundleJson): Promise<TrustDomainBundle> {
  const parsed = await parseBundleJson(json, trustDomain, certificateKey);
  return { trustDomain, x509Authorities: parsed.x509Authorities, jwtAuthorities: parsed.jwtAuthorities, ...(parsed.witAuthorities ? { witAuthorities: parsed.witAuthorities } : {}) };
}

/** The `spiffe_sequence` of a bundle, if it has a valid one. */
export function bundleSequenceOf(json: SpiffeBundleJson | undefined): number | undefined {
  const seq = json?.spiffe_sequence;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}
