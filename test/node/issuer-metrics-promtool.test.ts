// The issuer's Prometheus endpoint served by the real app in process (test/helpers/node/in-process-issuer.ts),
// checked by `promtool check metrics` (Debian's `prometheus` package). SPIRE's counter names carry no
// `_total`, which promtool notes; that note on a counter is the only one accepted (docs/telemetry.md).
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCsr, toBase64 } from '../helpers/shared/agent-svid.js';
import { startInProcessIssuer, type InProcessIssuer } from '../helpers/node/in-process-issuer.js';

/** promtool on PATH; else, as root, installed once from Debian's `prometheus` package; else null (skip). */
function findPromtool(): string | null {
  const has = () => spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
  if (has()) return 'promtool';
  if (process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'prometheus'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 });
    if (has()) return 'promtool';
  }
  return null;
}
const promtool = findPromtool();
const skipReason = 'promtool is not on PATH and could not be installed (needs root and the Debian package `prometheus`)';

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

    const checked = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const problems = `${checked.stdout}${checked.stderr}`.split('\n').filter((l) => l.trim() !== '');
    const counters = new Set([...text.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]));
    const other = problems.filter((p) => {
      const m = /^(\S+) counter metrics should have "_total" suffix$/.exec(p);
      return !m || !counters.has(m[1]!);
    });
    expect(other, text).toEqual([]);
    expect(checked.status === 0 || problems.length > 0).toBe(true);
  });
});
