/**
 * SPIFFE bundle JSON (SPIFFE_Trust_Domain_and_Bundle.md §4) → the `TrustDomainBundle` the Workload API
 * serves: X.509 authorities are the `x5c[0]` of keys with `use: x509-svid`, JWT authorities the keys with
 * `use: jwt-svid` (§4.2.1). Lenient by design: a malformed key is skipped, not fatal, as §4.2 asks of
 * consumers. (Agent-local until src/shared/spiffe/bundle.ts lands; then this delegates to parseBundleJson.)
 * @module
 */
import type { JWK } from 'jose';
import type { SpiffeBundleJson } from '../../shared/agent-api.js';
import type { TrustDomainBundle } from './identity-source.js';
import { fromBase64 } from '../keys.js';

export function bundleFromJson(trustDomain: string, json: SpiffeBundleJson | undefined): TrustDomainBundle {
  const x509Authorities: Uint8Array[] = [];
  const jwtAuthorities: JWK[] = [];
  for (const key of json?.keys ?? []) {
    if (typeof key !== 'object' || key === null) continue;
    if (key['use'] === 'x509-svid') {
      const x5c = key['x5c'];
      if (Array.isArray(x5c) && x5c.length === 1 && typeof x5c[0] === 'string') x509Authorities.push(fromBase64(x5c[0]));
    } else if (key['use'] === 'jwt-svid') {
      if (typeof key['kid'] === 'string' && key['kid'] !== '') jwtAuthorities.push({ ...(key as JWK) });
    }
  }
  return { trustDomain, x509Authorities, jwtAuthorities };
}

/** The `spiffe_sequence` of a bundle, if it has a valid one. */
export function bundleSequenceOf(json: SpiffeBundleJson | undefined): number | undefined {
  const seq = json?.spiffe_sequence;
  return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}
