// The check every end-to-end test of an installed or packaged agent ends with: the Workload API serves the
// entry's X509-SVID, with that one URI SAN, issued by a CA of the bundle sent with it.
import { expect } from 'vitest';
import type { WorkloadApiClient } from '../../../src/node/workload-api/client.js';
import { waitFor } from '../../../scripts/local-stack.js';
import { certsOf, uriSans } from './der.js';

/** Waits up to 60 s for an X509SVIDResponse holding an SVID, checks it is exactly `spiffeId`, and returns the response. */
export async function expectServedX509Svid(client: WorkloadApiClient, spiffeId: string) {
  const msg = await waitFor('an X509-SVID', async () => {
    const ac = new AbortController();
    for await (const m of client.fetchX509SVID({ signal: ac.signal })) {
      ac.abort();
      return m.svids.length > 0 ? m : undefined;
    }
    return undefined;
  }, 60_000, 500);
  expect(msg.svids.map((s) => s.spiffeId)).toEqual([spiffeId]);
  const [leaf] = certsOf(msg.svids[0]!.x509Svid);
  expect(uriSans(leaf!)).toEqual([spiffeId]);
  expect(certsOf(msg.svids[0]!.bundle).some((ca) => leaf!.checkIssued(ca) && leaf!.verify(ca.publicKey))).toBe(true);
  return msg;
}
