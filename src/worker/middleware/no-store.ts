/**
 * `Cache-Control: no-store` (RFC 9111 §5.2.2.5) on every response of a route group whose answers carry a
 * secret or an SVID: the admin API (join tokens, minted SVIDs) and the agent API (agent SVIDs, workload
 * SVIDs). Set after the handler, so error answers get it too; the public routes set their own caching.
 * @module
 */
import { createMiddleware } from 'hono/factory';

export const NO_STORE = 'no-store';

export const noStore = createMiddleware(async (c, next) => {
  await next();
  c.header('Cache-Control', NO_STORE);
});
