/**
 * Admin API for registration entries (SPIRE's entry API over JSON): create, batch-create, list with filters
 * and pages, count, get, full replace, batch-update, delete, batch-delete. Batch answers carry SPIRE's
 * per-item `{status: {code, message}}`; a single-item call turns a failed status into its error response.
 * @module
 */
import { Hono, type Context } from 'hono';
import { WispError } from '../../../shared/errors.js';
import type { BatchResult, Entry, NewEntry } from '../../../shared/registry/entry.js';
import { parseEntryId, parseEntryInput } from '../../../shared/registry/entry-validation.js';
import type { EntryFilter } from '../../../shared/registry/ports.js';
import { noticeForParents, type NoticeTarget } from '../../../shared/agent-notifications.js';
import { parseSpiffeId, parseTrustDomain, type SpiffeId, type TrustDomain } from '../../../shared/spiffe/id.js';
import type { D1EntryStore } from '../../db/entries.js';
import type { AppDeps } from '../../deps.js';
import { noteAudit } from '../../middleware/audit.js';
import { noteAgents } from '../../notifier/notices.js';
import { readJsonBody } from '../../http-json.js';
import { nowSeconds, parseBooleanParam, parseMatchParam, parsePage, parseSelectorsParam, readBatch } from './params.js';


type ItemStatus = BatchResult<unknown>['status'];

function statusOf(e: unknown): ItemStatus {
  if (e instanceof WispError) return e.toData();
  throw e;
}

function orThrow<T>(result: BatchResult<T> | undefined): T {
  if (result?.status.code === 'OK' && result.value !== undefined) return result.value;
  if (!result || result.status.code === 'OK') throw new WispError('ERR_INTERNAL', 'internal error');
  throw new WispError(result.status.code, result.status.message);
}

function parseFilter(c: Context): EntryFilter {
  const filter: EntryFilter = {};
  const spiffeId = c.req.query('spiffeId');
  const parentId = c.req.query('parentId');
  if (spiffeId !== undefined) filter.spiffeId = parseSpiffeId(spiffeId);
  if (parentId !== undefined) filter.parentId = parseSpiffeId(parentId);
  const selectors = parseSelectorsParam(c);
  if (selectors) filter.selectors = selectors;
  const federatesWith = (c.req.queries('federatesWith') ?? []).map((td) => parseFederatesWithParam(td));
  const federatesWithMatch = parseMatchParam(c, 'federatesWithMatch');
  if (federatesWith.length > 0) filter.federatesWith = { trustDomains: federatesWith, match: federatesWithMatch };
  const hint = c.req.query('hint');
  if (hint !== undefined) filter.hint = hint;
  const downstream = c.req.query('downstream');
  if (downstream !== undefined) filter.downstream = parseBooleanParam('downstream', downstream);
  return filter;
}

/** A trust domain name, as entries hold them (the CLI turns SPIRE's `spiffe://td` into the name). */
function parseFederatesWithParam(value: string): TrustDomain {
  try {
    return parseTrustDomain(value);
  } catch {
    throw new WispError('ERR_BAD_REQUEST', `federatesWith: "${value}" is not a trust domain name`);
  }
}

/** An entry ID from the path; a malformed one cannot exist, so it is "not found". */
function pathEntryId(c: Context): string {
  try {
    return parseEntryId(c.req.param('id'));
  } catch {
    throw new WispError('ERR_ENTRY_NOT_FOUND', 'no entry with this id');
  }
}

/** Parses an entry for update: the body's id (if any) must be the target id. */
function parseUpdate(input: unknown, deps: AppDeps, id?: string): Entry {
  const parsed: NewEntry = parseEntryInput(input, deps.config.trustDomain);
  const targetId = id ?? parsed.id;
  if (targetId === undefined) throw new WispError('ERR_BAD_REQUEST', 'id is required to update an entry');
  if (parsed.id !== undefined && parsed.id !== targetId) throw new WispError('ERR_BAD_REQUEST', 'the id in the body differs from the id in the path');
  return { ...parsed, id: targetId, revisionNumber: 0, createdAt: 0 };
}

