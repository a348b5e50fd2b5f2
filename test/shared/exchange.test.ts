// Token exchange's pure rules (src/shared/exchange/): the TOKEN_EXCHANGE schema, RFC 8693 request parsing,
// the refusals made before any key is looked at, and the selectors a token's claims give.
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/shared/config/schema.js';
import { TOKEN_EXCHANGE_ENTRY, type TokenExchangeConfig } from '../../src/shared/exchange/config.js';
import { ExchangeError, parseExchangeRequest, TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT, TOKEN_TYPE_X509_SVID } from '../../src/shared/exchange/request.js';
import { exchangeParentId, selectorsOfToken, trustedIssuerOf } from '../../src/shared/exchange/subject-token.js';
import { parseTrustDomain } from '../../src/shared/spiffe/id.js';

const SCHEMA = v.object({ TOKEN_EXCHANGE: TOKEN_EXCHANGE_ENTRY });
const JWK = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k1' };
const base = { alias: 'github', issuer: 'https://token.actions.githubusercontent.com', audiences: ['https://wisp.example'], jwks: { keys: [JWK] } };
const parse = (value: unknown): TokenExchangeConfig | undefined => parseConfig(SCHEMA, { TOKEN_EXCHANGE: typeof value === 'string' ? value : JSON.stringify(value) }).TOKEN_EXCHANGE;
const problem = (value: unknown) => {
  try {
    parse(value);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('accepted');
};

describe('TOKEN_EXCHANGE', () => {
  it('is off when unset or empty, and fills in the defaults', () => {
    expect(parseConfig(SCHEMA, {}).TOKEN_EXCHANGE).toBeUndefined();
    expect(parse('')).toBeUndefined();
    const c = parse({ issuers: [base, { alias: 'gitlab', issuer: 'https://gitlab.com', audiences: ['x'] }] })!;
    expect(c.allowLoopbackHttp).toBe(false);
    expect(c.issuers[0]).toMatchObject({ alias: 'github', claims: ['sub'], clockSkewSeconds: 60, maxTokenAgeSeconds: 3600, replay: 'allow', keys: { kind: 'inline' } });
    expect(c.issuers[1]!.keys).toEqual({ kind: 'discovery' });
  });

  it.each([
    ['an unknown key', { issuers: [{ ...base, extra: 1 }] }, /unknown key/],
    ['no audiences', { issuers: [{ ...base, audiences: [] }] }, /at least one audience/],
    ['an alias with a colon', { issuers: [{ ...base, alias: 'a:b' }] }, /alias/],
    ['a claim with a colon', { issuers: [{ ...base, claims: ['a:b'] }] }, /claim name/],
    ['a duplicate alias', { issuers: [base, { ...base, issuer: 'https://other.example' }] }, /configured twice/],
    ['a duplicate issuer', { issuers: [base, { ...base, alias: 'other' }] }, /configured twice/],
    ['http issuer', { issuers: [{ ...base, issuer: 'http://token.example' }] }, /https/],
    ['loopback http without the flag', { issuers: [{ ...base, issuer: 'http://127.0.0.1:8080' }] }, /https/],
    ['http jwksUrl off loopback even with the flag', { allowLoopbackHttp: true, issuers: [{ alias: 'a', issuer: 'https://a.example', audiences: ['x'], jwksUrl: 'http://a.example/jwks' }] }, /jwksUrl/],
    ['jwks and jwksUrl', { issuers: [{ ...base, jwksUrl: 'https://a.example/jwks' }] }, /not both/],
    ['an HMAC key inline', { issuers: [{ ...base, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }] }, /RSA or EC public keys/],
    ['a private key inline', { issuers: [{ ...base, jwks: { keys: [{ ...JWK, d: 'x' }] } }] }, /RSA or EC public keys/],
    ['a replay policy', { issuers: [{ ...base, replay: 'sometimes' }] }, /allow" or "refuse/],
  ])('refuses %s', (_name, value, message) => {
    expect(problem(value)).toMatch(message);
  });

  it('accepts loopback http with allowLoopbackHttp', () => {
    expect(parse({ allowLoopbackHttp: true, issuers: [{ ...base, issuer: 'http://127.0.0.1:8080' }] })!.issuers[0]!.issuer).toBe('http://127.0.0.1:8080');
  });
});

describe('parseExchangeRequest', () => {
  const FORM = 'application/x-www-form-urlencoded';
  const form = (over: Record<string, string | string[] | undefined> = {}) => {
    const f = new URLSearchParams();
    const all = { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: 'a.b.c', subject_token_type: TOKEN_TYPE_ID_TOKEN, audience: ['x', 'y', 'x'], ...over };
    for (const [k, val] of Object.entries(all)) for (const one of val === undefined ? [] : Array.isArray(val) ? val : [val]) f.append(k, one);
    return f.toString();
  };
  const code = (contentType: string, body: string) => {
    try {
      parseExchangeRequest(contentType, body);
    } catch (e) {
      return (e as ExchangeError).error;
    }
    return 'accepted';
  };

  it('parses a request; audience repeats (deduplicated), the requested type defaults to a JWT', () => {
    expect(parseExchangeRequest(`${FORM}; charset=utf-8`, form({ scope: 'spiffe://example.org/ci/app' }))).toEqual({
      subjectToken: 'a.b.c',
      subjectTokenType: TOKEN_TYPE_ID_TOKEN,
      requestedTokenType: TOKEN_TYPE_JWT,
      audience: ['x', 'y'],
      spiffeId: 'spiffe://example.org/ci/app',
    });
  });

  it('a csr (base64url, padding tolerated) asks for an X509-SVID, with no audience', () => {
    for (const csr of ['MIIB', 'MIIBAA', 'MIIBAA==']) {
      expect(parseExchangeRequest(FORM, form({ audience: undefined, csr }))).toEqual({
        subjectToken: 'a.b.c',
        subjectTokenType: TOKEN_TYPE_ID_TOKEN,
        requestedTokenType: TOKEN_TYPE_X509_SVID,
        audience: [],
        csr: Uint8Array.from(atob(csr.replace(/=+$/, '') + '='.repeat((4 - (csr.replace(/=+$/, '').length % 4)) % 4)), (ch) => ch.charCodeAt(0)),
      });
    }
  });

  it.each([
    ['application/json', form(), 'invalid_request'],
    [FORM, form({ grant_type: undefined }), 'invalid_request'],
    [FORM, form({ grant_type: 'authorization_code' }), 'unsupported_grant_type'],
    [FORM, form({ grant_type: [TOKEN_EXCHANGE_GRANT, TOKEN_EXCHANGE_GRANT] }), 'invalid_request'],
    [FORM, form({ subject_token: undefined }), 'invalid_request'],
    [FORM, form({ subject_token: 'x'.repeat(16 * 1024 + 1) }), 'invalid_request'],
    [FORM, form({ subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }), 'invalid_request'],
    [FORM, form({ requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' }), 'invalid_request'],
    [FORM, form({ actor_token: 'a.b.c' }), 'invalid_request'],
    [FORM, form({ audience: undefined }), 'invalid_target'],
    [FORM, form({ audience: Array.from({ length: 17 }, (_, i) => `a${i}`) }), 'invalid_target'],
    [FORM, form({ audience: 'x'.repeat(513) }), 'invalid_target'],
    [FORM, form({ scope: 'https://not-a-spiffe-id' }), 'invalid_scope'],
    [FORM, form({ requested_token_type: TOKEN_TYPE_X509_SVID, audience: undefined }), 'invalid_request'],
    [FORM, form({ requested_token_type: TOKEN_TYPE_X509_SVID, csr: 'MIIB' }), 'invalid_target'],
    [FORM, form({ audience: undefined, csr: 'MII*' }), 'invalid_request'],
    [FORM, form({ audience: undefined, csr: ['MIIB', 'MIIB'] }), 'invalid_request'],
    [FORM, form({ csr: 'MIIB', requested_token_type: TOKEN_TYPE_JWT }), 'invalid_request'],
  ])('%s %s → %s', (contentType, body, error) => {
    expect(code(contentType, body)).toBe(error);
  });
});

describe('subject tokens before verification, and their selectors', () => {
  const config = parse({ issuers: [{ ...base, claims: ['repository', 'ref', 'groups', 'run'] }] })!;
  const issuer = config.issuers[0]!;
  const b64 = (o: unknown) => btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

  it('refuses alg none and HMAC by name, and an untrusted iss', async () => {
    const refusal = (t: string) => {
      try {
        trustedIssuerOf(t, config);
      } catch (e) {
        return `${(e as ExchangeError).error}: ${(e as Error).message}`;
      }
      return 'accepted';
    };
    expect(refusal(`${b64({ alg: 'none' })}.${b64({ iss: base.issuer })}.`)).toMatch(/^invalid_grant: .*alg none/);
    const hs = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(base.issuer).sign(new TextEncoder().encode('0123456789abcdef0123456789abcdef'));
    expect(refusal(hs)).toMatch(/^invalid_grant: .*HMAC/);
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    expect((await exportJWK(publicKey)).kty).toBe('EC');
    expect(refusal(await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer('https://evil.example').sign(privateKey))).toMatch(/not trusted/);
    expect(trustedIssuerOf(await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(base.issuer).sign(privateKey), config)).toBe(issuer);
  });

  it('maps configured claims to oidc:<alias>:<claim>:<value>, one per array element, skipping what no selector can hold', () => {
    const selectors = selectorsOfToken(issuer, { sub: 'not-configured', repository: 'acme/app', ref: 'refs/heads/main', groups: ['a', 'b', { x: 1 }], run: 42, other: 'x' });
    expect(selectors.map((s) => `${s.type}:${s.value}`).sort()).toEqual(['oidc:github:groups:a', 'oidc:github:groups:b', 'oidc:github:ref:refs/heads/main', 'oidc:github:repository:acme/app', 'oidc:github:run:42']);
    expect(selectorsOfToken(issuer, { repository: 'x\u0000y', ref: 'r'.repeat(2000) })).toEqual([]);
  });

  it('names the parent ID of the authorizing entries', () => {
    expect(exchangeParentId(parseTrustDomain('example.org'), 'github')).toBe('spiffe://example.org/spire/exchange/github');
  });
});
