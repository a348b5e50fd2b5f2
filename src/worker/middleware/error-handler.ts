/**
 * The only place errors become HTTP responses (STYLE G5): a WispError maps through ERROR_STATUS; anything
 * else is a 500 with a fixed message, its cause logged, never echoed. A rate-limited answer (429) also says
 * when to come back: `Retry-After` in whole seconds (RFC 9110 §10.2.3).
 * @module
 */
import type { Context } from 'hono';
import { WispError } from '../../shared/errors.js';
import { httpStatusOf } from '../../shared/error-status.js';
import { logEvent } from '../log.js';

export function errorResponse(c: Context, error: WispError): Response {
  if (error.retryAfterSeconds !== undefined) c.header('Retry-After', String(error.retryAfterSeconds));
  return c.json({ error: { code: error.code, message: error.message } }, httpStatusOf(error.code) as 400);
}

export function errorHandler(error: unknown, c: Context): Response {
  if (error instanceof WispError) return errorResponse(c, error);
  logEvent('error', 'unhandled error', { path: c.req.path, request_id: c.get('requestId'), cause: error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error) });
  return errorResponse(c, new WispError('ERR_INTERNAL', 'internal error'));
}
