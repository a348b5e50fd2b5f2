// Pure parts of the wisp CLI: SPIRE-style flag spelling, connection config precedence, batch splitting.
import { describe, expect, it } from 'vitest';
import { splitChunks, summarizeFailures } from '../../src/cli/batch.js';
import { parseCliConfig } from '../../src/cli/config.js';
import { formatErrorLine, CliUsageError } from '../../src/cli/context.js';
import { normalizeSpireArgs, parseSpiffeIdFlag, parseTtlFlag } from '../../src/cli/flags.js';
import { WispError } from '../../src/shared/errors.js';

describe('normalizeSpireArgs', () => {
  it("turns SPIRE's single-dash long flags into commander's double dash", () => {
    expect(normalizeSpireArgs(['entry', 'create', '-spiffeID', 'spiffe://example.org/a', '-selector', 'unix:uid:1000', '-admin', '-data', '-'])).toEqual([
      'entry', 'create', '--spiffeID', 'spiffe://example.org/a', '--selector', 'unix:uid:1000', '--admin', '--data', '-',
    ]);
  });

  it('leaves short flags, values and everything after -- alone', () => {
    expect(normalizeSpireArgs(['-h', '--output', 'json', '-output=json', '--', '-spiffeID'])).toEqual(['-h', '--output', 'json', '--output=json', '--', '-spiffeID']);
  });
});

describe('flag values', () => {
  it('validates SPIFFE IDs locally and names the flag', () => {
    expect(() => parseSpiffeIdFlag('--spiffeID', 'spiffe://Example.org/x')).toThrow(
      expect.objectContaining({ code: 'ERR_SPIFFE_ID_INVALID', message: expect.stringMatching(/^--spiffeID "spiffe:\/\/Example\.org\/x": /) }),
    );
  });

  it('takes TTLs in seconds or as durations', () => {
    expect(parseTtlFlag('--ttl', '90')).toBe(90);
    expect(parseTtlFlag('--ttl', '1h')).toBe(3600);
    expect(() => parseTtlFlag('--ttl', 'soon')).toThrow(CliUsageError);
  });
});

describe('parseCliConfig', () => {
  const file = { path: '/etc/wisp/cli.json', content: { serverURL: 'https://file.example.org', adminToken: 'from-file' } };

  it('merges file < env < flags', () => {
    expect(parseCliConfig(file, {}, {})).toMatchObject({ serverUrl: 'https://file.example.org', adminToken: 'from-file', timeoutSeconds: 30 });
    expect(parseCliConfig(file, { WISP_ADMIN_TOKEN: 'from-env' }, {})).toMatchObject({ adminToken: 'from-env' });
    expect(parseCliConfig(file, { WISP_ADMIN_TOKEN: 'from-env' }, { adminToken: 'from-flag', serverURL: 'http://127.0.0.1:8787/' })).toMatchObject({
      adminToken: 'from-flag',
      serverUrl: 'http://127.0.0.1:8787',
    });
  });

  it('names the key and its source in errors', () => {
    expect(() => parseCliConfig(undefined, {}, {})).toThrow(/^serverURL: is required/);
    expect(() => parseCliConfig(undefined, { WISP_SERVER_URL: 'http://wisp.example.org' }, {})).toThrow(/serverURL \(from env WISP_SERVER_URL\): http is allowed only for loopback/);
    expect(() => parseCliConfig({ path: 'c.json', content: { serverUrl: 'x' } }, {}, {})).toThrow(/serverUrl \(from file c\.json\): unknown key/);
    expect(() => parseCliConfig(file, {}, { timeout: '0' })).toThrow(/timeout \(from flag --timeout\)/);
  });
});

describe('batches', () => {
  const items = (n: number, bytes = 10) => Array.from({ length: n }, (_, i) => ({ index: i, item: 'x'.repeat(bytes) }));

  it('splits by item count and by encoded size, keeping order', () => {
    expect(splitChunks(items(1201), 500, 1e9).map((c) => c.length)).toEqual([500, 500, 201]);
    expect(splitChunks(items(10, 100), 500, 350).map((c) => c.length)).toEqual([3, 3, 3, 1]);
    expect(splitChunks(items(2, 1000), 500, 10).map((c) => c.length)).toEqual([1, 1]);
  });

  it('sums up failures in one line with the first failure', () => {
    const ok = { status: { code: 'OK', message: '' } };
    expect(summarizeFailures([ok, ok], 'create')).toBeUndefined();
    const failure = summarizeFailures([ok, { status: { code: 'ERR_ENTRY_EXISTS', message: 'exists' } }, ok], 'create')!;
    expect(failure.code).toBe('ERR_ENTRY_EXISTS');
    expect(failure.message).toBe('failed to create 1 of 3 entries (first: #2: ERR_ENTRY_EXISTS: exists)');
  });
});

describe('formatErrorLine', () => {
  it('is one line with the code, never a stack', () => {
    expect(formatErrorLine(new WispError('ERR_ENTRY_NOT_FOUND', 'no entry\nwith this id'))).toBe('Error: ERR_ENTRY_NOT_FOUND: no entry with this id');
    expect(formatErrorLine(new CliUsageError("unknown option '--nope'"))).toBe("Error: ERR_USAGE: unknown option '--nope'");
    expect(formatErrorLine(new TypeError('boom'))).toBe('Error: ERR_INTERNAL: TypeError: boom');
  });
});
