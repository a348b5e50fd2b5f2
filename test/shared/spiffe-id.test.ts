import { describe, expect, it } from 'vitest';
import { WispError } from '../../src/shared/errors.js';
import { parseSpiffeId, parseTrustDomain, pathOf, trustDomainOf } from '../../src/shared/spiffe/id.js';

describe('parseSpiffeId (SPIFFE-ID.md §2)', () => {
  it.each([
    'spiffe://example.org',
    'spiffe://example.org/ns/prod/sa/web',
    'spiffe://a_b-c.d/Seg.-_9',
    `spiffe://example.org/${'a'.repeat(2048 - 'spiffe://example.org/'.length)}`,
  ])('accepts %s', (id) => {
    expect(parseSpiffeId(id)).toBe(id);
  });

  it.each([
    ['', 'empty'],
    ['http://example.org/x', 'scheme'],
    ['SPIFFE://example.org/x', 'lowercase'],
    ['spiffe:///x', 'trust domain is missing'],
    ['spiffe://Example.org/x', 'lowercase letters'],
    ['spiffe://exa mple.org', 'lowercase letters'],
    ['spiffe://user@example.org/x', 'userinfo'],
    ['spiffe://example.org:8443/x', 'port'],
    ['spiffe://example.org/x?y=1', 'query'],
    ['spiffe://example.org/x#frag', 'fragment'],
    ['spiffe://example.org/%41', 'percent'],
    ['spiffe://example.org/', 'trailing slash'],
    ['spiffe://example.org/a//b', 'empty segments'],
    ['spiffe://example.org/a/./b', 'dot segments'],
    ['spiffe://example.org/a/../b', 'dot segments'],
    ['spiffe://example.org/a b', 'path segment characters'],
    ['spiffe://example.org/ü', 'path segment characters'],
    [`spiffe://example.org/${'a'.repeat(2049 - 'spiffe://example.org/'.length)}`, 'longer than 2048'],
    [`spiffe://${'a'.repeat(256)}/x`, 'longer than 255'],
  ])('rejects %j (%s)', (id, why) => {
    let error: unknown;
    try {
      parseSpiffeId(id);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WispError);
    expect((error as WispError).code).toBe('ERR_SPIFFE_ID_INVALID');
    expect((error as WispError).message).toContain(why);
  });

  it('rejects non-strings', () => {
    expect(() => parseSpiffeId(42)).toThrow(WispError);
  });

  it('splits trust domain and path', () => {
    const id = parseSpiffeId('spiffe://example.org/ns/prod');
    expect(trustDomainOf(id)).toBe('example.org');
    expect(pathOf(id)).toBe('/ns/prod');
    expect(parseTrustDomain('example.org')).toBe('example.org');
    expect(() => parseTrustDomain('spiffe://example.org')).toThrow(WispError);
  });
});
