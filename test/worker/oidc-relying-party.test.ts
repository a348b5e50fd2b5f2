// Rotation is invisible to an OIDC relying party (a cloud). The relying party fetches /keys through the real
// public route, caches the JWKS for exactly the served max-age, fetches again only when the cache has
// expired (never on an unknown kid), and validates JWT-SVIDs minted every 3 minutes with jose, as AWS/GCP/
// Azure would. Time moves through two full JWT key rotations (CA_TTL 24h in wrangler.toml) and the CA's
// alarm runs whenever it is due, as the runtime would run it. Not one valid token may be refused.
import { runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { describe, expect, it } from 'vitest';
import { HOUR_MS, MINUTE_MS, SECOND_MS } from '../../src/shared/clock.js';
import { JWKS_MAX_KEYS, buildJwks } from '../../src/shared/spiffe/bundle.js';
import { parseWorkerConfig } from '../../src/worker/config.js';
import type { TrustDomainCa } from '../../src/worker/ca/trust-domain-ca.js';
import { buildDiscoveryDocument, publicRoutes } from '../../src/worker/routes/public.js';
import { createAppDeps } from '../../src/worker/wiring.js';
import { freshCa, setCaClock } from '../helpers/workerd/ca.js';

const config = parseWorkerConfig(env as unknown as Record<string, string>);
const SUB = `spiffe://${config.trustDomain}/ns/prod/sa/uploader`;
const AUDIENCE = 'sts.amazonaws.com';
const MINT_EVERY_MS = 3 * MINUTE_MS;
const STEP_MS = MINUTE_MS;

/** A relying party that honours Cache-Control max-age and nothing else. */
function relyingParty(fetchKeys: () => Promise<Response>, clock: () => number) {
  let cached: { jwks: JSONWebKeySet; expiresAt: number } | undefined;
  const stats = { fetches: 0, maxAges: new Set<number>(), maxKeys: 0 };
  async function keys(): Promise<JSONWebKeySet> {
    if (cached && clock() < cached.expiresAt) return cached.jwks;
    const res = await fetchKeys();
    expect(res.status).toBe(200);
    const maxAge = Number(/max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    const jwks = (await res.json()) as JSONWebKeySet;
    // JWKS hygiene on every fetch: kid, alg and use on every key, never more than AWS's 100 keys
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys.length).toBeLessThanOrEqual(JWKS_MAX_KEYS);
    for (const k of jwks.keys) expect(k).toMatchObject({ kid: expect.any(String), alg: config.jwtKeyType, use: 'sig' });
    stats.fetches++;
    stats.maxAges.add(maxAge);
    stats.maxKeys = Math.max(stats.maxKeys, jwks.keys.length);
    cached = { jwks, expiresAt: clock() + maxAge * SECOND_MS };
    return jwks;
  }
  return {
    stats,
    async validate(token: string): Promise<boolean> {
      try {
        await jwtVerify(token, createLocalJWKSet(await keys()), { issuer: config.jwtIssuer, audience: AUDIENCE, currentDate: new Date(clock()), algorithms: [config.jwtKeyType] });
        return true;
      } catch {
        return false;
      }
    },
  };
}

describe('OIDC relying party across JWT key rotations', () => {
  it('validates every token minted every 3 minutes over two full rotations, fetching the JWKS only at max-age expiry', async () => {
    const { stub, api } = freshCa();
    const t0 = Date.now();
    let now = t0;
    await setCaClock(stub, () => now);
    expect(await api.status()).toEqual({ ready: true });
    const routes = publicRoutes(createAppDeps({ config, ca: () => api, db: env.DB, clock: () => now }));
    const rp = relyingParty(() => Promise.resolve(routes.request('http://issuer.test/keys')), () => now);

    const live: { token: string; expiresAt: number }[] = [];
    const signingKids = new Set<string>();
    let minted = 0;
    let checks = 0;
    const refused: string[] = [];
    const end = t0 + 2 * config.caTtlSeconds * SECOND_MS + 2 * HOUR_MS;
    let nextMint = t0;
    for (now = t0; now <= end; now += STEP_MS) {
      // the runtime runs the alarm when it is due
      const alarm = await runInDurableObject(stub, (_i: TrustDomainCa, state) => state.storage.getAlarm());
      if (alarm !== null && alarm <= now) await runDurableObjectAlarm(stub);
      if (now >= nextMint) {
        nextMint += MINT_EVERY_MS;
        const signed = await api.signJwtSvid({ spiffeId: SUB, audience: [AUDIENCE], ttlSeconds: config.jwtSvidTtlSeconds });
        if (!signed.ok) throw new Error(`minting failed at +${(now - t0) / MINUTE_MS} min: ${signed.error.message}`);
        signingKids.add(decodeProtectedHeader(signed.value.token).kid!);
        live.push({ token: signed.value.token, expiresAt: signed.value.expiresAt * SECOND_MS });
        minted++;
      }
      // every unexpired token is presented to the relying party at every step of its life
      for (const t of live.filter((x) => now < x.expiresAt)) {
        checks++;
        if (!(await rp.validate(t.token))) refused.push(`+${(now - t0) / MINUTE_MS} min kid ${decodeProtectedHeader(t.token).kid}`);
      }
      while (live.length > 0 && live[0]!.expiresAt <= now) live.shift();
    }

    expect(refused).toEqual([]);
    expect(minted).toBeGreaterThan(900);
    expect(checks).toBeGreaterThan(minted);
    // two full rotations: the signing key changed at least twice
    expect(signingKids.size).toBeGreaterThanOrEqual(3);
    // fetched only at expiry of the served max-age: about once per max-age over the run
    expect([...rp.stats.maxAges]).toEqual([config.jwksMaxAgeSeconds]);
    const span = end - t0;
    expect(rp.stats.fetches).toBeLessThanOrEqual(Math.ceil(span / (config.jwksMaxAgeSeconds * SECOND_MS)) + 1);
    expect(rp.stats.maxKeys).toBeLessThanOrEqual(3);
  }, 600_000);

  it('serves a discovery document whose issuer is the tokens\' iss, with the algorithms of every published key', async () => {
    const { stub, api } = freshCa();
    const now = Date.now();
    await setCaClock(stub, () => now);
    const routes = publicRoutes(createAppDeps({ config, ca: () => api, db: env.DB, clock: () => now }));
    const res = await routes.request('http://issuer.test/.well-known/openid-configuration');
    expect(res.headers.get('cache-control')).toBe(`public, max-age=${config.jwksMaxAgeSeconds}`);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toEqual({
      issuer: config.jwtIssuer,
      jwks_uri: `${config.jwtIssuer}/keys`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [config.jwtKeyType],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss'],
    });
    const signed = await api.signJwtSvid({ spiffeId: SUB, audience: [AUDIENCE], ttlSeconds: 300 });
    if (!signed.ok) throw new Error(signed.error.message);
    const payload = JSON.parse(atob(signed.value.token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    expect(payload.iss).toBe(doc.issuer);
    expect(Object.keys(payload).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'sub']);
    // a key type change keeps the other algorithm listed while its keys are published
    const mixed = buildDiscoveryDocument({ jwtIssuer: 'https://wisp.example', jwtKeyType: 'RS256' }, { jwtAuthorities: [{ kty: 'EC', kid: 'a', alg: 'ES256', use: 'sig' }] });
    expect(mixed.id_token_signing_alg_values_supported).toEqual(['ES256', 'RS256']);
  });

  it('caps the JWKS at 100 keys, keeping the newest, and leaves out keys without kid or alg', () => {
    const many = Array.from({ length: 130 }, (_, i) => ({ kty: 'EC', crv: 'P-256', x: `x${i}`, y: `y${i}`, kid: `k${i}`, alg: 'ES256', use: 'sig' as const }));
    const jwks = buildJwks({ jwtAuthorities: [...many, { kty: 'EC', kid: '', alg: 'ES256', use: 'sig' }] });
    expect(jwks.keys).toHaveLength(JWKS_MAX_KEYS);
    expect(jwks.keys[0]!.kid).toBe('k30');
    expect(jwks.keys.at(-1)!.kid).toBe('k129');
  });
});
