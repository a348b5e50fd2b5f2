/**
 * Small parsers shared by the admin routes: pagination, batch bodies, time in seconds.
 * @module
 */
import type { Context } from 'hono';
import { WispError } from '../../../shared/errors.js';
import type { AppDeps } from '../../deps.js';
import { asObject, readJsonBody } from '../../http-json.js';

export const ADMIN_PAGE_SIZE_DEFAULT = 100;
export const ADMIN_PAGE_SIZE_MAX = 1000;
/** Most items in one batch-create/update/delete request. */
export const ADMIN_BATCH_MAX_ITEMS = 500;
/** Body limit of batch requests (single-item requests use MAX_JSON_BODY_BYTES). */
export const ADMIN_BATCH_MAX_BODY_BYTES = 1024 * 1024;

export function nowSeconds(deps: AppDeps): number {
  return Math.floor(deps.clock() / 1000);
}

export function parsePage(c: Context): { pageSize: number; pageToken?: string } {
  const rawSize = c.req.query('pageSize');
  let pageSize = ADMIN_PAGE_SIZE_DEFAULT;
  if (rawSize !== undefined) {
    pageSize = /^\d{1,5}$/.test(rawSize) ? Number(rawSize) : NaN;
    if (!(pageSize >= 1 && pageSize <= ADMIN_PAGE_SIZE_MAX)) {
      throw new WispError('ERR_BAD_REQUEST', `pageSize must be an integer from 1 to ${ADMIN_PAGE_SIZE_MAX}`);
    }
  }
  const pageToken = c.req.query('pageToken');
  return pageToken ? { pageSize, pageToken } : { pageSize };
}

/** Reads `{ <field>: [...] }` with at most ADMIN_BATCH_MAX_ITEMS items (more: 413). */
export async function readBatch(c: Context, field: string): Promise<unknown[]> {
  const body = asObject(await readJsonBody(c, ADMIN_BATCH_MAX_BODY_BYTES));
  const items = body[field];
  if (!Array.isArray(items)) throw new WispError('ERR_BAD_REQUEST', `${field} must be an array`);
  if (items.length > ADMIN_BATCH_MAX_ITEMS) {
    throw new WispError('ERR_REQUEST_TOO_LARGE', `a batch holds at most ${ADMIN_BATCH_MAX_ITEMS} items`);
  }
  return items;
}

/** Rejects fields a request body does not define (typos must not be silently ignored). */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new WispError('ERR_BAD_REQUEST', `unknown field "${key}"`);
  }
}
