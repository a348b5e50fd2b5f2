// End to end, token exchange (issue 19): a real OIDC token issuer on loopback (its own key, discovery document
// and JWKS, test/helpers/node/oidc-token-issuer.ts) trusted by the real issuer (wrangler dev, TOKEN_EXCHANGE
// with discovery over loopback http); `wisp exchange` (bin/wisp.js, no admin credential) trades its tokens for
// a JWT-SVID that jose verifies against the issuer's public JWKS, and for an X509-SVID (a key made by the CLI)
// that `openssl verify` accepts against the bundle the CLI wrote, with the entry's SPIFFE ID as URI SAN. A
// token that no entry authorizes gets nothing.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { openssl } from '../helpers/node/agent/openssl-kit.js';
import { toPem } from '../helpers/node/der.js';
import { startOidcTokenIssuer, type OidcTokenIssuer } from '../helpers/node/oidc-token-issuer.js';
import { ONE_LINE_ERROR, runWisp, type WispRunOptions } from '../helpers/node/wisp-cli.js';

const TD = 'exchange.example';
const AUD = 'https://wisp.exchange.example';
const SPIFFE_ID = `spiffe://${TD}/ci/acme/app`;
let root: string;
let tokens: OidcTokenIssuer;
let issuer: RunningIssuer;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-exchange-'));
  tokens = await startOidcTokenIssuer();
  const TOKEN_EXCHANGE = JSON.stringify({ allowLoopbackHttp: true, issuers: [{ alias: 'ci', issuer: tokens.url, audiences: [AUD], claims: ['repository', 'ref'] }] });
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD, vars: { TOKEN_EXCHANGE } });
  await adminCall(issuer, 'POST', '/entries', {
    spiffeId: SPIFFE_ID,
    parentId: `spiffe://${TD}/spire/exchange/ci`,
    selectors: [{ type: 'oidc', value: 'ci:repository:acme/app' }, { type: 'oidc', value: 'ci:ref:refs/heads/main' }],
    dnsNames: ['app.ci.exchange.example'],
  });
}, 180_000);

