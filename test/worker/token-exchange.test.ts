// Token exchange (POST /exchange/v1/token, issue 19): a token issuer with its own key, made here, trusted by
// the TOKEN_EXCHANGE config; its tokens are exchanged at the real app (real D1, the real CA core) for
// JWT-SVIDs that verify against the trust domain's JWKS, and every refusal signs nothing.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromBase64, toBase64Url } from '../../src/shared/encoding/base64.js';
import { certificatesFromPem } from '../../src/shared/encoding/pem.js';
import { makeCsr } from '../helpers/shared/agent-svid.js';
import { env } from 'cloudflare:workers';
import { createExchangeJtiStore } from '../../src/worker/db/exchange-jtis.js';
import { jwksServer } from '../helpers/workerd/attestation-harness.js';
import { createHarness, TD, type Harness } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

const ISSUER = 'https://ci.example.test';
const ONCE_ISSUER = 'https://once.example.test';
const URL_ISSUER = 'https://url.example.test';
const DISCOVERY_ISSUER = 'http://127.0.0.1:4444/oidc';
const LIAR_ISSUER = 'http://127.0.0.1:4445/oidc';
const PLAIN_ISSUER = 'http://127.0.0.1:4446/oidc';
const AUD = 'https://wisp.example.org';
const PARENT = `spiffe://${TD}/spire/exchange/ci`;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

let ca: TestCa;
let h: Harness;
let key: CryptoKey;
let jwk: JWK;
let keyServer: ReturnType<typeof jwksServer>;
let TOKEN_EXCHANGE: string;
const clock = { nowMs: Date.now() };
const nowS = () => Math.floor(clock.nowMs / 1000);
const uniq = () => crypto.randomUUID().slice(0, 8);

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  key = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'ci-key-1', alg: 'ES256', use: 'sig' };
  const issuer = (alias: string, iss: string, extra: Record<string, unknown> = {}) => ({ alias, issuer: iss, audiences: [AUD], claims: ['sub', 'repository', 'ref'], maxTokenAgeSeconds: 600, clockSkewSeconds: 30, ...extra });
  keyServer = jwksServer({ 'https://url.example.test/jwks': () => ({ keys: [jwk] }), 'http://127.0.0.1:4444/oidc/jwks': () => ({ keys: [jwk] }) });
  const serve = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (url === `${DISCOVERY_ISSUER}/.well-known/openid-configuration`) return Response.json({ issuer: DISCOVERY_ISSUER, jwks_uri: `${DISCOVERY_ISSUER}/jwks` });
    // discovery documents that must not be trusted: another issuer's, and one pointing at plain http
    if (url === `${LIAR_ISSUER}/.well-known/openid-configuration`) return Response.json({ issuer: DISCOVERY_ISSUER, jwks_uri: `${DISCOVERY_ISSUER}/jwks` });
    if (url === `${PLAIN_ISSUER}/.well-known/openid-configuration`) return Response.json({ issuer: PLAIN_ISSUER, jwks_uri: 'http://keys.example/jwks' });
    return keyServer.fetch(input, init);
  }) as typeof fetch;
  TOKEN_EXCHANGE = JSON.stringify({
    allowLoopbackHttp: true,
    issuers: [
      issuer('ci', ISSUER, { jwks: { keys: [jwk] } }),
      issuer('once', ONCE_ISSUER, { jwks: { keys: [jwk] }, replay: 'refuse' }),
      issuer('url', URL_ISSUER, { jwksUrl: 'https://url.example.test/jwks' }),
      issuer('disc', DISCOVERY_ISSUER),
      issuer('liar', LIAR_ISSUER),
      issuer('plain', PLAIN_ISSUER),
    ],
  });
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock, { vars: { TOKEN_EXCHANGE }, fetch: serve });
});

/** A token of the test issuer, signed with its key; `claims` override the defaults. */
async function token(claims: JWTPayload = {}, header: { kid?: string; alg?: string } = {}, iss = ISSUER, withJti = true): Promise<string> {
  const payload: JWTPayload = { sub: 'repo:acme/app:ref:refs/heads/main', iss, aud: AUD, iat: nowS() - 10, exp: nowS() + 300, ...(withJti ? { jti: crypto.randomUUID() } : {}), ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: 'ci-key-1', ...header } as { alg: string }).sign(key);
}

