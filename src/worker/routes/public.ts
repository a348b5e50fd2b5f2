/**
 * Public, unauthenticated endpoints. Filled in by the CA work: OIDC discovery, JWKS, SPIFFE bundle.
 * @module
 */
import { Hono } from 'hono';
import type { AppDeps } from '../deps.js';

export function publicRoutes(deps: AppDeps): Hono {
  const app = new Hono();
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
