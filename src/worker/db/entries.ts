/**
 * EntryStore over D1. Set-shaped work (batches, selector matching, the authorized-entries walk) runs as a
 * fixed number of SQL statements per call whatever the batch size: rows and selector lists are passed as
 * one JSON parameter and expanded with json_each, which keeps under D1's 100-bound-parameter limit and its
 * per-invocation query count. Every write batch bumps registry_revision in the same D1 batch (atomic).
 * drizzle's builder cannot express these json_each joins, so this adapter speaks SQL; the columns are those
 * of schema.ts (checked by test/worker/db-schema.test.ts).
 * @module
 */
import { decodeBase64Url, toBase64Url } from '../../shared/encoding/base64.js';
import { WispError } from '../../shared/errors.js';
import type { BatchResult, Entry, NewEntry } from '../../shared/registry/entry.js';
import { walkAuthorizedEntries } from '../../shared/registry/authorized-entries.js';
import { ENTRY_ID_PATTERN } from '../../shared/registry/entry-validation.js';
import type { JwtSvidExtraClaims } from '../../shared/registry/jwt-svid-claims.js';
import type { EntryFilter, EntryPage, EntryStore } from '../../shared/registry/ports.js';
import { formatSelector, parseSelector, selectorSetKey, sortSelectors, type Selector, type SelectorMatch } from '../../shared/registry/selectors.js';
import { serverId, trustDomainOf, type SpiffeId, type TrustDomain } from '../../shared/spiffe/id.js';

/** The Worker's EntryStore: the port plus the admin check the admin API needs. */
export interface D1EntryStore extends EntryStore {
  /** True when an unexpired entry with `spiffeId` has admin=true. */
  isAdmin(spiffeId: SpiffeId, now: number): Promise<boolean>;
  /** the port's, each updated item also naming the parent ID it had before (whose agent to notify) */
  updateBatch(entries: Entry[], now: number): Promise<(BatchResult<Entry> & { previousParentId?: SpiffeId })[]>;
  /** the port's, each deleted item with the parent ID it had */
  deleteBatch(ids: string[]): Promise<BatchResult<{ id: string; parentId: SpiffeId }>[]>;
}

interface EntryRow {
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors: string;
  selectors_key: string;
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  dns_names: string;
  federates_with: string;
  admin: number;
  downstream: number;
  hint: string;
  expires_at: number;
  revision_number: number;
  created_at: number;
  jwt_svid_claims: string;
}

/** The JSON shape of one row passed to json_each. */
interface RowParam {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: string;
  selectorsKey: string;
  x509SvidTtl: number;
  jwtSvidTtl: number;
  dnsNames: string;
  federatesWith: string;
  admin: number;
  downstream: number;
  hint: string;
  expiresAt: number;
  /** JSON text: `{}` for none */
  jwtSvidClaims: string;
}

const ENTRY_EXISTS_MESSAGE = 'an entry with this id, or with the same spiffeId, parentId and selectors, already exists';
const NOT_EXPIRED = '(e.expires_at = 0 OR e.expires_at > ?)';
const BUMP_REVISION = 'UPDATE registry_revision SET revision = revision + 1 WHERE id = 1';

/** `json_extract(<alias>.value, '$.<field>')` */
const jx = (alias: string, field: keyof RowParam | 'type' | 'value') => `json_extract(${alias}.value, '$.${field}')`;

/** Selects the ids of entries having one of the query selectors (param: JSON [{type,value}]), with the count. */
const MATCHED_SELECTORS = `SELECT es.entry_id AS entry_id, COUNT(*) AS n FROM json_each(?) q
  JOIN entry_selectors es ON es.type = ${jx('q', 'type')} AND es.value = ${jx('q', 'value')} GROUP BY es.entry_id`;

