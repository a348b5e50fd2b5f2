import { describe, expect, it } from 'vitest';
import { dnsNameProblem } from '../../src/shared/spiffe/dns-name.js';

// The one DNS-name rule (entry validation, admin mint route, CA); cases from both former copies.
describe('dnsNameProblem', () => {
  it.each([
    ['example.org', true],
    ['*.example.org', true],
    ['a-b.c1.example', true],
    ['localhost', true],
    ['A.Example.ORG', true],
    [`${'a'.repeat(63)}.org`, true],
    [`${'a.'.repeat(126)}a`, true],
    ['', false],
    ['*', false],
    ['a.*.org', false],
    ['*a.example.org', false],
    ['*.*.example.org', false],
    ['-a.example.org', false],
    ['a-.example.org', false],
    ['a..example.org', false],
    ['example.org.', false],
    ['bad name', false],
    ['a_b.example.org', false],
    ['exämple.org', false],
    [`${'a'.repeat(64)}.org`, false],
    [`${'a.'.repeat(127)}ab`, false],
  ])('%s valid: %s', (name, valid) => {
    expect(dnsNameProblem(name) === undefined).toBe(valid);
  });

  it('says which rule failed', () => {
    expect(dnsNameProblem('')).toBe('DNS name is empty');
    expect(dnsNameProblem(`${'a.'.repeat(127)}ab`)).toBe('DNS name is longer than 253 bytes');
    expect(dnsNameProblem('a.*.org')).toBe('DNS name "a.*.org": a wildcard is only allowed as the whole leftmost label');
    expect(dnsNameProblem('a_b.org')).toBe('DNS name "a_b.org": label "a_b" is not a valid RFC 1123 label');
    expect(dnsNameProblem(7)).toBe('DNS name must be a string');
  });
});
