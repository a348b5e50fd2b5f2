import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIssuerClient, isAgentUnknownError, isTransientIssuerError } from '../../src/agent/issuer-client.js';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const client = (serverUrl: string, timeoutMs = 2_000) => createIssuerClient({ serverUrl, timeoutMs, clock: Date.now, credentials: () => undefined });

describe('issuer client', () => {
  it('sends attest unsigned as JSON to /agent/v1/attest', async () => {
    const seen: Array<{ url?: string; auth?: string; type?: string; body: string }> = [];
    const url = await serve((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"svid":{},"bundle":{"keys":[]}}');
      });
    });
    await client(url).attest({ attestationType: 'join_token', payload: { token: 't' }, csr: 'AA==' });
    expect(seen).toEqual([{ url: '/agent/v1/attest', auth: undefined, type: 'application/json', body: '{"attestationType":"join_token","payload":{"token":"t"},"csr":"AA=="}' }]);
  });

  it('turns {"error":{code,message}} into a WispError with that code', async () => {
    const url = await serve((_req, res) => res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":{"code":"ERR_JOIN_TOKEN_INVALID","message":"join token is invalid"}}'));
    await expect(client(url).attest({ attestationType: 'join_token', payload: {}, csr: '' })).rejects.toMatchObject({
      name: 'WispError',
      code: 'ERR_JOIN_TOKEN_INVALID',
      message: 'issuer POST /attest: join token is invalid',
    });
  });

  it('maps statuses without a known code, and classifies errors', async () => {
    const url = await serve((_req, res) => res.writeHead(503).end('<html>busy</html>'));
    const e = await client(url).attest({ attestationType: 'x', payload: {}, csr: '' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(isTransientIssuerError(e)).toBe(true);
    expect(isAgentUnknownError(e)).toBe(false);
  });

  it('times out a hanging issuer as ERR_UNAVAILABLE', async () => {
    const url = await serve(() => undefined);
    await expect(client(url, 200).attest({ attestationType: 'x', payload: {}, csr: '' })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringMatching(/timed out after 200 ms/),
    });
  });

  it('does not follow redirects, caps the response body, and names a refused connection', async () => {
    const redirecting = await serve((_req, res) => res.writeHead(307, { location: '/elsewhere' }).end());
    await expect(client(redirecting).attest({ attestationType: 'x', payload: {}, csr: '' })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: 'issuer POST /attest unreachable (unexpected redirect (HTTP 307))',
    });
    server?.closeAllConnections();
    await new Promise<void>((r) => server!.close(() => r()));

    const huge = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 9; i++) res.write(chunk);
      res.end('{}');
    });
    await expect(client(huge).attest({ attestationType: 'x', payload: {}, csr: '' })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: 'issuer POST /attest: response too large',
    });
    const port = new URL(huge).port;
    server?.closeAllConnections();
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;

    await expect(client(`http://127.0.0.1:${port}`).attest({ attestationType: 'x', payload: {}, csr: '' })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: 'issuer POST /attest unreachable (ECONNREFUSED)',
    });
  });

  it('refuses to sign a request without agent credentials', async () => {
    await expect(client('http://127.0.0.1:9').sync({})).rejects.toMatchObject({ code: 'ERR_UNAUTHENTICATED' });
  });
});
