// Entry parsing rules, table-driven (pure; runs on Node and workerd).
import { describe, expect, it } from 'vitest';
import { WispError } from '../../../src/shared/errors.js';
import { isEntryExpired, parseEntryInput, validateEntryInput } from '../../../src/shared/registry/entry-validation.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';

const td = parseTrustDomain('example.org');
const base = { spiffeId: 'spiffe://example.org/web', parentId: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1' }] };

function codeOf(input: unknown): string {
  try {
    parseEntryInput(input, td);
    return 'OK';
  } catch (e) {
    return e instanceof WispError ? e.code : 'THROWN';
  }
}

describe('parseEntryInput', () => {
  it('fills defaults and sorts selectors', () => {
    const e = parseEntryInput({ ...base, selectors: [{ type: 'z', value: '1' }, { type: 'a', value: '2' }] }, td);
    expect(e).toEqual({
      spiffeId: base.spiffeId,
      parentId: base.parentId,
      selectors: [{ type: 'a', value: '2' }, { type: 'z', value: '1' }],
      x509SvidTtl: 0,
      jwtSvidTtl: 0,
      dnsNames: [],
      federatesWith: [],
      admin: false,
      downstream: false,
      hint: '',
      expiresAt: 0,
    });
  });

  it('accepts a node alias (parent = server ID) and nested parents', () => {
    expect(codeOf({ ...base, parentId: 'spiffe://example.org/spire/server' })).toBe('OK');
    expect(codeOf({ ...base, parentId: 'spiffe://example.org/some/workload' })).toBe('OK');
  });

  it.each([
    [{ spiffeId: 'spiffe://example.org' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://example.org/spire/agent/y' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://example.org/a#f' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://user@example.org/a' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://exa$mple.org/a' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://example.org/a b' }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 42 }, 'ERR_SPIFFE_ID_INVALID'],
    [{ parentId: undefined }, 'ERR_SPIFFE_ID_INVALID'],
    [{ spiffeId: 'spiffe://other.org/a' }, 'ERR_TRUST_DOMAIN_MISMATCH'],
    [{ parentId: 'spiffe://example.org/web' }, 'ERR_ENTRY_INVALID'],
    [{ selectors: undefined }, 'ERR_SELECTOR_INVALID'],
    [{ selectors: ['unix:uid:1'] }, 'OK'],
    [{ selectors: [{ type: 'bad type', value: 'x' }] }, 'ERR_SELECTOR_INVALID'],
    [{ x509SvidTtl: 2_592_000 }, 'OK'],
    [{ x509SvidTtl: 2_592_001 }, 'ERR_ENTRY_INVALID'],
    [{ jwtSvidTtl: 86_400 }, 'OK'],
    [{ jwtSvidTtl: 86_401 }, 'ERR_ENTRY_INVALID'],
    [{ jwtSvidTtl: '60' }, 'ERR_ENTRY_INVALID'],
    [{ dnsNames: ['ok.example', 'ok.example'] }, 'ERR_ENTRY_INVALID'],
    [{ dnsNames: Array.from({ length: 33 }, (_, i) => `h${i}.example`) }, 'ERR_ENTRY_INVALID'],
    [{ federatesWith: ['example.org'] }, 'ERR_ENTRY_INVALID'],
    [{ federatesWith: ['partner.org'] }, 'OK'],
    [{ hint: 'a'.repeat(1024) }, 'OK'],
    [{ hint: 'a'.repeat(1025) }, 'ERR_ENTRY_INVALID'],
    [{ admin: 'yes' }, 'ERR_ENTRY_INVALID'],
    [{ expiresAt: 1.5 }, 'ERR_ENTRY_INVALID'],
    [{ id: 'x'.repeat(256) }, 'ERR_ENTRY_INVALID'],
    // URLs remove "." and ".." path segments: /entries/.. could never reach such an entry
    [{ id: '.' }, 'ERR_ENTRY_INVALID'],
    [{ id: '..' }, 'ERR_ENTRY_INVALID'],
    [{ id: '...' }, 'OK'],
    [{ id: '.a' }, 'OK'],
    [{ id: 'a..b' }, 'OK'],
    [{ revisionNumber: 3, createdAt: 4 }, 'OK'],
  ])('%j → %s', (override, code) => {
    expect(codeOf({ ...base, ...override })).toBe(code);
  });

  it('refuses non-objects with ERR_BAD_REQUEST, and validateEntryInput returns the same as data', () => {
    expect(codeOf(null)).toBe('ERR_BAD_REQUEST');
    expect(validateEntryInput({ ...base, hint: 5 }, td)).toEqual({ ok: false, error: { code: 'ERR_ENTRY_INVALID', message: 'hint must be a string' } });
    expect(validateEntryInput(base, td).ok).toBe(true);
  });
});

it('an entry expires at expiresAt; 0 never expires', () => {
  expect(isEntryExpired({ expiresAt: 0 }, 10)).toBe(false);
  expect(isEntryExpired({ expiresAt: 10 }, 9)).toBe(false);
  expect(isEntryExpired({ expiresAt: 10 }, 10)).toBe(true);
});
