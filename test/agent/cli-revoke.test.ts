// `wisp x509 revoke` and `wisp entry revoke` in process against the real issuer app
// (test/helpers/node/in-process-issuer.ts): what they send lands as revocations the admin API lists.
import { describe, expect, it } from 'vitest';
import type { SvidRevocation } from '../../src/shared/registry/revocation.js';
import { useInProcessWisp } from '../helpers/node/in-process-wisp.js';

const cli = useInProcessWisp();
const { wisp } = cli;

const listed = async () => (await cli.issuer.admin<{ revocations: SvidRevocation[] }>('GET', '/revocations')).revocations;

describe('wisp x509 revoke / wisp entry revoke', () => {
  it('x509 revoke --serial records the serial in the issuer\'s form; --spiffeID a cutoff', async () => {
    const run = await wisp(['x509', 'revoke', '--serial', '00:0A:1b:2C', '--reason', 'key leaked']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe('Revoked: 1 record(s)\n');
    expect(await listed()).toEqual([expect.objectContaining({ kind: 'serial', serialNumber: 'a1b2c', reason: 'key leaked' })]);

    const json = await wisp(['x509', 'revoke', '--spiffeID', 'spiffe://example.org/db', '-output', 'json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { revocations: SvidRevocation[] }).revocations).toEqual([expect.objectContaining({ kind: 'spiffe_id', spiffeId: 'spiffe://example.org/db' })]);
  });

  it('entry revoke --entryID revokes the entry\'s SPIFFE ID', async () => {
    const token = JSON.parse((await wisp(['token', 'generate', '-output', 'json'])).stdout) as { token: string };
    const created = await wisp(['entry', 'create', '-parentID', `spiffe://example.org/spire/agent/join_token/${token.token}`, '-spiffeID', 'spiffe://example.org/web', '-selector', 'unix:uid:1000', '-entryID', 'e-web']);
    expect(created.code).toBe(0);
    const run = await wisp(['entry', 'revoke', '--entryID', 'e-web']);
    expect(run).toMatchObject({ code: 0, stderr: '', stdout: 'Revoked: 1 record(s)\n' });
    expect(await listed()).toContainEqual(expect.objectContaining({ kind: 'spiffe_id', spiffeId: 'spiffe://example.org/web' }));
  });

  it('refuses bad input: no flag before anything is sent, a serial that is not hex, an unknown entry', async () => {
    const none = await wisp(['x509', 'revoke']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/--serial/);
    const bad = await wisp(['x509', 'revoke', '--serial', 'xyz']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/serialNumber must be a hex string/);
    const unknown = await wisp(['entry', 'revoke', '--entryID', 'no-such-entry']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not found|ERR_ENTRY_NOT_FOUND/i);
  });
});