function exchange(subjectToken: string, extra: Record<string, string | string[]> = {}, headers: Record<string, string> = {}): Promise<Response> {
  const form = new URLSearchParams({ grant_type: GRANT, subject_token: subjectToken, subject_token_type: ID_TOKEN, requested_token_type: JWT });
  form.append('audience', 'https://relying.example');
  for (const [k, v] of Object.entries(extra)) {
    form.delete(k);
    for (const one of Array.isArray(v) ? v : [v]) form.append(k, one);
  }
  return h.fetch('/exchange/v1/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': '192.0.2.7', ...headers }, body: form.toString() });
}

async function refusal(res: Response, error: string, status = 400): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = (await res.json()) as { error: string; error_description: string };
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe(error);
  return body.error_description;
}

async function entry(repository: string, path = `/ci/${uniq()}`, selectors = [`repository:${repository}`], parentId = PARENT) {
  const alias = parentId.split('/').pop()!;
  return h.createEntry({ spiffeId: `spiffe://${TD}${path}` as never, parentId: parentId as never, selectors: selectors.map((s) => ({ type: 'oidc', value: `${alias}:${s}` })) });
}

async function verifySvid(jwt: string, audience: string) {
  const keys = (await (await h.fetch('/keys')).json()) as { keys: JWK[] };
  return (await jwtVerify(jwt, createLocalJWKSet(keys), { audience, currentDate: new Date(clock.nowMs) })).payload;
}