afterAll(async () => {
  await issuer?.stop();
  await tokens?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** `wisp exchange` with only the server URL in its environment: no admin credential. */
const exchange = (args: string[], options: WispRunOptions = {}) => runWisp(['exchange', ...args], { ...options, env: { WISP_SERVER_URL: issuer.url, ...options.env } });

function tokenFile(name: string, token: string): string {
  const file = join(root, name);
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

describe('wisp exchange against wrangler dev', () => {
  it('a JWT-SVID for the entry, verified with jose against the public JWKS; -output json gives the RFC 8693 answer', async () => {
    const file = tokenFile('main.jwt', await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/main' }));
    const run = await exchange(['--token-file', file, '--audience', 'https://deploy.example']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const jwks = createRemoteJWKSet(new URL(`${issuer.url}/keys`));
    const { payload } = await jwtVerify(run.stdout.trim(), jwks, { audience: 'https://deploy.example' });
    expect(payload.sub).toBe(SPIFFE_ID);
    expect(payload.repository).toBeUndefined();
    // the token issuer's keys were found by discovery
    expect(tokens.served.get('/.well-known/openid-configuration')).toBeGreaterThanOrEqual(1);
    expect(tokens.served.get('/jwks')).toBeGreaterThanOrEqual(1);

    const json = await exchange(['--token-file', '-', '--audience', 'https://a.example', '--audience', 'https://b.example', '-output', 'json'], { input: await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/main' }) });
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout) as { access_token: string; issued_token_type: string; token_type: string; expires_in: number };
    expect(body).toMatchObject({ issued_token_type: 'urn:ietf:params:oauth:token-type:jwt', token_type: 'N_A' });
    expect((await jwtVerify(body.access_token, jwks, { audience: 'https://b.example' })).payload.aud).toEqual(['https://a.example', 'https://b.example']);
  });

  it('an X509-SVID for a key made by the CLI: openssl verify accepts it against the written bundle; the URI SAN is the entry', async () => {
    const dir = join(root, 'svid');
    const file = tokenFile('x509.jwt', await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/main' }));
    const run = await exchange(['--token-file', file, '--write', dir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/X509-SVID written to/);
    const [svid, key, bundle] = ['svid.pem', 'svid_key.pem', 'svid_bundle.pem'].map((n) => join(dir, n)) as [string, string, string];
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(openssl('verify', '-CAfile', bundle, svid).trim()).toBe(`${svid}: OK`);
    const text = openssl('x509', '-in', svid, '-noout', '-text');
    expect(text).toContain(`URI:${SPIFFE_ID}`);
    expect(text).toContain('DNS:app.ci.exchange.example');
    // the key written is the certificate's
    expect(openssl('pkey', '-in', key, '-pubout').trim()).toBe(openssl('x509', '-in', svid, '-noout', '-pubkey').trim());
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('--csr: an openssl CSR naming another identity gets the entry\'s; the chain verifies against x509_bundle', async () => {
    const [key, csr, chain, bundle] = ['csr.key', 'csr.pem', 'chain.pem', 'bundle.pem'].map((n) => join(root, n)) as [string, string, string, string];
    openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=evil', '-addext', `subjectAltName=URI:spiffe://${TD}/evil`);
    const file = tokenFile('csr.jwt', await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/main' }));
    const run = await exchange(['--token-file', file, '--csr', csr, '-output', 'json']);
    expect(run.code).toBe(0);
    const body = JSON.parse(run.stdout) as { access_token: string; issued_token_type: string; x509_bundle: string[] };
    expect(body.issued_token_type).toBe('urn:spiffe:token-type:x509-svid');
    writeFileSync(chain, body.access_token);
    writeFileSync(bundle, body.x509_bundle.map((b) => toPem('CERTIFICATE', Buffer.from(b, 'base64'))).join(''));
    expect(openssl('verify', '-CAfile', bundle, chain).trim()).toBe(`${chain}: OK`);
    const text = openssl('x509', '-in', chain, '-noout', '-text');
    expect(text).toContain(`URI:${SPIFFE_ID}`);
    expect(text).not.toContain('/evil');
  });

  it('a token no entry authorizes gets nothing: unauthorized_client, no output, nothing written', async () => {
    const dir = join(root, 'nothing');
    for (const args of [['--audience', 'https://deploy.example'], ['--write', dir]]) {
      const file = tokenFile('dev.jwt', await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/dev' }));
      const run = await exchange(['--token-file', file, ...args]);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/token exchange refused: unauthorized_client: no registration entry authorizes this token/);
    }
    expect(() => statSync(dir)).toThrow();
    // and a token of the right claims for another audience than the issuer's is refused before any entry is read
    const wrongAud = await exchange(['--token-file', tokenFile('aud.jwt', await tokens.token('https://elsewhere', { repository: 'acme/app', ref: 'refs/heads/main' })), '--audience', 'x']);
    expect(wrongAud.code).toBe(1);
    expect(wrongAud.stderr).toMatch(/invalid_grant/);
    expect(issuer.output()).not.toContain(readFileSync(join(root, 'dev.jwt'), 'utf8').trim());
  });

  it('usage errors and a CSR the issuer refuses: one error line, exit 1', async () => {
    const file = tokenFile('usage.jwt', await tokens.token(AUD, { repository: 'acme/app', ref: 'refs/heads/main' }));
    const notCsr = join(root, 'not-a-csr.der');
    writeFileSync(notCsr, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]));
    const cases: [string[], RegExp][] = [
      [['--token-file', file], /ERR_USAGE: --audience is required/],
      [['--token-file', file, '--audience', 'a', '--write', join(root, 'w')], /ERR_USAGE: --audience is for a JWT-SVID/],
      [['--audience', 'a'], /ERR_USAGE: --token-file/],
      [['--token-file', file, '--csr', notCsr], /ERR_BAD_REQUEST: token exchange refused: invalid_request: csr: /],
    ];
    for (const [args, message] of cases) {
      const run = await exchange(args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toMatch(ONE_LINE_ERROR);
      expect(run.stderr).toMatch(message);
    }
  });
});
