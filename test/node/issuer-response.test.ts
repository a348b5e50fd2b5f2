// How the agent and the CLI read the issuer's answers (src/node/issuer-response.ts), and the CLI's admin
// client over the shared HTTP exchange (src/node/http-request.ts) against a local server.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminClient } from '../../src/node/admin-client.js';
import { codeForStatus, issuerError, parseJsonBody } from '../../src/node/issuer-response.js';

describe('issuer answers', () => {
  it.each([
    [401, 'ERR_UNAUTHENTICATED'],
    [403, 'ERR_PERMISSION_DENIED'],
    [404, 'ERR_NOT_FOUND'],
    [413, 'ERR_REQUEST_TOO_LARGE'],
    [400, 'ERR_BAD_REQUEST'],
    [500, 'ERR_INTERNAL'],
    [502, 'ERR_UNAVAILABLE'],
    [503, 'ERR_UNAVAILABLE'],
    [504, 'ERR_UNAVAILABLE'],
  ])('HTTP %d without Wisp error JSON → %s', (status, code) => {
    expect(codeForStatus(status)).toBe(code);
    expect(issuerError(status, undefined)).toEqual({ code, message: undefined });
  });

  it("keeps the issuer's code when it is one of ours, and its message", () => {
    expect(issuerError(403, { error: { code: 'ERR_PERMISSION_DENIED', message: 'no' } })).toEqual({ code: 'ERR_PERMISSION_DENIED', message: 'no' });
    expect(issuerError(503, { error: { code: 'ERR_MADE_UP', message: 'x' } })).toEqual({ code: 'ERR_UNAVAILABLE', message: 'x' });
    expect(parseJsonBody('')).toBeUndefined();
    expect(parseJsonBody('<html>')).toBeUndefined();
    expect(parseJsonBody('{"a":1}')).toEqual({ a: 1 });
  });
});

describe('the admin client', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const send = (status: number, body: string, headers: Record<string, string> = {}) => res.writeHead(status, headers).end(body);
      if (req.url === '/json') return send(200, JSON.stringify({ auth: req.headers.authorization, query: req.url }));
      if (req.url === '/denied') return send(403, JSON.stringify({ error: { code: 'ERR_PERMISSION_DENIED', message: 'not an admin' } }));
      if (req.url === '/html') return send(502, '<html>bad gateway</html>');
      if (req.url === '/text') return send(200, 'hello');
      if (req.url === '/moved') return send(301, '', { location: '/json' });
      return send(500, 'oops');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const client = () => createAdminClient({ serverUrl: base, credential: async () => 'tok', timeoutMs: 5_000 });

  it('sends the bearer credential and reads JSON', async () => {
    expect(await client().request('GET', '/json')).toEqual({ auth: 'Bearer tok', query: '/json' });
  });

  it('turns every failure into one WispError', async () => {
    await expect(client().request('GET', '/denied')).rejects.toMatchObject({ code: 'ERR_PERMISSION_DENIED', message: 'not an admin' });
    await expect(client().request('GET', '/html')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: 'GET /html: HTTP 502 Bad Gateway' });
    await expect(client().request('GET', '/other')).rejects.toMatchObject({ code: 'ERR_INTERNAL', message: 'GET /other: HTTP 500 Internal Server Error' });
    await expect(client().request('GET', '/text')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: 'GET /text: the issuer answered with something that is not JSON' });
    await expect(client().request('GET', '/moved')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: expect.stringMatching(/cannot reach the issuer at .* \(unexpected redirect \(HTTP 301\)\)/) });
    const dead = createAdminClient({ serverUrl: 'http://127.0.0.1:1', credential: async () => 'tok', timeoutMs: 5_000 });
    await expect(dead.request('GET', '/json')).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: 'cannot reach the issuer at http://127.0.0.1:1 (ECONNREFUSED)' });
  });
});