describe('POST /exchange/v1/token', () => {
  it('exchanges a trusted token for a JWT-SVID of the entry that authorizes it (sub = the entry ID, aud from the request)', async () => {
    const repo = `acme/${uniq()}`;
    const e = await entry(repo);
    const res = await exchange(await token({ repository: repo }), { audience: ['https://a.example', 'https://b.example'] });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { access_token: string; issued_token_type: string; token_type: string; expires_in: number };
    expect(body.issued_token_type).toBe(JWT);
    expect(body.token_type).toBe('N_A');
    expect(body.expires_in).toBeGreaterThan(0);
    expect(body.expires_in).toBeLessThanOrEqual(ca.config.jwtSvidTtlSeconds);
    const claims = await verifySvid(body.access_token, 'https://b.example');
    expect(claims.sub).toBe(e.spiffeId);
    expect(claims.aud).toEqual(['https://a.example', 'https://b.example']);
    expect(claims.repository).toBeUndefined();
  });

  it("adds the entry's jwtSvidClaims under the CA's own claims", async () => {
    const repo = `acme/${uniq()}`;
    const e = await h.createEntry({ spiffeId: `spiffe://${TD}/ci/${uniq()}` as never, parentId: PARENT as never, selectors: [{ type: 'oidc', value: `ci:repository:${repo}` }], jwtSvidClaims: { tenant: 'acme' } });
    const res = await exchange(await token({ repository: repo }));
    expect(res.status).toBe(200);
    expect(await verifySvid(((await res.json()) as { access_token: string }).access_token, 'https://relying.example')).toMatchObject({ tenant: 'acme', sub: e.spiffeId });
  });

  it('takes keys from a jwksUrl and from OIDC discovery', async () => {
    for (const [alias, iss] of [['url', URL_ISSUER], ['disc', DISCOVERY_ISSUER]] as const) {
      const repo = `acme/${uniq()}`;
      const e = await entry(repo, `/ci/${uniq()}`, [`repository:${repo}`], `spiffe://${TD}/spire/exchange/${alias}`);
      const res = await exchange(await token({ repository: repo }, {}, iss));
      expect(res.status, alias).toBe(200);
      expect((await verifySvid(((await res.json()) as { access_token: string }).access_token, 'https://relying.example')).sub).toBe(e.spiffeId);
    }
  });

  it('refuses discovery documents naming another issuer or an http jwks_uri (temporarily_unavailable), signing nothing', async () => {
    const signed = ca.signedJwt;
    expect(await refusal(await exchange(await token({}, {}, LIAR_ISSUER)), 'temporarily_unavailable', 503)).toMatch(/another issuer/);
    expect(await refusal(await exchange(await token({}, {}, PLAIN_ISSUER)), 'temporarily_unavailable', 503)).toMatch(/jwks_uri/);
    expect(ca.signedJwt).toBe(signed);
  });

  it('refetches a jwksUrl at most once per cooldown for unknown kids', async () => {
    const before = keyServer.count.get('https://url.example.test/jwks') ?? 0;
    for (let i = 0; i < 3; i++) expect(await refusal(await exchange(await token({}, { kid: `forged-${i}` }, URL_ISSUER)), 'invalid_grant')).toMatch(/unknown key/);
    expect((keyServer.count.get('https://url.example.test/jwks') ?? 0) - before).toBeLessThanOrEqual(1);
  });

  describe('refuses, signing nothing', () => {
    const b64 = (o: unknown) => toBase64Url(new TextEncoder().encode(JSON.stringify(o)));
    let repo: string;
    beforeAll(async () => {
      repo = `acme/${uniq()}`;
      await entry(repo);
    });

    const cases: [string, () => Promise<string>, RegExp][] = [
      ['alg none', async () => `${b64({ alg: 'none' })}.${b64({ iss: ISSUER, aud: AUD, sub: 'x', repository: repo, exp: nowS() + 60, iat: nowS() })}.`, /alg none/],
      [
        'HS256',
        async () => new SignJWT({ repository: repo }).setProtectedHeader({ alg: 'HS256', kid: 'ci-key-1' }).setIssuer(ISSUER).setAudience(AUD).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JSON.stringify(jwk))),
        /HMAC/,
      ],
      ['a wrong iss', async () => token({ repository: repo }, {}, 'https://evil.example'), /issuer is not trusted/],
      ['a wrong aud', async () => new SignJWT({ repository: repo }).setProtectedHeader({ alg: 'ES256', kid: 'ci-key-1' }).setIssuer(ISSUER).setAudience('https://other').setIssuedAt(nowS()).setExpirationTime(nowS() + 60).sign(key), /aud/],
      ['an expired token', async () => token({ repository: repo, exp: nowS() - 31, iat: nowS() - 120 }), /expired/],
      ['nbf in the future', async () => token({ repository: repo, nbf: nowS() + 120 }), /nbf/],
      ['a token older than maxTokenAgeSeconds', async () => token({ repository: repo, iat: nowS() - 700 }), /maximum token age/],
      ['a token without exp', async () => new SignJWT({ repository: repo }).setProtectedHeader({ alg: 'ES256', kid: 'ci-key-1' }).setIssuer(ISSUER).setAudience(AUD).setIssuedAt(nowS()).sign(key), /exp/],
      ['an unknown kid', async () => token({ repository: repo }, { kid: 'someone-else' }), /unknown key/],
      ['a bad signature', async () => (await token({ repository: repo })).replace(/\.[^.]+$/, (s) => `.${s.slice(2)}AA`), /signature|invalid/],
    ];
    it.each(cases)('%s (invalid_grant)', async (_name, make, reason) => {
      const signed = ca.signedJwt;
      expect(await refusal(await exchange(await make()), 'invalid_grant')).toMatch(reason);
      expect(ca.signedJwt).toBe(signed);
    });

    it('a token no entry authorizes, and one whose selectors match an entry only partly (unauthorized_client)', async () => {
      const both = `acme/${uniq()}`;
      await entry(both, `/ci/${uniq()}`, [`repository:${both}`, 'ref:refs/heads/main']);
      const signed = ca.signedJwt;
      expect(await refusal(await exchange(await token({ repository: `acme/${uniq()}` })), 'unauthorized_client')).toMatch(/no registration entry/);
      expect(await refusal(await exchange(await token({ repository: both, ref: 'refs/heads/dev' })), 'unauthorized_client')).toMatch(/no registration entry/);
      // an entry under another alias's parent does not authorize this issuer's tokens
      const other = `acme/${uniq()}`;
      await entry(other, `/ci/${uniq()}`, [`repository:${other}`], `spiffe://${TD}/spire/exchange/url`);
      expect(await refusal(await exchange(await token({ repository: other })), 'unauthorized_client')).toMatch(/no registration entry/);
      expect(ca.signedJwt).toBe(signed);
      expect((await exchange(await token({ repository: both, ref: 'refs/heads/main' }))).status).toBe(200);
    });

    it('a replayed token of an issuer that refuses replays; the same token twice where replays are allowed passes', async () => {
      const once = `acme/${uniq()}`;
      await entry(once, `/ci/${uniq()}`, [`repository:${once}`], `spiffe://${TD}/spire/exchange/once`);
      const t = await token({ repository: once }, {}, ONCE_ISSUER);
      const [a, b] = await Promise.all([exchange(t), exchange(t)]);
      expect([a.status, b.status].sort()).toEqual([200, 400]);
      const signed = ca.signedJwt;
      expect(await refusal(await exchange(t), 'invalid_grant')).toMatch(/replay/);
      expect(ca.signedJwt).toBe(signed);
      expect(await refusal(await exchange(await token({ repository: once }, {}, ONCE_ISSUER, false)), 'invalid_grant')).toMatch(/no jti/);
      const again = await token({ repository: repo });
      expect((await exchange(again)).status).toBe(200);
      expect((await exchange(again)).status).toBe(200);
    });

    it('several authorized identities without scope (invalid_scope); scope picks one, and only an authorized one', async () => {
      const many = `acme/${uniq()}`;
      const a = await entry(many);
      const b = await entry(many);
      const t = await token({ repository: many });
      expect(await refusal(await exchange(t), 'invalid_scope')).toContain(a.spiffeId);
      const res = await exchange(t, { scope: b.spiffeId });
      expect(res.status).toBe(200);
      expect((await verifySvid(((await res.json()) as { access_token: string }).access_token, 'https://relying.example')).sub).toBe(b.spiffeId);
      expect(await refusal(await exchange(t, { scope: `spiffe://${TD}/ci/not-mine` }), 'invalid_scope')).toMatch(/no registration entry/);
    });

    it('malformed requests in RFC 6749 §5.2 shape', async () => {
      const t = await token({ repository: repo });
      const signed = ca.signedJwt;
      await refusal(await exchange(t, { grant_type: 'client_credentials' }), 'unsupported_grant_type');
      await refusal(await exchange(t, { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }), 'invalid_request');
      await refusal(await exchange(t, { requested_token_type: 'urn:ietf:params:oauth:token-type:access_token' }), 'invalid_request');
      await refusal(await exchange(t, { subject_token: [t, t] }), 'invalid_request');
      await refusal(await exchange(t, { audience: [] }), 'invalid_target');
      await refusal(await exchange('not-a-jwt'), 'invalid_grant');
      await refusal(await exchange(t, {}, { 'content-type': 'application/json' }), 'invalid_request');
      expect(ca.signedJwt).toBe(signed);
    });
  });
});

