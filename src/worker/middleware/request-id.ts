/**
 * A request ID for every issuer request: made here (a random UUID; a caller's own X-Request-Id is not
 * taken, so an ID in the audit log or the Worker log is always the issuer's), kept in `c.var.requestId`
 * for logs and the audit log, and echoed as the `X-Request-Id` response header, error answers included.
 * @module
 */
import { createMiddleware } from 'hono/factory';

export const REQUEST_ID_HEADER = 'X-Request-Id';

declare module 'hono' {
  interface ContextVariableMap {
    /** set by `requestId` (app.ts) */
    requestId: string;
  }
}

export const requestId = createMiddleware(async (c, next) => {
  const id = crypto.randomUUID();
  c.set('requestId', id);
  await next();
  c.header(REQUEST_ID_HEADER, id);
});