/** Inserts the selector rows of the given rows whose entry now holds exactly that (spiffeId, parentId, selectors). */
const INSERT_SELECTORS = `INSERT OR IGNORE INTO entry_selectors (entry_id, type, value)
  SELECT ${jx('r', 'id')}, ${jx('s', 'type')}, ${jx('s', 'value')} FROM json_each(?) r, json_each(${jx('r', 'selectors')}) s
  WHERE EXISTS (SELECT 1 FROM entries x WHERE x.id = ${jx('r', 'id')} AND x.spiffe_id = ${jx('r', 'spiffeId')}
    AND x.parent_id = ${jx('r', 'parentId')} AND x.selectors_key = ${jx('r', 'selectorsKey')})`;

function rowToEntry(row: EntryRow): Entry {
  return {
    id: row.id,
    spiffeId: row.spiffe_id as SpiffeId,
    parentId: row.parent_id as SpiffeId,
    selectors: JSON.parse(row.selectors) as Selector[],
    x509SvidTtl: row.x509_svid_ttl,
    jwtSvidTtl: row.jwt_svid_ttl,
    dnsNames: JSON.parse(row.dns_names) as string[],
    federatesWith: JSON.parse(row.federates_with) as TrustDomain[],
    admin: row.admin === 1,
    downstream: row.downstream === 1,
    hint: row.hint,
    expiresAt: row.expires_at,
    revisionNumber: row.revision_number,
    createdAt: row.created_at,
    ...(row.jwt_svid_claims === '{}' ? {} : { jwtSvidClaims: JSON.parse(row.jwt_svid_claims) as JwtSvidExtraClaims }),
  };
}

function toRowParam(e: NewEntry, id: string): RowParam {
  const selectors = sortSelectors(e.selectors);
  return {
    id,
    spiffeId: e.spiffeId,
    parentId: e.parentId,
    selectors: JSON.stringify(selectors.map(({ type, value }) => ({ type, value }))),
    selectorsKey: selectorSetKey(selectors),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    dnsNames: JSON.stringify(e.dnsNames),
    federatesWith: JSON.stringify(e.federatesWith),
    admin: e.admin ? 1 : 0,
    downstream: e.downstream ? 1 : 0,
    hint: e.hint,
    expiresAt: e.expiresAt,
    jwtSvidClaims: JSON.stringify(e.jwtSvidClaims ?? {}),
  };
}

function selectorsParam(selectors: readonly Selector[]): string {
  return JSON.stringify(selectors.map(({ type, value }) => ({ type, value })));
}

function uniqueSelectors(selectors: readonly Selector[]): Selector[] {
  const seen = new Map<string, Selector>();
  for (const s of selectors) seen.set(formatSelector(s), parseSelector(s));
  return [...seen.values()];
}

const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function encodePageToken(lastKey: string): string {
  return toBase64Url(new TextEncoder().encode(lastKey));
}

/** Decodes an opaque page token back to the last key of the previous page; `check` validates it. */
export function decodePageToken(token: string, check: (key: string) => boolean): string {
  const bytes = decodeBase64Url(token);
  let key: string | undefined;
  try {
    key = bytes && UTF8_STRICT.decode(bytes);
  } catch {
    key = undefined;
  }
  if (key === undefined || !check(key)) throw new WispError('ERR_BAD_REQUEST', 'pageToken is invalid');
  return key;
}

