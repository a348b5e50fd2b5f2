/**
 * One RemoteKeySet per keys URL for the isolate's lifetime: the Worker builds its app per request, so the
 * cache of Google's and Microsoft's signing keys lives here, not in the per-request attestors.
 * @module
 */
import { RemoteKeySet } from '../../shared/attestation/remote-key-set.js';

const keySets = new Map<string, RemoteKeySet>();

export function keySetFor(url: string, fetchImpl?: typeof fetch): RemoteKeySet {
  if (fetchImpl) return new RemoteKeySet({ url, fetch: fetchImpl });
  let set = keySets.get(url);
  if (!set) {
    set = new RemoteKeySet({ url });
    keySets.set(url, set);
  }
  return set;
}