/** Runs `write` on the items that parsed and merges its per-item statuses with the parse failures, in order. */
async function perItem<I, R extends BatchResult<unknown>>(inputs: unknown[], parse: (input: unknown) => I, write: (items: I[]) => Promise<R[]>): Promise<(R | { status: ItemStatus; value?: undefined })[]> {
  type Parsed = { ok: true; item: I } | { ok: false; status: ItemStatus };
  const parsed = inputs.map((input): Parsed => {
    try {
      return { ok: true, item: parse(input) };
    } catch (e) {
      return { ok: false, status: statusOf(e) };
    }
  });
  const valid = parsed.flatMap((p) => (p.ok ? [p.item] : []));
  const written = valid.length > 0 ? await write(valid) : [];
  let next = 0;
  return parsed.map((p) => (p.ok ? written[next++]! : { status: p.status }));
}

/**
 * The agents an entry write concerns: those of the written entries' parent IDs, before and after
 * (shared/agent-notifications.ts noticeForParents).
 */
function noticeOf(results: { value?: { parentId: SpiffeId } | undefined; previousParentId?: SpiffeId }[]): NoticeTarget | undefined {
  return noticeForParents(results.flatMap((r) => (r.value ? [r.value.parentId, ...(r.previousParentId ? [r.previousParentId] : [])] : [])));
}

/** The audit row of a batch request: item and failure counts, and the IDs of the items that succeeded. */
function noteBatch<O>(c: Context, results: BatchResult<O>[], idOf: (value: O) => string): void {
  const done = results.flatMap((r) => (r.status.code === 'OK' && r.value !== undefined ? [idOf(r.value)] : []));
  noteAudit(c, { objectIds: done, detail: { items: results.length, failed: results.length - done.length } });
}

export function entryRoutes(deps: AppDeps, store: D1EntryStore): Hono {
  const app = new Hono();
  const td = deps.config.trustDomain;

  app.post('/', async (c) => {
    const entry = parseEntryInput(await readJsonBody(c), td);
    noteAudit(c, { objectIds: [entry.spiffeId] });
    const [result] = await store.createBatch([entry], nowSeconds(deps));
    const created = orThrow(result);
    noteAudit(c, { objectIds: [created.id] });
    noteAgents(c, noticeOf([result!]));
    return c.json({ entry: created }, 201);
  });

  app.post('/batch-create', async (c) => {
    const results = await perItem(await readBatch(c, 'entries'), (i) => parseEntryInput(i, td), (items) => store.createBatch(items, nowSeconds(deps)));
    noteBatch(c, results, (e) => e.id);
    noteAgents(c, noticeOf(results));
    return c.json({ results: results.map((r) => ({ status: r.status, ...(r.value ? { entry: r.value } : {}) })) });
  });

  app.post('/batch-update', async (c) => {
    const results = await perItem(await readBatch(c, 'entries'), (i) => parseUpdate(i, deps), (items) => store.updateBatch(items, nowSeconds(deps)));
    noteBatch(c, results, (e) => e.id);
    noteAgents(c, noticeOf(results));
    return c.json({ results: results.map((r) => ({ status: r.status, ...(r.value ? { entry: r.value } : {}) })) });
  });

  app.post('/batch-delete', async (c) => {
    const results = await perItem(await readBatch(c, 'ids'), parseEntryId, (ids) => store.deleteBatch(ids));
    noteBatch(c, results, (e) => e.id);
    noteAgents(c, noticeOf(results));
    return c.json({ results: results.map((r) => ({ status: r.status, ...(r.value ? { id: r.value.id } : {}) })) });
  });

  app.get('/', async (c) => {
    const page = await store.list(parseFilter(c), parsePage(c));
    return c.json(page);
  });

  app.get('/count', async (c) => c.json({ count: await store.count(parseFilter(c)) }));

  app.get('/:id', async (c) => {
    const entry = await store.getById(pathEntryId(c));
    if (!entry) throw new WispError('ERR_ENTRY_NOT_FOUND', 'no entry with this id');
    return c.json({ entry });
  });

  app.put('/:id', async (c) => {
    const id = pathEntryId(c);
    const entry = parseUpdate(await readJsonBody(c), deps, id);
    noteAudit(c, { objectIds: [entry.spiffeId] });
    const [result] = await store.updateBatch([entry], nowSeconds(deps));
    const updated = orThrow(result);
    noteAgents(c, noticeOf([result!]));
    return c.json({ entry: updated });
  });

  app.delete('/:id', async (c) => {
    const [result] = await store.deleteBatch([pathEntryId(c)]);
    orThrow(result);
    noteAgents(c, noticeOf([result!]));
    return c.body(null, 204);
  });

  return app;
}
