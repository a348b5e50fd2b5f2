// The agent's `rateLimit` key (SPIRE 1.13's experimental `ratelimit` block): SPIRE's snake_case names and
// Wisp's camelCase both accepted, per second, 0 = unlimited; anything else is the one-line config error.
import { describe, expect, it } from 'vitest';
import { MAX_RATE_LIMIT_PER_SECOND, parseAgentConfig } from '../../src/agent/config.js';

const file = (content: unknown) => ({ path: '/etc/wisp/agent.json', content });
const base = { serverUrl: 'https://wisp.example.com', trustDomain: 'example.org' };
const parse = (rateLimit: unknown) => parseAgentConfig(file({ ...base, rateLimit }), {}, {}).rateLimit;

describe('agent config: rateLimit', () => {
  it('is absent by default (no limits, as SPIRE)', () => {
    expect(parseAgentConfig(file(base), {}, {}).rateLimit).toBeUndefined();
  });

  it("accepts SPIRE's names (its example block) and returns them in camelCase", () => {
    expect(
      parse({ fetch_x509_svid: 100, fetch_jwt_svid: 500, fetch_x509_bundles: 20, fetch_jwt_bundles: 20, stream_secrets: 50, fetch_secrets: 50 }),
    ).toEqual({ fetchX509Svid: 100, fetchJwtSvid: 500, fetchX509Bundles: 20, fetchJwtBundles: 20, streamSecrets: 50, fetchSecrets: 50 });
  });

  it('accepts camelCase, a mix, 0 (unlimited) and an empty block', () => {
    expect(parse({ fetchJwtSvid: 0, stream_secrets: 7 })).toEqual({ fetchJwtSvid: 0, streamSecrets: 7 });
    expect(parse({})).toEqual({});
    expect(parse({ fetch_secrets: MAX_RATE_LIMIT_PER_SECOND })).toEqual({ fetchSecrets: MAX_RATE_LIMIT_PER_SECOND });
  });

  it('reads WISP_RATE_LIMIT as JSON', () => {
    expect(parseAgentConfig(file(base), { WISP_RATE_LIMIT: '{"fetch_jwt_svid": 3}' }, {}).rateLimit).toEqual({ fetchJwtSvid: 3 });
    expect(() => parseAgentConfig(file(base), { WISP_RATE_LIMIT: 'fetch_jwt_svid=3' }, {})).toThrow(/^rateLimit \(from env WISP_RATE_LIMIT\): must be a JSON object$/);
  });

  const RATE = /must be a whole number of calls per second from 0 \(unlimited\) to 1000000$/;
  it.each([
    [{ fetch_jwt_svid: -1 }, /^rateLimit\.fetch_jwt_svid \(from file \/etc\/wisp\/agent.json\): /],
    [{ fetchX509Svid: '10' }, /^rateLimit\.fetchX509Svid \(from file \/etc\/wisp\/agent.json\): /],
    [{ stream_secrets: 1.5 }, /^rateLimit\.stream_secrets /],
    [{ fetch_secrets: null }, /^rateLimit\.fetch_secrets /],
    [{ fetch_secrets: MAX_RATE_LIMIT_PER_SECOND + 1 }, /^rateLimit\.fetch_secrets /],
  ])('rejects %j with the one-line error', (rateLimit, where) => {
    expect(() => parse(rateLimit)).toThrow(where);
    expect(() => parse(rateLimit)).toThrow(RATE);
  });

  it.each([
    [{ fetch_jwt_svids: 1 }, /^rateLimit\.fetch_jwt_svids \(from file \/etc\/wisp\/agent.json\): unknown key; known keys: fetchX509Svid, fetch_x509_svid, /],
    [{ fetch_jwt_svid: 1, fetchJwtSvid: 2 }, /^rateLimit\.fetch_jwt_svid .*: fetchJwtSvid and fetch_jwt_svid are the same limit; give one$/],
    [[1], /^rateLimit \(from file \/etc\/wisp\/agent.json\): must be an object of calls per second/],
    [100, /^rateLimit .*must be an object of calls per second/],
  ])('rejects %j', (rateLimit, message) => {
    expect(() => parse(rateLimit)).toThrow(message);
  });
});
