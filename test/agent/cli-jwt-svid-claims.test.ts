// `wisp entry create|update -jwtSVIDClaims JSON`, the pretty and SPIRE-format (`jwt_svid_claims`) output,
// and the re-import of a dump, in process against the real issuer app (test/helpers/node/in-process-issuer.ts);
// refusals checked before anything is sent. The SPIRE-format reader's own refusals are pure.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSpireEntry } from '../../src/cli/spire-format.js';
import { useInProcessWisp } from '../helpers/node/in-process-wisp.js';
import { ONE_LINE_ERROR } from '../helpers/node/wisp-cli.js';

const { wisp } = useInProcessWisp();
const parent = 'spiffe://example.org/spire/agent/join_token/claims';
const fields = (name: string) => ['-parentID', parent, '-spiffeID', `spiffe://example.org/claims/${name}`, '-selector', 'unix:uid:1'];

interface Dump {
  entries: Array<{ entry_id: string; spiffe_id: string; jwt_svid_claims?: unknown }>;
}

describe('wisp entry -jwtSVIDClaims', () => {
  it('creates, shows, updates and re-imports an entry with claims', async () => {
    const created = await wisp(['entry', 'create', ...fields('web'), '-jwtSVIDClaims', '{"tenant":"acme","groups":["a","b"]}']);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toContain('JWT-SVID claims  : {"tenant":"acme","groups":["a","b"]}\n');
    const id = /^Entry ID\s+: (\S+)$/m.exec(created.stdout)![1]!;

    const shown = await wisp(['entry', 'show', '-entryID', id, '-output', 'json']);
    expect(shown).toMatchObject({ code: 0, stderr: '' });
    const dump = JSON.parse(shown.stdout) as Dump;
    expect(dump.entries[0]!.jwt_svid_claims).toEqual({ tenant: 'acme', groups: ['a', 'b'] });

    const updated = await wisp(['entry', 'update', '-entryID', id, ...fields('web'), '-jwtSVIDClaims', '{"tenant":"globex"}']);
    expect(updated).toMatchObject({ code: 0, stderr: '' });
    expect(updated.stdout).toContain('JWT-SVID claims  : {"tenant":"globex"}\n');

    // the dump, renamed, goes back in through SPIRE's -data format with its claims
    const file = join(mkdtempSync(join(tmpdir(), 'wisp-claims-')), 'entries.json');
    const { entry_id: _id, ...copy } = dump.entries[0]!;
    writeFileSync(file, JSON.stringify({ entries: [{ ...copy, spiffe_id: 'spiffe://example.org/claims/copy' }] }));
    const imported = await wisp(['entry', 'create', '-data', file, '-output', 'json']);
    expect(imported).toMatchObject({ code: 0, stderr: '' });
    const result = JSON.parse(imported.stdout) as { results: Array<{ status: { code: string }; entry: Dump['entries'][number] }> };
    expect(result.results[0]).toMatchObject({ status: { code: 'OK' }, entry: { spiffe_id: 'spiffe://example.org/claims/copy', jwt_svid_claims: { tenant: 'acme', groups: ['a', 'b'] } } });
  });

  it('refuses a reserved claim, a non-object and bad JSON before sending', async () => {
    for (const [value, message] of [
      ['{"sub":"spiffe://example.org/evil"}', 'jwtSvidClaims must not set the reserved claim "sub"'],
      ['["a"]', 'jwtSvidClaims must be a JSON object'],
      ['{tenant:acme}', 'not valid JSON'],
    ] as const) {
      const run = await wisp(['entry', 'create', ...fields('bad'), '-jwtSVIDClaims', value]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(ONE_LINE_ERROR);
      expect(run.stderr).toContain(`--jwtSVIDClaims: ${message}`);
    }
    const none = await wisp(['entry', 'show', '-spiffeID', 'spiffe://example.org/claims/bad']);
    expect(none.stdout).toMatch(/^Found 0 entries/);
  });
});

describe('SPIRE format jwt_svid_claims', () => {
  const base = { spiffe_id: 'spiffe://example.org/web', parent_id: parent, selectors: [{ type: 'unix', value: 'uid:1' }] };

  it('reads them, and leaves an empty object out', () => {
    expect(parseSpireEntry({ ...base, jwt_svid_claims: { tenant: 'acme' } }).jwtSvidClaims).toEqual({ tenant: 'acme' });
    expect(parseSpireEntry({ ...base, jwt_svid_claims: {} })).not.toHaveProperty('jwtSvidClaims');
  });

  it('refuses them by the issuer\'s rule, naming the file\'s field', () => {
    expect(() => parseSpireEntry({ ...base, jwt_svid_claims: { exp: 1 } })).toThrow('jwt_svid_claims must not set the reserved claim "exp"');
    expect(() => parseSpireEntry({ ...base, jwt_svid_claims: { big: 'x'.repeat(4096) } })).toThrow('jwt_svid_claims is longer than 4096 bytes as JSON');
  });
});
