// OIDC discovery, JWKS and SPIFFE bundle through the real Worker entry and the real CA Durable Object.
import { env, exports } from 'cloudflare:workers';
import { unwrap } from '../../src/shared/result.js';
import { describe, expect, it } from 'vitest';
import { parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateJwtSvid } from '../../src/shared/spiffe/jwt-svid.js';
import { validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { fromBase64, toBase64 } from '../../src/shared/encoding/base64.js';
import type { TrustDomainCaApi } from '../../src/worker/ca/ca-api.js';
import { subjectSpki } from '../helpers/workerd/ca.js';

const BASE = 'http://issuer.test';
const ca = () => env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN)) as unknown as TrustDomainCaApi;
const ID = `spiffe://${env.TRUST_DOMAIN}/ns/prod/sa/web`;

describe('public routes', () => {
  it('serves the OIDC discovery document', async () => {
    const res = await exports.default.fetch(`${BASE}/.well-known/openid-configuration`, { headers: { Origin: 'https://rp.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.json()).toEqual({
      issuer: env.JWT_ISSUER,
      jwks_uri: `${env.JWT_ISSUER}/keys`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
      claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss'],
    });
  });

  it('serves the JWKS with public JWT keys only, and JWT-SVIDs verify against it', async () => {
    const res = await exports.default.fetch(`${BASE}/keys`, { headers: { Origin: 'https://rp.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    const jwks = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
    for (const k of jwks.keys) {
      expect(Object.keys(k).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
      expect(k).toMatchObject({ use: 'sig', alg: 'ES256', kty: 'EC' });
    }
    const jwt = await ca().signJwtSvid({ spiffeId: ID, audience: ['rp'], ttlSeconds: 60 });
    if (!jwt.ok) throw new Error(JSON.stringify(jwt));
    expect((await validateJwtSvid(jwt.value.token, jwks as never, { audience: 'rp', now: Date.now(), issuer: env.JWT_ISSUER })).ok).toBe(true);
  });

  it('answers a CORS preflight for GET', async () => {
    const res = await exports.default.fetch(`${BASE}/keys`, { method: 'OPTIONS', headers: { Origin: 'https://rp.example', 'Access-Control-Request-Method': 'GET' } });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET');
  });

  it('serves the SPIFFE bundle, which parses and anchors issued SVIDs', async () => {
    const res = await exports.default.fetch(`${BASE}/bundle`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const bundle = await parseBundleJson(await res.text(), env.TRUST_DOMAIN);
    const published = unwrap(await ca().getPublishedKeys());
    expect(bundle.x509Authorities.map((d) => toBase64(d))).toEqual(published.x509Authorities);
    expect(bundle.jwtAuthorities.map((k) => k.kid)).toEqual(published.jwtAuthorities.map((k) => k.kid));
    expect(bundle.sequence).toBe(published.sequence);
    expect(bundle.refreshHintSeconds).toBe(published.refreshHintSeconds);
    const [svid] = await ca().signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 60 }]);
    if (!svid!.ok) throw new Error(JSON.stringify(svid));
    expect((await validateX509Svid(svid!.value.certChain.map((c) => fromBase64(c)), { now: Date.now(), roots: bundle.x509Authorities })).ok).toBe(true);
  });

  it('keeps /healthz working', async () => {
    const res = await exports.default.fetch(`${BASE}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', ca: 'ready', db: 'ok' });
  });
});