describe('X509-SVIDs for a CSR (requested_token_type=urn:spiffe:token-type:x509-svid)', () => {
  const X509 = 'urn:spiffe:token-type:x509-svid';
  const x509Exchange = (t: string, csr: Uint8Array, extra: Record<string, string | string[]> = {}) => exchange(t, { audience: [], requested_token_type: X509, csr: toBase64Url(csr), ...extra });

  it('signs the CSR key for the entry: the entry ID in the URI SAN, its DNS names, chaining to the bundle; nothing from the CSR', async () => {
    const repo = `acme/${uniq()}`;
    const e = await h.createEntry({ spiffeId: `spiffe://${TD}/ci/${uniq()}` as never, parentId: PARENT as never, selectors: [{ type: 'oidc', value: `ci:repository:${repo}` }], dnsNames: ['app.ci.example'] } as never);
    const csr = await makeCsr({ uri: `spiffe://${TD}/not/the/entry` });
    const signed = ca.signedX509;
    const res = await x509Exchange(await token({ repository: repo }), csr.der);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { access_token: string; issued_token_type: string; token_type: string; expires_in: number; x509_svid_chain: string[]; x509_bundle: string[] };
    expect(body.issued_token_type).toBe(X509);
    expect(body.token_type).toBe('N_A');
    expect(body.expires_in).toBeGreaterThan(0);
    expect(ca.signedX509).toBe(signed + 1);
    const chain = certificatesFromPem(body.access_token);
    expect(chain.map((d) => toBase64Url(d))).toEqual(body.x509_svid_chain.map((b) => toBase64Url(fromBase64(b))));
    const leaf = new x509.X509Certificate(chain[0]!);
    const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.items.filter((n) => n.type === 'url').map((n) => n.value)).toEqual([e.spiffeId]);
    expect(san.names.items.filter((n) => n.type === 'dns').map((n) => n.value)).toEqual(['app.ci.example']);
    expect(new Uint8Array(leaf.publicKey.rawData)).toEqual(new Uint8Array((await crypto.subtle.exportKey('spki', csr.keys.publicKey)) as ArrayBuffer));
    // the bundle in the answer is the trust domain's (as published at /bundle), and the chain builds to it
    expect(body.x509_bundle).toEqual((await ca.published()).x509Authorities);
    const roots = body.x509_bundle.map((b) => new x509.X509Certificate(fromBase64(b)));
    const built = await new x509.X509ChainBuilder({ certificates: [...chain.slice(1).map((d) => new x509.X509Certificate(d)), ...roots] }).build(leaf);
    expect(roots.some((r) => r.equal(built[built.length - 1]!))).toBe(true);
    for (let i = 0; i + 1 < built.length; i++) expect(await built[i]!.verify({ publicKey: built[i + 1]!, date: new Date(clock.nowMs) })).toBe(true);
  });

  it('refuses a CSR whose signature does not verify, and a token no entry authorizes, signing nothing', async () => {
    const repo = `acme/${uniq()}`;
    await entry(repo);
    const csr = await makeCsr();
    const forged = csr.der.slice();
    forged[forged.length - 1]! ^= 0x01;
    const signed = ca.signedX509;
    expect(await refusal(await x509Exchange(await token({ repository: repo }), forged), 'invalid_request')).toMatch(/csr: .*signature/);
    expect(await refusal(await x509Exchange(await token({ repository: `acme/${uniq()}` }), csr.der), 'unauthorized_client')).toMatch(/no registration entry/);
    await refusal(await x509Exchange(await token({ repository: repo }), new Uint8Array([0x30, 0x00])), 'invalid_request');
    // a spent jti stays unspent when the CSR is refused
    const once = `acme/${uniq()}`;
    await entry(once, `/ci/${uniq()}`, [`repository:${once}`], `spiffe://${TD}/spire/exchange/once`);
    const t = await token({ repository: once }, {}, ONCE_ISSUER);
    await refusal(await x509Exchange(t, forged), 'invalid_request');
    expect(ca.signedX509).toBe(signed);
    expect((await x509Exchange(t, csr.der)).status).toBe(200);
  });

  it('malformed X.509 requests (invalid_request / invalid_target)', async () => {
    const repo = `acme/${uniq()}`;
    await entry(repo);
    const t = await token({ repository: repo });
    const csr = (await makeCsr()).der;
    const signed = ca.signedX509 + ca.signedJwt;
    expect(await refusal(await exchange(t, { audience: [], requested_token_type: X509 }), 'invalid_request')).toMatch(/csr is required/);
    expect(await refusal(await exchange(t, { requested_token_type: JWT, csr: toBase64Url(csr) }), 'invalid_request')).toMatch(/csr is only/);
    expect(await refusal(await exchange(t, { requested_token_type: X509, csr: toBase64Url(csr) }), 'invalid_target')).toMatch(/audience/);
    expect(await refusal(await x509Exchange(t, csr, { csr: 'not base64url!' }), 'invalid_request')).toMatch(/base64url/);
    expect(ca.signedX509 + ca.signedJwt).toBe(signed);
    // a csr without requested_token_type asks for an X509-SVID
    expect(((await (await exchange(t, { audience: [], requested_token_type: [], csr: toBase64Url(csr) })).json()) as { issued_token_type: string }).issued_token_type).toBe(X509);
  });
});