/** WHERE clauses and parameters for a filter over alias `e`; undefined when the filter can match nothing. */
function filterSql(filter: EntryFilter): { where: string[]; params: unknown[] } | undefined {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.spiffeId !== undefined) {
    where.push('e.spiffe_id = ?');
    params.push(filter.spiffeId);
  }
  if (filter.parentId !== undefined) {
    where.push('e.parent_id = ?');
    params.push(filter.parentId);
  }
  if (filter.selectors) {
    const query = uniqueSelectors(filter.selectors.selectors);
    const mode = filter.selectors.match;
    if (query.length === 0) {
      // superset of nothing is everything; the other modes need at least one selector in common or equal sets
      if (mode !== 'superset') return undefined;
    } else if (mode === 'any') {
      where.push(`e.id IN (SELECT entry_id FROM (${MATCHED_SELECTORS}))`);
      params.push(selectorsParam(query));
    } else if (mode === 'superset' || mode === 'exact') {
      where.push(`e.id IN (SELECT entry_id FROM (${MATCHED_SELECTORS}) WHERE n = ?)`);
      params.push(selectorsParam(query), query.length);
      if (mode === 'exact') {
        where.push('e.selectors_key = ?');
        params.push(selectorSetKey(query));
      }
    } else {
      where.push(`e.id IN (SELECT m.entry_id FROM (${MATCHED_SELECTORS}) m JOIN entries x ON x.id = m.entry_id
        WHERE m.n = json_array_length(x.selectors))`);
      params.push(selectorsParam(query));
    }
  }
  if (filter.federatesWith) {
    const f = federatesWithSql(filter.federatesWith.trustDomains, filter.federatesWith.match);
    if (!f) return undefined;
    where.push(...f.where);
    params.push(...f.params);
  }
  if (filter.hint !== undefined) {
    where.push('e.hint = ?');
    params.push(filter.hint);
  }
  if (filter.downstream !== undefined) {
    where.push('e.downstream = ?');
    params.push(filter.downstream ? 1 : 0);
  }
  return { where, params };
}

/**
 * SPIRE's federatesWith match modes over the JSON list column (no index: a scan of the filtered rows).
 * m = query trust domains the entry has, n = the entry's own: any m ≥ 1, superset m = |q|, subset m = n ≥ 1
 * (as selectors, an entry federating with nothing is no subset), exact m = n = |q|.
 */
function federatesWithSql(trustDomains: readonly TrustDomain[], match: SelectorMatch): { where: string[]; params: unknown[] } | undefined {
  const query = [...new Set(trustDomains)];
  // as selectors: superset of nothing is everything, the other modes match nothing
  if (query.length === 0) return match === 'superset' ? { where: [], params: [] } : undefined;
  const m = '(SELECT COUNT(DISTINCT f.value) FROM json_each(e.federates_with) f WHERE f.value IN (SELECT value FROM json_each(?)))';
  const n = '(SELECT COUNT(DISTINCT value) FROM json_each(e.federates_with))';
  const q = JSON.stringify(query);
  if (match === 'any') return { where: [`${m} >= 1`], params: [q] };
  if (match === 'superset') return { where: [`${m} = ?`], params: [q, query.length] };
  if (match === 'subset') return { where: [`${m} = ${n}`, `${n} >= 1`], params: [q] };
  return { where: [`${m} = ?`, `${n} = ?`], params: [q, query.length, query.length] };
}

/**
 * Creates the D1-backed entry store.
 * @example const entries = createEntryStore(env.DB); await entries.createBatch([newEntry], nowSeconds)
 */
