// `wisp entry …` as a child process against the real issuer (wrangler dev: workerd, local D1): flags, SPIRE's
// -data format round trip, partial failures, a 10,000-entry import and its progress indicator on a terminal.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { ONE_LINE_ERROR, runWisp, type WispRunOptions } from '../helpers/node/wisp-cli.js';

const TD = 'example.org';
const FIXTURE = join(import.meta.dirname, 'fixtures', 'spire-entries.json');
const FIXTURE_PARENT = `spiffe://${TD}/nodes/fixture-node`;
const BULK_ENTRIES = 10_000;

interface DumpEntry {
  entry_id?: string;
  revision_number?: number;
  spiffe_id: string;
  [k: string]: unknown;
}

let root: string;
let issuer: RunningIssuer;

const wisp = (args: string[], options: WispRunOptions = {}) =>
  runWisp(args, { ...options, env: { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken, ...options.env } });

async function ok(args: string[], options: WispRunOptions = {}) {
  const run = await wisp(args, options);
  expect(run.stderr, `wisp ${args.join(' ')}`).toBe('');
  expect(run.code).toBe(0);
  return run;
}

async function dump(...filters: string[]): Promise<DumpEntry[]> {
  return (JSON.parse((await ok(['entry', 'show', '--output', 'json', ...filters])).stdout) as { entries: DumpEntry[] }).entries;
}

const bySpiffeId = (a: { spiffe_id: string }, b: { spiffe_id: string }) => a.spiffe_id.localeCompare(b.spiffe_id);
const withoutServerFields = ({ entry_id: _id, revision_number: _rev, ...rest }: DumpEntry) => rest;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-cli-entry-'));
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
});

