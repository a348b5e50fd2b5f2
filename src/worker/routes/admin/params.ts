/**
 * Small parsers shared by the admin routes: pagination, list filters (selectors, match modes, booleans,
 * times), batch bodies, time in seconds.
 * @module
 */
import type { Context } from 'hono';
import { parseRfc3339Ms } from '../../../shared/audit-event.js';
import { WispError } from '../../../shared/errors.js';
import { parseSelectorString, type Selector, type SelectorMatch } from '../../../shared/registry/selectors.js';
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

/** A time query parameter: RFC 3339, or whole seconds since the epoch; in seconds. */
export function parseTimeParam(c: Context, name: string): number | undefined {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  if (/^\d{1,12}$/.test(raw)) return Number(raw);
  const ms = parseRfc3339Ms(raw);
  if (ms === undefined) throw new WispError('ERR_BAD_REQUEST', `${name} must be an RFC 3339 time (2026-01-02T15:04:05Z) or seconds since the epoch`);
  return Math.floor(ms / 1000);
}

const MATCH_MODES: readonly SelectorMatch[] = ['exact', 'subset', 'superset', 'any'];

/** A match-mode query parameter (SPIRE's exact|subset|superset|any); default superset. */
export function parseMatchParam(c: Context, name: string): SelectorMatch {
  const match = c.req.query(name) ?? 'superset';
  if (!MATCH_MODES.includes(match as SelectorMatch)) throw new WispError('ERR_BAD_REQUEST', `${name} must be one of ${MATCH_MODES.join(', ')}`);
  return match as SelectorMatch;
}

/** `selector=type:value` (repeatable) with `match=`: the selector filter of entry and agent lists. */
export function parseSelectorsParam(c: Context): { selectors: Selector[]; match: SelectorMatch } | undefined {
  const selectors = (c.req.queries('selector') ?? []).map(parseSelectorString);
  const match = parseMatchParam(c, 'match');
  return selectors.length > 0 ? { selectors, match } : undefined;
}

/** A `true|false` query parameter (list filters). */
export function parseBooleanParam(name: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new WispError('ERR_BAD_REQUEST', `${name} must be true or false`);
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