export function createEntryStore(db: D1Database): D1EntryStore {
  async function all(sql: string, ...params: unknown[]): Promise<Entry[]> {
    const { results } = await db.prepare(sql).bind(...params).all<EntryRow>();
    return results.map(rowToEntry);
  }

  return {
    async createBatch(items, now) {
      if (items.length === 0) return [];
      const rows = items.map((e) => toRowParam(e, e.id ?? crypto.randomUUID()));
      const json = JSON.stringify(rows);
      const [inserted] = await db.batch<EntryRow>([
        db
          .prepare(
            `INSERT INTO entries (id, spiffe_id, parent_id, selectors, selectors_key, x509_svid_ttl, jwt_svid_ttl,
               dns_names, federates_with, admin, downstream, hint, expires_at, revision_number, created_at, jwt_svid_claims)
             SELECT ${jx('r', 'id')}, ${jx('r', 'spiffeId')}, ${jx('r', 'parentId')}, ${jx('r', 'selectors')},
               ${jx('r', 'selectorsKey')}, ${jx('r', 'x509SvidTtl')}, ${jx('r', 'jwtSvidTtl')}, ${jx('r', 'dnsNames')},
               ${jx('r', 'federatesWith')}, ${jx('r', 'admin')}, ${jx('r', 'downstream')}, ${jx('r', 'hint')},
               ${jx('r', 'expiresAt')}, 0, ?, ${jx('r', 'jwtSvidClaims')}
             FROM json_each(?) r WHERE true ORDER BY r.key
             ON CONFLICT DO NOTHING RETURNING *`,
          )
          .bind(now, json),
        db.prepare(INSERT_SELECTORS).bind(json),
        db.prepare(BUMP_REVISION),
      ]);
      const byId = new Map((inserted?.results ?? []).map((r) => [r.id, rowToEntry(r)]));
      return rows.map((row): BatchResult<Entry> => {
        const entry = byId.get(row.id);
        // a later item with the same id as an earlier one gets the conflict, not the earlier one's entry
        if (entry && entry.spiffeId === row.spiffeId && entry.parentId === row.parentId && selectorSetKey(entry.selectors) === row.selectorsKey) {
          byId.delete(row.id);
          return { status: { code: 'OK', message: 'OK' }, value: entry };
        }
        return { status: { code: 'ERR_ENTRY_EXISTS', message: ENTRY_EXISTS_MESSAGE } };
      });
    },

    async updateBatch(items, _now) {
      if (items.length === 0) return [];
      const seen = new Set<string>();
      const duplicate = items.map((e) => (seen.has(e.id) ? true : (seen.add(e.id), false)));
      const rows = items.filter((_, i) => !duplicate[i]).map((e) => toRowParam(e, e.id));
      const json = JSON.stringify(rows);
      const [before, updated, , , existing] = await db.batch<EntryRow>([
        db.prepare(`SELECT id, parent_id FROM entries WHERE id IN (SELECT ${jx('r', 'id')} FROM json_each(?) r)`).bind(json),
        db
          .prepare(
            `UPDATE OR IGNORE entries SET spiffe_id = ${jx('u', 'spiffeId')}, parent_id = ${jx('u', 'parentId')},
               selectors = ${jx('u', 'selectors')}, selectors_key = ${jx('u', 'selectorsKey')},
               x509_svid_ttl = ${jx('u', 'x509SvidTtl')}, jwt_svid_ttl = ${jx('u', 'jwtSvidTtl')},
               dns_names = ${jx('u', 'dnsNames')}, federates_with = ${jx('u', 'federatesWith')}, admin = ${jx('u', 'admin')},
               downstream = ${jx('u', 'downstream')}, hint = ${jx('u', 'hint')}, expires_at = ${jx('u', 'expiresAt')},
               jwt_svid_claims = ${jx('u', 'jwtSvidClaims')}, revision_number = revision_number + 1
             FROM json_each(?) u WHERE entries.id = ${jx('u', 'id')} RETURNING *`,
          )
          .bind(json),
        db
          .prepare(
            `DELETE FROM entry_selectors WHERE entry_id IN (SELECT x.id FROM json_each(?) r JOIN entries x
               ON x.id = ${jx('r', 'id')} AND x.spiffe_id = ${jx('r', 'spiffeId')} AND x.parent_id = ${jx('r', 'parentId')}
               AND x.selectors_key = ${jx('r', 'selectorsKey')})`,
          )
          .bind(json),
        db.prepare(INSERT_SELECTORS).bind(json),
        db.prepare(`SELECT id FROM entries WHERE id IN (SELECT ${jx('r', 'id')} FROM json_each(?) r)`).bind(json),
        db.prepare(BUMP_REVISION),
      ]);
      const byId = new Map((updated?.results ?? []).map((r) => [r.id, rowToEntry(r)]));
      const previousParent = new Map((before?.results ?? []).map((r) => [r.id, r.parent_id as SpiffeId]));
      const exists = new Set((existing?.results ?? []).map((r) => r.id));
      return items.map((item, i): BatchResult<Entry> & { previousParentId?: SpiffeId } => {
        if (duplicate[i]) return { status: { code: 'ERR_BAD_REQUEST', message: 'the same id appears more than once in the batch' } };
        const entry = byId.get(item.id);
        if (entry) return { status: { code: 'OK', message: 'OK' }, value: entry, previousParentId: previousParent.get(item.id) ?? entry.parentId };
        if (exists.has(item.id)) return { status: { code: 'ERR_ENTRY_EXISTS', message: ENTRY_EXISTS_MESSAGE } };
        return { status: { code: 'ERR_ENTRY_NOT_FOUND', message: 'no entry with this id' } };
      });
    },

    async deleteBatch(ids) {
      if (ids.length === 0) return [];
      const json = JSON.stringify(ids);
      const [, deleted] = await db.batch<{ id: string; parent_id: string }>([
        db.prepare('DELETE FROM entry_selectors WHERE entry_id IN (SELECT value FROM json_each(?))').bind(json),
        db.prepare('DELETE FROM entries WHERE id IN (SELECT value FROM json_each(?)) RETURNING id, parent_id').bind(json),
        db.prepare(BUMP_REVISION),
      ]);
      const gone = new Map((deleted?.results ?? []).map((r) => [r.id, r.parent_id as SpiffeId]));
      return ids.map((id): BatchResult<{ id: string; parentId: SpiffeId }> => {
        const parentId = gone.get(id);
        if (parentId !== undefined && gone.delete(id)) return { status: { code: 'OK', message: 'OK' }, value: { id, parentId } };
        return { status: { code: 'ERR_ENTRY_NOT_FOUND', message: 'no entry with this id' } };
      });
    },

    async getById(id) {
      const row = await db.prepare('SELECT * FROM entries WHERE id = ?').bind(id).first<EntryRow>();
      return row ? rowToEntry(row) : undefined;
    },

    async list(filter, page): Promise<EntryPage> {
      const f = filterSql(filter);
      if (!f) return { entries: [] };
      if (page.pageToken !== undefined) {
        f.where.push('e.id > ?');
        f.params.push(decodePageToken(page.pageToken, (k) => ENTRY_ID_PATTERN.test(k)));
      }
      const where = f.where.length ? `WHERE ${f.where.join(' AND ')}` : '';
      const found = await all(`SELECT e.* FROM entries e ${where} ORDER BY e.id LIMIT ?`, ...f.params, page.pageSize + 1);
      if (found.length <= page.pageSize) return { entries: found };
      const entries = found.slice(0, page.pageSize);
      return { entries, nextPageToken: encodePageToken(entries[entries.length - 1]!.id) };
    },

    async count(filter) {
      const f = filterSql(filter);
      if (!f) return 0;
      const where = f.where.length ? `WHERE ${f.where.join(' AND ')}` : '';
      const row = await db.prepare(`SELECT COUNT(*) AS n FROM entries e ${where}`).bind(...f.params).first<{ n: number }>();
      return row?.n ?? 0;
    },

    async listAuthorized(agentId, nodeSelectors, now) {
      const server = serverId(trustDomainOf(agentId));
      const query = uniqueSelectors(nodeSelectors);
      const aliases =
        query.length === 0
          ? []
          : await all(
              `SELECT e.* FROM (${MATCHED_SELECTORS}) m JOIN entries e ON e.id = m.entry_id
               WHERE e.parent_id = ? AND m.n = json_array_length(e.selectors) AND ${NOT_EXPIRED}`,
              selectorsParam(query),
              server,
              now,
            );
      return walkAuthorizedEntries(agentId, aliases, (parents) =>
        all(`SELECT e.* FROM entries e WHERE e.parent_id IN (SELECT value FROM json_each(?)) AND ${NOT_EXPIRED}`, JSON.stringify(parents), now),
      );
    },

    async revision() {
      const row = await db.prepare('SELECT revision FROM registry_revision WHERE id = 1').first<{ revision: number }>();
      return String(row?.revision ?? 0);
    },

    async isAdmin(spiffeId, now) {
      const row = await db.prepare(`SELECT 1 AS one FROM entries e WHERE e.spiffe_id = ? AND e.admin = 1 AND ${NOT_EXPIRED} LIMIT 1`).bind(spiffeId, now).first();
      return row !== null;
    },
  };
}
