// Run as a separate process (possibly under another uid via setpriv): calls the Workload API at argv[2]
// and prints one JSON line per call: {method, ok, code?, spiffeIds?}.
import { createWorkloadApiClient } from '../../../../src/node/workload-api/client.js';

const client = createWorkloadApiClient(process.argv[2]!);

async function report(method: string, fn: () => Promise<string[]>) {
  try {
    console.log(JSON.stringify({ method, ok: true, spiffeIds: await fn() }));
  } catch (err) {
    console.log(JSON.stringify({ method, ok: false, code: (err as { code?: number }).code }));
  }
}

await report('FetchX509SVID', async () => {
  for await (const res of client.fetchX509SVID()) return res.svids.map((s) => s.spiffeId);
  return [];
});
await report('FetchJWTSVID', async () => (await client.fetchJWTSVID({ audience: ['x'] })).svids.map((s) => s.spiffeId));
await report('FetchX509Bundles', async () => {
  for await (const res of client.fetchX509Bundles()) return Object.keys(res.bundles);
  return [];
});
client.close();