afterAll(async () => {
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('entries from flags', () => {
  let id: string;

  it('creates an entry with SPIRE flags and prints it as spire-server does', async () => {
    const run = await ok([
      'entry', 'create',
      '--parentID', `spiffe://${TD}/spire/agent/join_token/flags`,
      '--spiffeID', `spiffe://${TD}/flags/web`,
      '--selector', 'unix:uid:2000', '--selector', 'unix:gid:2000',
      '--x509SVIDTTL', '600', '--jwtSVIDTTL', '5m',
      '--dns', 'web.flags.test', '--federatesWith', 'spiffe://partner.test',
      '--admin', '--hint', 'web', '--entryExpiry', '4102444800',
    ]);
    id = /^Entry ID\s+: (\S+)$/m.exec(run.stdout)![1]!;
    expect(run.stdout).toContain(`SPIFFE ID        : spiffe://${TD}/flags/web`);
    expect(run.stdout).toContain('Selector         : unix:gid:2000\nSelector         : unix:uid:2000');
    expect(run.stdout).toContain('X509-SVID TTL    : 600\nJWT-SVID TTL     : 300');
    expect(run.stdout).toContain('FederatesWith    : partner.test');
    expect(run.stdout).toContain('Admin            : true');
  });

  it("accepts SPIRE's single-dash spelling and --node (parented to the server's ID)", async () => {
    const run = await ok(['entry', 'create', '-node', '-spiffeID', `spiffe://${TD}/nodes/flags`, '-selector', 'join_token:flags']);
    expect(run.stdout).toContain(`Parent ID        : spiffe://${TD}/spire/server`);
  });

  it('shows one entry by ID, and filters by SPIFFE ID, parent ID and selectors with each match mode', async () => {
    expect((await ok(['entry', 'show', '--entryID', id])).stdout).toMatch(/^Found 1 entry\nEntry ID\s+: /);
    const ids = async (...f: string[]) => (await dump(...f)).map((e) => e.spiffe_id).sort();
    expect(await ids('--spiffeID', `spiffe://${TD}/flags/web`)).toEqual([`spiffe://${TD}/flags/web`]);
    expect(await ids('--parentID', `spiffe://${TD}/spire/server`)).toEqual([`spiffe://${TD}/nodes/flags`]);
    expect(await ids('--selector', 'unix:uid:2000', '--matchSelectorsOn', 'exact')).toEqual([]);
    expect(await ids('--selector', 'unix:uid:2000', '--selector', 'unix:gid:2000', '--matchSelectorsOn', 'exact')).toEqual([`spiffe://${TD}/flags/web`]);
    expect(await ids('--selector', 'unix:uid:2000')).toEqual([`spiffe://${TD}/flags/web`]); // superset, SPIRE's default
    expect(await ids('--selector', 'unix:uid:2000', '--selector', 'unix:uid:1', '--matchSelectorsOn', 'superset')).toEqual([]);
    expect(await ids('--selector', 'unix:uid:2000', '--selector', 'unix:uid:1', '--matchSelectorsOn', 'any')).toEqual([`spiffe://${TD}/flags/web`]);
    expect(await ids('--selector', 'unix:uid:2000', '--selector', 'unix:gid:2000', '--selector', 'unix:uid:1', '--matchSelectorsOn', 'subset')).toEqual([`spiffe://${TD}/flags/web`]);
  });

  it('counts entries, with the same filters', async () => {
    expect((await ok(['entry', 'count'])).stdout).toBe('2 registration entries\n');
    expect((await ok(['entry', 'count', '--parentID', `spiffe://${TD}/spire/server`])).stdout).toBe('1 registration entry\n');
    expect(JSON.parse((await ok(['entry', 'count', '--selector', 'unix:uid:2000', '--output', 'json'])).stdout)).toEqual({ count: 1 });
  });

  it('updates an entry (a full replace) and bumps its revision', async () => {
    const run = await ok([
      'entry', 'update', '--entryID', id,
      '--parentID', `spiffe://${TD}/spire/agent/join_token/flags`, '--spiffeID', `spiffe://${TD}/flags/web`, '--selector', 'unix:uid:2001',
    ]);
    expect(run.stdout).toContain('Revision         : 1');
    expect(run.stdout).toContain('Selector         : unix:uid:2001');
    expect(run.stdout).not.toContain('Admin'); // full replace: flags not given are reset, as in SPIRE
  });

  it('deletes entries by ID; a missing one is a one-line error', async () => {
    expect((await ok(['entry', 'delete', '--entryID', id])).stdout).toBe(`Deleted entry with ID: ${id}\n`);
    const again = await wisp(['entry', 'delete', '--entryID', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(ONE_LINE_ERROR);
    expect(again.stderr).toMatch(/^Error: ERR_ENTRY_NOT_FOUND: /);
  });
});

describe("SPIRE's entry -data format", () => {
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { entries: DumpEntry[] };
  let firstDump: DumpEntry[];

  it('imports a SPIRE-format file unchanged, with a result line per entry', async () => {
    const run = await ok(['entry', 'create', '--data', FIXTURE]);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(fixture.entries.length + 1);
    fixture.entries.forEach((e, i) => expect(lines[i]).toMatch(new RegExp(`^#${i + 1} OK +${e.spiffe_id} \\(entry ID \\S+\\)$`)));
    expect(lines.at(-1)).toBe(`Created ${fixture.entries.length} of ${fixture.entries.length} entries.`);
  });

  it('round-trips: entry show --output json writes the same format, field for field', async () => {
    const wanted = (await dump()).filter((e) => e.parent_id === FIXTURE_PARENT || e.spiffe_id === FIXTURE_PARENT);
    firstDump = wanted.sort(bySpiffeId);
    expect(firstDump.map(withoutServerFields)).toEqual([...fixture.entries].sort(bySpiffeId));
    for (const e of firstDump) expect(e.entry_id).toMatch(/\S/);
  });

  it('a dump re-imports unchanged (entry IDs included) after the entries are deleted', async () => {
    const dumpFile = join(root, 'dump.json');
    writeFileSync(dumpFile, JSON.stringify({ entries: firstDump }, null, 2));
    const del = await ok(['entry', 'delete', '--file', dumpFile]);
    expect(del.stdout.trim().split('\n')).toHaveLength(firstDump.length);
    await ok(['entry', 'create', '--data', dumpFile]);
    const second = (await dump()).filter((e) => firstDump.some((f) => f.entry_id === e.entry_id)).sort(bySpiffeId);
    expect(second).toEqual(firstDump);
  });

  it('updates a batch from the same format (entry_id selects the entry)', async () => {
    const changed = firstDump.map((e) => ({ ...e, hint: 'updated' }));
    const run = await ok(['entry', 'update', '--data', '-'], { input: JSON.stringify({ entries: changed }) });
    expect(run.stdout).toContain(`Updated ${changed.length} of ${changed.length} entries.`);
    for (const e of await dump('--parentID', FIXTURE_PARENT)) expect(e.hint).toBe('updated');
  });

  it('reads stdin with --data -, and prints SPIRE-shaped JSON results with --output json', async () => {
    const input = JSON.stringify({ entries: [{ spiffe_id: `spiffe://${TD}/stdin/a`, parent_id: FIXTURE_PARENT, selectors: [{ type: 'unix', value: 'uid:3000' }] }] });
    const run = await ok(['entry', 'create', '--data', '-', '--output', 'json'], { input });
    const out = JSON.parse(run.stdout) as { results: { status: { code: string }; entry: DumpEntry }[] };
    expect(out.results).toHaveLength(1);
    expect(out.results[0]!.status.code).toBe('OK');
    expect(out.results[0]!.entry.spiffe_id).toBe(`spiffe://${TD}/stdin/a`);
  });

  it('partial failure: reports which entries failed and why, creates the rest, one summary line on stderr, exit 1', async () => {
    const file = join(root, 'partial.json');
    writeFileSync(
      file,
      JSON.stringify({
        entries: [
          { spiffe_id: `spiffe://${TD}/partial/new`, parent_id: FIXTURE_PARENT, selectors: [{ type: 'unix', value: 'uid:4000' }] },
          fixture.entries[1], // exists already
          { spiffe_id: 'spiffe://Bad Domain/x', parent_id: FIXTURE_PARENT, selectors: [{ type: 'unix', value: 'uid:4001' }] },
          { spiffe_id: `spiffe://${TD}/partial/other-td-parent`, parent_id: 'spiffe://elsewhere.test/agent', selectors: [{ type: 'unix', value: 'uid:4002' }] },
        ],
      }),
    );
    const run = await wisp(['entry', 'create', '--data', file]);
    expect(run.code).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^#1 OK +spiffe:\/\/example\.org\/partial\/new /);
    expect(lines[1]).toMatch(/^#2 FAILED +spiffe:\/\/example\.org\/ns\/prod\/sa\/web: ERR_ENTRY_EXISTS: /);
    expect(lines[2]).toMatch(/^#3 FAILED +\(invalid entry\): ERR_SPIFFE_ID_INVALID: spiffe_id: /);
    expect(lines[3]).toMatch(/^#4 FAILED +spiffe:\/\/example\.org\/partial\/other-td-parent: ERR_TRUST_DOMAIN_MISMATCH: /);
    expect(lines[4]).toBe('Created 1 of 4 entries.');
    expect(run.stderr).toMatch(ONE_LINE_ERROR);
    expect(run.stderr).toMatch(/^Error: ERR_ENTRY_EXISTS: failed to create 3 of 4 entries \(first: #2: ERR_ENTRY_EXISTS: /);
    expect((await dump('--spiffeID', `spiffe://${TD}/partial/new`))).toHaveLength(1);
  });

  it('a file that is not the format is one line, nothing sent', async () => {
    const run = await wisp(['entry', 'create', '--data', '-'], { input: '[{"spiffe_id": "x"}]' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(ONE_LINE_ERROR);
    expect(run.stderr).toContain('{"entries": [...]}');
  });
});

describe('large batches', () => {
  const bulkFile = (n: number, prefix: string) => {
    const file = join(root, `${prefix}.json`);
    const entries = Array.from({ length: n }, (_, i) => ({
      spiffe_id: `spiffe://${TD}/${prefix}/w${i}`,
      parent_id: `spiffe://${TD}/spire/agent/join_token/${prefix}`,
      selectors: [{ type: 'unix', value: `uid:${100_000 + i}` }],
    }));
    writeFileSync(file, JSON.stringify({ entries }));
    return file;
  };

  it(`creates ${BULK_ENTRIES} entries from one file in one command`, async () => {
    const file = bulkFile(BULK_ENTRIES, 'bulk');
    const started = Date.now();
    const run = await ok(['entry', 'create', '--data', file], { timeoutMs: 170_000 });
    const seconds = (Date.now() - started) / 1000;
    console.log(`wisp entry create --data (${BULK_ENTRIES} entries): ${seconds.toFixed(1)} s`);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(BULK_ENTRIES + 1);
    expect(lines.at(-1)).toBe(`Created ${BULK_ENTRIES} of ${BULK_ENTRIES} entries.`);
    expect((await ok(['entry', 'count', '--parentID', `spiffe://${TD}/spire/agent/join_token/bulk`])).stdout).toBe(`${BULK_ENTRIES} registration entries\n`);
    expect(seconds).toBeLessThan(60);
  });

  it('draws a progress indicator on a terminal, in admin API batches of at most 500', async () => {
    const file = bulkFile(1200, 'tty');
    const run = await wisp(['entry', 'create', '--data', file], { tty: true });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('\rcreating entries: 500/1200 (41%)');
    expect(run.stdout).toContain('\rcreating entries: 1000/1200 (83%)');
    expect(run.stdout).toContain('\rcreating entries: 1200/1200 (100%)');
    expect(run.stdout).toContain('Created 1200 of 1200 entries.');
  });

  it('draws no progress when stderr is not a terminal', async () => {
    const run = await ok(['entry', 'count']);
    expect(run.stderr).toBe('');
  });
});