describe('rate limits', () => {
  it('counts signing per client address in the CA; over the limit: 429 temporarily_unavailable with Retry-After', async () => {
    const callers: (string | undefined)[] = [];
    const limited = createHarness(
      () => ({ ...ca, signJwtSvids: async (requests, caller) => (callers.push(caller), requests.map(() => ({ ok: false as const, error: { code: 'ERR_RATE_LIMITED' as const, message: 'JWT-SVID signing rate limit exceeded', retryAfterSeconds: 7 } }))) }),
      clock,
      { vars: { TOKEN_EXCHANGE } },
    );
    const repo = `acme/${uniq()}`;
    await entry(repo);
    const form = new URLSearchParams({ grant_type: GRANT, subject_token: await token({ repository: repo }), subject_token_type: JWT, audience: 'https://relying.example' });
    const res = await limited.fetch('/exchange/v1/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': '198.51.100.9' }, body: form.toString() });
    expect(res.headers.get('retry-after')).toBe('7');
    await refusal(res, 'temporarily_unavailable', 429);
    expect(callers).toEqual(['exchange:198.51.100.9']);
  });
});

describe('the exchanged-jti store', () => {
  it('takes a key once while unexpired, and forgets it once expired (pruned)', async () => {
    const store = createExchangeJtiStore(env.DB);
    const k = `once\n${uniq()}`;
    expect(await store.use(k, 1000, 900)).toBe(true);
    expect(await store.use(k, 1000, 999)).toBe(false);
    expect(await store.use(k, 2000, 1000)).toBe(true);
    await store.prune(2000);
    expect(await env.DB.prepare('SELECT COUNT(*) AS n FROM token_exchange_jtis WHERE key = ?').bind(k).first('n')).toBe(0);
  });
});
