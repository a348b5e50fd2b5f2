// The one loopback rule (src/shared/net/loopback.ts), on both runtimes: one table of host names, and the
// "https, or http only on loopback" URL rule every caller uses.
import { describe, expect, it } from 'vitest';
import { isHttpsOrLoopbackHttp, isLoopbackHost } from '../../../src/shared/net/loopback.js';

const HOSTS: [string, boolean][] = [
  ['localhost', true],
  ['LOCALHOST', true],
  ['LocalHost', true],
  ['127.0.0.1', true],
  ['127.0.0.2', true],
  ['127.10.0.1', true],
  ['127.255.255.255', true],
  ['[::1]', true],
  ['::1', true],
  ['0:0:0:0:0:0:0:1', true],
  ['[0:0:0:0:0:0:0:1]', true],
  ['::0001', true],
  ['128.0.0.1', false],
  ['126.255.255.255', false],
  ['0.0.0.0', false],
  ['10.0.0.1', false],
  ['127.256.0.1', false],
  ['127.0.0', false],
  ['127.0.0.1.nip.io', false],
  ['localhost.example.com', false],
  ['localhost.example', false],
  ['foo.localhost', false],
  ['localhost.', false],
  ['127.0.0.1.', false],
  ['[::]', false],
  ['::', false],
  ['[::2]', false],
  ['::ffff:127.0.0.1', false],
  ['[::ffff:7f00:1]', false],
  ['', false],
  ['[', false],
  ['example.com', false],
];

describe('isLoopbackHost', () => {
  it.each(HOSTS)('%j → %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });

  it('takes what the URL parser makes of a host (lower case, canonical IPv4 and IPv6)', () => {
    for (const [url, loopback] of [
      ['http://LOCALHOST:8787/', true],
      ['http://127.1/', true],
      ['http://[0:0::1]/', true],
      ['http://localhost./', false],
      ['http://foo.localhost/', false],
    ] as const) {
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(loopback);
    }
  });
});

describe('isHttpsOrLoopbackHttp', () => {
  it.each([
    ['https://issuer.example', true],
    ['https://127.0.0.1', true],
    ['http://localhost:8787', true],
    ['http://127.0.0.2:8787', true],
    ['http://[::1]:8787', true],
    ['http://issuer.example', false],
    ['http://foo.localhost', false],
    ['ftp://127.0.0.1', false],
    ['ws://localhost', false],
  ])('%s → %s', (url, ok) => {
    expect(isHttpsOrLoopbackHttp(new URL(url))).toBe(ok);
  });
});
