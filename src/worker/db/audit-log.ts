/**
 * The audit log over D1 (table `audit_log`, schema.ts): one INSERT per recorded admin request, a filtered
 * and paged read in time order, and the retention prune the cron runs. Rows hold identifiers and outcomes
 * only; what goes in is decided by the audit middleware (middleware/audit.ts), never a secret.
 * @module
 */
import type { AuditEvent } from '../../shared/audit-event.js';
import { decodePageToken, encodePageToken } from './entries.js';

export type { AuditEvent };

export type NewAuditEvent = Omit<AuditEvent, 'id'>;

export interface AuditFilter {
  /** at >= since */
  since?: number;
  /** at < until */
  until?: number;
  principal?: string;
  action?: string;
  /** events whose objectIds contain this value */
  objectId?: string;
}

export interface AuditPage {
  events: AuditEvent[];
  nextPageToken?: string;
}

export interface AuditStore {
  record(event: NewAuditEvent): Promise<void>;
  list(filter: AuditFilter, page: { pageSize: number; pageToken?: string }): Promise<AuditPage>;
  /** Deletes events older than `before` (seconds), in bounded chunks; returns how many went. */
  prune(before: number): Promise<number>;
}

/** Rows deleted per statement by the prune, and statements per cron run (the rest waits for the next run). */
export const AUDIT_PRUNE_CHUNK_ROWS = 5_000;
export const AUDIT_PRUNE_MAX_CHUNKS = 20;

/** A row of `audit_log` as D1 returns it. */
export interface AuditRow {
  id: number;
  at: number;
  request_id: string;
  principal: string;
  action: string;
  route: string;
  object_ids: string;
  detail: string;
  status: number;
  error_code: string | null;
  source_ip: string | null;
}

const INSERT = `INSERT INTO audit_log (at, request_id, principal, action, route, object_ids, detail, status, error_code, source_ip)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const PRUNE = 'DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY at LIMIT ?)';

function rowToEvent(r: AuditRow): AuditEvent {
  return {
    id: r.id,
    at: r.at,
    requestId: r.request_id,
    principal: r.principal,
    action: r.action,
    route: r.route,
    objectIds: JSON.parse(r.object_ids) as string[],
    detail: JSON.parse(r.detail) as Record<string, unknown>,
    status: r.status,
    ...(r.error_code === null ? {} : { errorCode: r.error_code }),
    ...(r.source_ip === null ? {} : { sourceIp: r.source_ip }),
  };
}

/** The page token is the (at, id) of the last event of the previous page. */
function pageKey(token: string): [number, number] {
  const key = decodePageToken(token, (k) => /^\d{1,15}\.\d{1,15}$/.test(k));
  const [at, id] = key.split('.').map(Number);
  return [at!, id!];
}

/**
 * Creates the D1-backed audit store.
 * @example await createAuditStore(env.DB).record({ at, requestId, principal: 'admin-token', action: 'entry.create', ... })
 */
export function createAuditStore(db: D1Database): AuditStore {
  const insert = db.prepare(INSERT);
  return {
    async record(e) {
      await insert.bind(e.at, e.requestId, e.principal, e.action, e.route, JSON.stringify(e.objectIds), JSON.stringify(e.detail), e.status, e.errorCode ?? null, e.sourceIp ?? null).run();
    },

    async list(filter, page) {
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (clause: string, ...values: unknown[]) => {
        where.push(clause);
        params.push(...values);
      };
      if (filter.since !== undefined) add('at >= ?', filter.since);
      if (filter.until !== undefined) add('at < ?', filter.until);
      if (filter.principal !== undefined) add('principal = ?', filter.principal);
      if (filter.action !== undefined) add('action = ?', filter.action);
      if (filter.objectId !== undefined) add('EXISTS (SELECT 1 FROM json_each(object_ids) WHERE value = ?)', filter.objectId);
      if (page.pageToken !== undefined) {
        const [at, id] = pageKey(page.pageToken);
        add('(at > ? OR (at = ? AND id > ?))', at, at, id);
      }
      const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at, id LIMIT ?`;
      const { results } = await db.prepare(sql).bind(...params, page.pageSize + 1).all<AuditRow>();
      const events = results.slice(0, page.pageSize).map(rowToEvent);
      if (results.length <= page.pageSize) return { events };
      const last = events[events.length - 1]!;
      return { events, nextPageToken: encodePageToken(`${last.at}.${last.id}`) };
    },

    async prune(before) {
      if (!Number.isSafeInteger(before)) throw new TypeError('audit prune: the cut-off must be whole seconds');
      let total = 0;
      for (let i = 0; i < AUDIT_PRUNE_MAX_CHUNKS; i++) {
        const { meta } = await db.prepare(PRUNE).bind(before, AUDIT_PRUNE_CHUNK_ROWS).run();
        total += meta.changes;
        if (meta.changes < AUDIT_PRUNE_CHUNK_ROWS) break;
      }
      return total;
    },
  };
}
