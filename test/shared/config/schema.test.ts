// The configuration toolkit (src/shared/config/schema.ts), on both runtimes: the value kinds the four
// parsers share and the one-line error made from the first valibot issue.
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import {
  durationSeconds,
  issuerBaseUrl,
  jsonObject,
  keyCheck,
  knownKeys,
  nonEmptyString,
  parseConfig,
  parsedBy,
  secret,
  wholeNumber,
} from '../../../src/shared/config/schema.js';
import { WispError } from '../../../src/shared/errors.js';

const message = (schema: v.GenericSchema, input: unknown, sourceOf?: (key: string) => string | undefined): string => {
  try {
    parseConfig(schema, input, sourceOf);
  } catch (e) {
    expect(e).toBeInstanceOf(WispError);
    expect((e as WispError).code).toBe('ERR_CONFIG_INVALID');
    return (e as WispError).message;
  }
  throw new Error('expected a configuration error');
};

describe('parseConfig', () => {
  it('names the key path of the first issue, and its source when there is one', () => {
    const schema = v.object({ A: knownKeys({ list: v.array(v.string('must be text')) }), B: v.string('must be text') });
    expect(message(schema, { A: { list: ['x', 1] }, B: 2 })).toBe('A.list[1]: must be text');
    expect(message(schema, { A: { list: [] }, B: 2 }, (k) => `env ${k}`)).toBe('B (from env B): must be text');
    expect(message(schema, { A: { list: [], lsit: [] }, B: 'b' })).toBe('A.lsit: unknown key; known keys: list');
    expect(message(schema, { A: {}, B: 'b' })).toBe('A.list: is required');
  });

  it('stops at the first issue of a pipe', () => {
    expect(message(v.object({ S: secret(32) }), {})).toBe('S: secret is not set (wrangler secret put, or .dev.vars locally)');
    expect(message(v.object({ S: secret(32) }), { S: 'short' })).toBe('S: must be at least 32 characters');
  });

  it('reports a check between keys on the key it names', () => {
    const schema = v.pipe(v.object({ lo: v.number(), hi: v.number() }), keyCheck('hi', (o: { lo: number; hi: number }) => o.hi > o.lo, (o) => `must be above ${o.lo}`));
    expect(message(schema, { lo: 5, hi: 1 })).toBe('hi: must be above 5');
  });
});

describe('value kinds', () => {
  const one = (schema: v.GenericSchema, input: unknown) => message(v.object({ k: schema }), { k: input });
  const ok = <S extends v.GenericSchema>(schema: S, input: unknown) => parseConfig(schema, input);

  it.each([
    ['90s', 90],
    ['5m', 300],
    ['1h', 3600],
    ['7d', 604800],
  ])('durationSeconds %s → %d', (input, seconds) => expect(ok(durationSeconds(), input)).toBe(seconds));

  it('durationSeconds refuses what is not a duration, and short ones', () => {
    expect(one(durationSeconds(), 'forever')).toBe('k: "forever" is not a duration (e.g. 90s, 5m, 1h, 7d)');
    expect(one(durationSeconds(60), '59s')).toBe('k: must be at least 60s');
  });

  it('wholeNumber takes numbers and digit strings only, within bounds', () => {
    const n = wholeNumber(1, 10, { notWhole: (x) => `not whole (${JSON.stringify(x)})`, outOfRange: 'out of range' });
    expect(ok(n, '7')).toBe(7);
    expect(ok(n, 7)).toBe(7);
    expect(one(n, 'soon')).toBe('k: not whole ("soon")');
    expect(one(n, 2.5)).toBe('k: not whole (2.5)');
    expect(one(n, ' 7')).toBe('k: not whole (" 7")');
    expect(one(n, '0')).toBe('k: out of range');
    expect(one(n, 11)).toBe('k: out of range');
  });

  it('nonEmptyString, jsonObject and parsedBy', () => {
    expect(one(nonEmptyString(), '  ')).toBe('k: must be a non-empty string');
    expect(ok(jsonObject('must be a JSON object'), '{"a":1}')).toEqual({ a: 1 });
    expect(ok(jsonObject('must be a JSON object'), { a: 1 })).toEqual({ a: 1 });
    expect(one(jsonObject('must be a JSON object', 'must be an object'), '[')).toBe('k: must be a JSON object');
    expect(one(jsonObject('must be a JSON object', 'must be an object'), [])).toBe('k: must be an object');
    expect(one(v.pipe(v.string(), parsedBy((s: string) => { throw new Error(`bad ${s}`); })), 'x')).toBe('k: bad x');
  });

  it('issuerBaseUrl: https, or http on loopback; no credentials, query or fragment; no trailing slash', () => {
    expect(ok(issuerBaseUrl(), 'https://wisp.example.org/')).toBe('https://wisp.example.org');
    expect(ok(issuerBaseUrl(), 'http://127.0.0.2:8787')).toBe('http://127.0.0.2:8787');
    expect(one(issuerBaseUrl(), 'http://wisp.example.org')).toBe('k: http is allowed only for loopback hosts (got wisp.example.org); use https');
    expect(one(issuerBaseUrl(), 'ftp://x')).toBe('k: scheme must be https (got ftp)');
    expect(one(issuerBaseUrl(), 'nope')).toBe('k: "nope" is not a URL');
    expect(one(issuerBaseUrl(), '')).toBe('k: must be a URL string');
    expect(one(issuerBaseUrl(), 'https://u:p@x.example')).toBe('k: must not contain credentials');
    expect(one(issuerBaseUrl(), 'https://x.example/?q')).toBe('k: must not contain a query or fragment');
  });
});
