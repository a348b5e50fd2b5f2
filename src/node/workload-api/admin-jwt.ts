/**
 * An admin JWT-SVID from the local Workload API, the bearer credential of the CLI (`--useWorkloadAPI`) and
 * of the controller manager (`workloadAPISocket`): the issuer accepts it when its SPIFFE ID has an `admin`
 * entry and its audience is the issuer's.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { createWorkloadApiClient, isGrpcError } from './client.js';

/**
 * Fetches one JWT-SVID for `audience` over the Workload API at `address` (a Workload Endpoint address).
 * Throws `WispError` ERR_UNAUTHENTICATED when the Workload API refuses, ERR_NO_IDENTITY when it has none.
 */
export async function fetchAdminJwtSvid(address: string, audience: string, timeoutMs: number): Promise<string> {
  const client = createWorkloadApiClient(address);
  try {
    const res = await client.fetchJWTSVID({ audience: [audience] }, { timeoutMs });
    const svid = res.svids[0];
    if (!svid) throw new WispError('ERR_NO_IDENTITY', 'the Workload API returned no JWT-SVID');
    return svid.svid;
  } catch (e) {
    if (isGrpcError(e)) throw new WispError('ERR_UNAUTHENTICATED', `cannot fetch an admin JWT-SVID from the Workload API: ${e.details || e.message}`);
    throw e;
  } finally {
    client.close();
  }
}
