// The stack the client interop and Envoy e2e tests share: the real issuer under wrangler dev, one join token,
// two workload entries under that agent (`serverId` for this process's uid, `clientId` for `clientUid`), and a
// real wisp-agent syncing every second.
import { adminCall, startAgent, startIssuer, type RunningAgent, type RunningIssuer } from '../../../scripts/local-stack.js';

export interface TwoWorkloadsOptions {
  trustDomain: string;
  serverId: string;
  clientId: string;
  clientUid: number;
  /** the issuer's X509_SVID_TTL (short to see rotations) */
  x509SvidTtl: string;
  issuerStateDir: string;
  agentDataDir: string;
  socketPath: string;
  /** more issuer [vars], e.g. { WIT_SVID_TTL: '1h' } */
  issuerVars?: Record<string, string>;
}

export async function startTwoWorkloads(o: TwoWorkloadsOptions): Promise<{ issuer: RunningIssuer; agent: RunningAgent }> {
  const issuer = await startIssuer({ stateDir: o.issuerStateDir, trustDomain: o.trustDomain, vars: { X509_SVID_TTL: o.x509SvidTtl, CA_TTL: '2h', ...o.issuerVars } });
  try {
    const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {});
    const agentId = `spiffe://${o.trustDomain}/spire/agent/join_token/${token}`;
    await adminCall(issuer, 'POST', '/entries', { spiffeId: o.serverId, parentId: agentId, selectors: [{ type: 'unix', value: `uid:${process.getuid?.() ?? 0}` }] });
    await adminCall(issuer, 'POST', '/entries', { spiffeId: o.clientId, parentId: agentId, selectors: [{ type: 'unix', value: `uid:${o.clientUid}` }] });
    const agent = await startAgent({ serverUrl: issuer.url, trustDomain: o.trustDomain, dataDir: o.agentDataDir, socketPath: o.socketPath, joinToken: token, syncIntervalSeconds: 1 });
    return { issuer, agent };
  } catch (e) {
    await issuer.stop();
    throw e;
  }
}
