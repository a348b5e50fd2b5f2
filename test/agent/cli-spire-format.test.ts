// SPIRE's `entry create -data` format (common.RegistrationEntries, Go JSON names) read and written by the CLI.
import { describe, expect, it } from 'vitest';
import { formatSpireEntry, formatSpireEntryFile, parseSpireEntry, parseSpireEntryFile, parseSpireEntryText } from '../../src/cli/spire-format.js';
import type { Entry } from '../../src/shared/registry/entry.js';
import type { SpiffeId, TrustDomain } from '../../src/shared/spiffe/id.js';

const base = {
  spiffe_id: 'spiffe://example.org/web',
  parent_id: 'spiffe://example.org/spire/agent/join_token/abc',
  selectors: [{ type: 'unix', value: 'uid:1000' }],
};

const entry: Entry = {
  id: 'e1',
  spiffeId: 'spiffe://example.org/web' as SpiffeId,
  parentId: 'spiffe://example.org/spire/agent/join_token/abc' as SpiffeId,
  selectors: [{ type: 'unix', value: 'uid:1000' }],
  x509SvidTtl: 3600,
  jwtSvidTtl: 0,
  dnsNames: ['web.internal'],
  federatesWith: ['other.org' as TrustDomain],
  admin: true,
  downstream: false,
  hint: 'web',
  expiresAt: 1900000000,
  revisionNumber: 2,
  createdAt: 1700000000,
};

describe('parseSpireEntry', () => {
  it('reads the -data field names of common.RegistrationEntry', () => {
    expect(
      parseSpireEntry({
        ...base,
        entry_id: 'custom-1',
        x509_svid_ttl: 3600,
        jwt_svid_ttl: 300,
        federates_with: ['spiffe://other.org'],
        admin: true,
        downstream: true,
        entryExpiry: 1900000000,
        dns_names: ['web.internal'],
        hint: 'web',
        revision_number: 4,
        store_svid: false,
      }),
    ).toEqual({
      id: 'custom-1',
      spiffeId: base.spiffe_id,
      parentId: base.parent_id,
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      x509SvidTtl: 3600,
      jwtSvidTtl: 300,
      federatesWith: ['other.org'],
      admin: true,
      downstream: true,
      expiresAt: 1900000000,
      dnsNames: ['web.internal'],
      hint: 'web',
      revisionNumber: 4,
    });
  });

  it('defaults omitted fields to their zero values, as Go does', () => {
    expect(parseSpireEntry(base)).toMatchObject({ x509SvidTtl: 0, jwtSvidTtl: 0, admin: false, downstream: false, hint: '', expiresAt: 0, dnsNames: [], federatesWith: [] });
  });

  it("accepts SPIRE's entry show -output json form (protojson of types.Entry)", () => {
    const parsed = parseSpireEntry({
      id: 'abc',
      spiffe_id: { trust_domain: 'example.org', path: '/web' },
      parent_id: { trust_domain: 'example.org', path: '/spire/agent/x' },
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      expires_at: '1900000000',
      revision_number: '3',
      created_at: '1700000000',
      federates_with: ['other.org'],
    });
    expect(parsed).toMatchObject({ id: 'abc', spiffeId: 'spiffe://example.org/web', parentId: 'spiffe://example.org/spire/agent/x', expiresAt: 1900000000, federatesWith: ['other.org'] });
  });

  it('treats the deprecated ttl as both TTLs unless they are given', () => {
    expect(parseSpireEntry({ ...base, ttl: 200 })).toMatchObject({ x509SvidTtl: 200, jwtSvidTtl: 200 });
    expect(parseSpireEntry({ ...base, ttl: 200, jwt_svid_ttl: 60 })).toMatchObject({ x509SvidTtl: 200, jwtSvidTtl: 60 });
  });

  it.each([
    [{ ...base, spiffe_id: 'http://example.org/web' }, 'ERR_SPIFFE_ID_INVALID', /spiffe_id/],
    [{ ...base, parent_id: undefined }, 'ERR_SPIFFE_ID_INVALID', /parent_id is required/],
    [{ ...base, selectors: [{ type: 'unix' }] }, 'ERR_SELECTOR_INVALID', /selectors/],
    [{ ...base, selectors: [] }, 'ERR_SELECTOR_INVALID', /at least one selector/],
    [{ ...base, spife_id: 'x' }, 'ERR_ENTRY_INVALID', /unknown field "spife_id"/],
    [{ ...base, x509_svid_ttl: -1 }, 'ERR_ENTRY_INVALID', /negative/],
    [{ ...base, admin: 'yes' }, 'ERR_ENTRY_INVALID', /admin/],
    [{ ...base, store_svid: true }, 'ERR_ENTRY_INVALID', /store_svid/],
    [{ ...base, entry_id: 'a', id: 'b' }, 'ERR_ENTRY_INVALID', /twice/],
  ])('rejects %j with %s', (input, code, message) => {
    expect(() => parseSpireEntry(input)).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
  });
});

describe('parseSpireEntryFile', () => {
  it('parses each entry on its own, so one bad entry does not stop the others', () => {
    const results = parseSpireEntryFile({ entries: [base, { ...base, spiffe_id: 'nope' }] });
    expect(results[0]!.ok).toBe(true);
    expect(results[1]).toEqual({ ok: false, error: expect.objectContaining({ code: 'ERR_SPIFFE_ID_INVALID' }) });
  });

  it('rejects a document without an entries array, and text that is not JSON, with one-line errors', () => {
    expect(() => parseSpireEntryFile([base])).toThrow(/\{"entries": \[\.\.\.\]\}/);
    expect(() => parseSpireEntryFile({ entry: [] })).toThrow(/"entries" array/);
    expect(() => parseSpireEntryText('{oops', 'f.json')).toThrow(/^f\.json: not valid JSON/);
  });
});

describe('formatSpireEntry', () => {
  it('writes the -data format with zero values omitted, and it reads back to the same entry', () => {
    const written = formatSpireEntry(entry);
    expect(written).toEqual({
      entry_id: 'e1',
      spiffe_id: 'spiffe://example.org/web',
      parent_id: 'spiffe://example.org/spire/agent/join_token/abc',
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      x509_svid_ttl: 3600,
      federates_with: ['spiffe://other.org'],
      admin: true,
      entryExpiry: 1900000000,
      dns_names: ['web.internal'],
      revision_number: 2,
      hint: 'web',
    });
    const { id, revisionNumber: _r, createdAt: _c, ...rest } = entry;
    expect(parseSpireEntry(JSON.parse(JSON.stringify(written)))).toEqual({ ...rest, id, revisionNumber: 2 });
  });

  it('wraps entries in {"entries": [...]}', () => {
    expect(formatSpireEntryFile([entry]).entries).toHaveLength(1);
  });
});
