/**
 * Public, unauthenticated endpoints: OIDC discovery and JWKS for JWT-SVID relying parties (STYLE G13),
 * the SPIFFE bundle (https_web profile), and health. All are cacheable GETs served from the CA object's
 * published view; CORS is open for GET, as in openauth.
 * @module
 */
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { buildBundleJson, buildJwks } from '../../shared/spiffe/bundle.js';
import type { AppDeps, AppStores } from '../deps.js';
import type { WorkerConfig } from '../config.js';
import type { PublishedKeys } from '../ca/ca-api.js';
import { readPublishedKeys } from '../ca/published-keys.js';

/**
 * The OIDC discovery document (OpenID Connect Discovery 1.0 §3) as AWS IAM, GCP workload identity
 * federation and Azure federated credentials read it: `issuer` equal to the JWT-SVIDs' `iss` (https in
 * production; config.ts enforces it), `jwks_uri` under the same origin, the signing algorithms of every
 * published key (a JWT_KEY_TYPE change keeps the other algorithm until its keys expire) and the claims
 * JWT-SVIDs carry. No authorization endpoint: Wisp issues no tokens to browsers.
 */
export function buildDiscoveryDocument(config: Pick<WorkerConfig, 'jwtIssuer' | 'jwtKeyType'>, keys: Pick<PublishedKeys, 'jwtAuthorities'>) {
  const algs = [...new Set([config.jwtKeyType, ...keys.jwtAuthorities.map((k) => k.alg)])].sort();
  return {
    issuer: config.jwtIssuer,
    jwks_uri: `${config.jwtIssuer}/keys`,
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algs,
    claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss'],
  };
}

export function publicRoutes(deps: Pick<AppDeps, 'config' | 'ca'> & { stores: Pick<AppStores, 'ping'> }): Hono {
  const app = new Hono();
  const cacheControl = `public, max-age=${deps.config.jwksMaxAgeSeconds}`;
  const openGet = cors({ origin: '*', allowMethods: ['GET'] });

  app.use('/.well-known/openid-configuration', openGet);
  app.get('/.well-known/openid-configuration', async (c) => {
    c.header('Cache-Control', cacheControl);
    return c.json(buildDiscoveryDocument(deps.config, await readPublishedKeys(deps.ca())));
  });

  app.use('/keys', openGet);
  app.get('/keys', async (c) => {
    const keys = await readPublishedKeys(deps.ca());
    c.header('Cache-Control', cacheControl);
    return c.json(buildJwks(keys));
  });

  app.get('/bundle', async (c) => {
    const doc = await buildBundleJson(await readPublishedKeys(deps.ca()));
    c.header('Cache-Control', cacheControl);
    return c.json(doc);
  });

  app.get('/healthz', async (c) => {
    const { ready } = await deps.ca().status();
    let dbOk = true;
    try {
      await deps.stores.ping();
    } catch {
      dbOk = false;
    }
    const healthy = ready && dbOk;
    return c.json({ status: healthy ? 'ok' : 'unavailable', ca: ready ? 'ready' : 'not_ready', db: dbOk ? 'ok' : 'unreachable' }, healthy ? 200 : 503);
  });
  return app;
}
