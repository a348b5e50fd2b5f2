/**
 * Public, unauthenticated endpoints: OIDC discovery and JWKS for JWT-SVID relying parties (STYLE G13),
 * the SPIFFE bundle (https_web profile) and its CRLs, and health. All are cacheable GETs served from the CA object's
 * published view; CORS is open for GET, as in openauth.
 * @module
 */
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { WispError } from '../../shared/errors.js';
import { buildBundleJson, buildJwks } from '../../shared/spiffe/bundle.js';
import type { AppDeps, AppStores } from '../deps.js';
import type { WorkerConfig } from '../config.js';
import type { PublishedKeys } from '../ca/ca-api.js';
import { readCrls, readPublishedKeys } from '../ca/published-keys.js';
import { toPem } from '../../shared/encoding/pem.js';

/** Longest a cache may keep a CRL answer, seconds: revocations should reach relying parties quickly. */
const CRL_MAX_AGE_SECONDS = 60;

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

export function publicRoutes(deps: Pick<AppDeps, 'config' | 'ca' | 'clock'> & { stores: Pick<AppStores, 'ping' | 'revocations'> }): Hono {
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

  // The SPIFFE bundle has no CRL field: the CRLs are served beside it (docs/revocation.md). /bundle.crl is the
  // active CA key's CRL (DER, RFC 5280); /bundle.crl.pem every CA key's that may have signed unexpired SVIDs.
  const crls = async () => readCrls(deps.ca(), await deps.stores.revocations.crlSerials(Math.floor(deps.clock() / 1000)));
  const crlCacheControl = `public, max-age=${Math.min(deps.config.jwksMaxAgeSeconds, CRL_MAX_AGE_SECONDS)}`;
  app.get('/bundle.crl', async (c) => {
    const [active] = await crls();
    if (!active) throw new WispError('ERR_CA_NOT_READY', 'the trust domain CA is not ready');
    return c.body(active.der.slice().buffer, 200, { 'Content-Type': 'application/pkix-crl', 'Cache-Control': crlCacheControl });
  });
  app.get('/bundle.crl.pem', async (c) => {
    const pem = (await crls()).map((crl) => toPem('X509 CRL', crl.der)).join('');
    return c.body(pem, 200, { 'Content-Type': 'application/x-pem-file', 'Cache-Control': crlCacheControl });
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
