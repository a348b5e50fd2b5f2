// The issuer's Prometheus endpoint served by the real app in process (test/helpers/node/in-process-issuer.ts),
// checked by `promtool check metrics` (Debian's `prometheus` package). SPIRE's counter names carry no
// `_total`, which promtool notes; that note on a counter is the only one accepted (docs/telemetry.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { startInProcessIssuer, type InProcessIssuer } from '../helpers/node/in-process-issuer.js';
import { checkMetrics, findPrometheusTool } from '../helpers/node/promtool.js';

const found = findPrometheusTool('promtool');
const promtool = found.path;
const skipReason = found.why ?? '';

let issuer: InProcessIssuer;
beforeAll(async () => {
  issuer = await startInProcessIssuer();
});
afterAll(async () => {
  await issuer?.close();
});

describe.skipIf(!promtool)(`issuer metrics under promtool${promtool ? '' : ` (skipped: ${skipReason})`}`, () => {
  it('passes `promtool check metrics` but for the _total note on SPIRE-named counters', async () => {
    const td = issuer.config.trustDomain;
    await issuer.admin('POST', '/x509-svids/mint', { spiffeId: `spiffe://${td}/w/a`, csr: toBase64((await makeCsr()).der) });
    await issuer.admin('POST', '/jwt-svids/mint', { spiffeId: `spiffe://${td}/w/a`, audience: ['x'] });
    const failed = await fetch(`${issuer.url}/agent/v1/attest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ attestationType: 'join_token', payload: { token: 'nope' }, csr: toBase64((await makeCsr()).der) }) });
    expect(failed.status).toBeGreaterThanOrEqual(400);

    const res = await fetch(`${issuer.url}/admin/v1/metrics`, { headers: { authorization: `Bearer ${issuer.adminToken}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('spire_server_server_ca_sign_x509_svid 1\n');
    expect(text).toMatch(/spire_server_rpc_agent_v1_agent_attest_agent\{status="\w+",attestor="join_token"\} 1\n/);
    expect(text).toContain('# TYPE spire_server_rpc_agent_v1_agent_attest_agent_elapsed_time histogram\n');

    const { problems, unexpected: other } = checkMetrics(promtool!, text);
    expect(other, text).toEqual([]);
    expect(problems.length).toBeGreaterThan(0); // promtool ran and noted the `_total` suffixes
  });
});
