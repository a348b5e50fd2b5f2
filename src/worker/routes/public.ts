/**
 * Public, unauthenticated endpoints: OIDC discovery and JWKS for JWT-SVID relying parties (STYLE G13),
 * the SPIFFE bundle (https_web profile), and health. All are cacheable GETs served from the CA object's
 * published view; CORS is open for GET, as in openauth.
 * @module
 */
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { buildBundleJson, buildJwks } from '../../shared/spiffe/bundle.js';
import type { AppDeps } from '../deps.js';

export function publicRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const cacheControl = `public, max-age=${deps.config.jwksMaxAgeSeconds}`;
  const openGet = cors({ origin: '*', allowMethods: ['GET'] });

  app.use('/.well-known/openid-configuration', openGet);
  app.get('/.well-known/openid-configuration', (c) => {
    const issuer = deps.config.jwtIssuer;
    c.header('Cache-Control', cacheControl);
    return c.json({
      issuer,
      jwks_uri: `${issuer}/keys`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [deps.config.jwtKeyType],
    });
  });

  app.use('/keys', openGet);
  app.get('/keys', async (c) => {
    const keys = await deps.ca().getPublishedKeys();
    c.header('Cache-Control', cacheControl);
    return c.json(buildJwks(keys));
  });

  app.get('/bundle', async (c) => {
    const doc = await buildBundleJson(await deps.ca().getPublishedKeys());
    c.header('Cache-Control', cacheControl);
    return c.json(doc);
  });

  app.get('/healthz', async (c) => {
    const { ready } = await deps.ca().status();
    let dbOk = true;
    try {
      await deps.db.prepare('SELECT 1').first();
    } catch {
      dbOk = false;
    }
    const healthy = ready && dbOk;
    return c.json({ status: healthy ? 'ok' : 'unavailable', ca: ready ? 'ready' : 'not_ready', db: dbOk ? 'ok' : 'unreachable' }, healthy ? 200 : 503);
  });
  return app;
}
