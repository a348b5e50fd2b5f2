// The admin audit log: every kind of admin write leaves exactly one row (principal, action, objects,
// outcome, request ID, source), failures with their error code, reads and unauthenticated calls none; no
// secret (join token, JWT-SVID, CSR, certificate) in any column; a route the action table does not know is
// recorded as `METHOD /pattern`; a failed audit write answers 503; GET /audit filters and pages; the cron
// prunes past AUDIT_RETENTION.
import { createScheduledController } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { Hono } from 'hono';
import { beforeAll, describe, expect, it } from 'vitest';
import { toBase64 } from '../../../src/shared/encoding/base64.js';
import { parseSpiffeId } from '../../../src/shared/spiffe/id.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createAuditStore, type AuditEvent, type AuditRow } from '../../../src/worker/db/audit-log.js';
import worker from '../../../src/worker/index.js';
import { auditLog, noteAudit } from '../../../src/worker/middleware/audit.js';
import { errorHandler } from '../../../src/worker/middleware/error-handler.js';
import { REQUEST_ID_HEADER, requestId } from '../../../src/worker/middleware/request-id.js';
import { makeCsr } from '../../helpers/shared/pki.js';
import { createTestCa, type TestCa } from '../../helpers/workerd/test-ca.js';
import { config, errorCode, makeAdmin, NOW_MS, sid, unique } from '../../helpers/workerd/admin.js';

const NOW = NOW_MS / 1000;
const audit = createAuditStore(env.DB);
const agents = createAgentStore(env.DB);
let ca: TestCa;
let admin: ReturnType<typeof makeAdmin>;
let csr: string;

beforeAll(async () => {
  ca = createTestCa(config.trustDomain, () => NOW_MS);
  admin = makeAdmin(ca);
  csr = toBase64(await makeCsr('P-256'));
});

type Row = Omit<AuditRow, 'id' | 'at'>;

/** The audit rows of one response (by its X-Request-Id). */
async function rowsOf(res: Response): Promise<Row[]> {
  const id = res.headers.get(REQUEST_ID_HEADER);
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  return (await env.DB.prepare('SELECT * FROM audit_log WHERE request_id = ?').bind(id).all<Row>()).results;
}

async function onlyRow(res: Response): Promise<Row> {
  const rows = await rowsOf(res);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

const entryBody = (u = unique()) => ({ spiffeId: sid(`/w/${u}`), parentId: sid(`/spire/agent/x/${u}`), selectors: [{ type: 'unix', value: `uid:${u}` }] });

async function attestedAgent() {
  const spiffeId = parseSpiffeId(sid(`/spire/agent/join_token/${unique()}`));
  await agents.upsertAttested({ spiffeId, attestationType: 'join_token', serialNumber: '01', expiresAt: NOW + 3600, nodeSelectors: [] }, NOW);
  return spiffeId;
}

describe('what is recorded', () => {
  it('records each kind of admin write once, with principal, action, objects, outcome and source', async () => {
    const body = entryBody();
    const created = await admin.call('POST', '/entries', body, { 'cf-connecting-ip': '203.0.113.7' });
    expect(created.status).toBe(201);
    const { entry } = (await created.json()) as { entry: { id: string } };
    const row = await onlyRow(created);
    expect(row).toMatchObject({ principal: 'admin-token', action: 'entry.create', route: 'POST /entries', status: 201, error_code: null, source_ip: '203.0.113.7' });
    expect(JSON.parse(row.object_ids)).toEqual([body.spiffeId, entry.id]);

    const update = await admin.call('PUT', `/entries/${entry.id}`, { ...body, hint: 'x' });
    expect(update.status).toBe(200);
    expect(await onlyRow(update)).toMatchObject({ action: 'entry.update', route: 'PUT /entries/:id', status: 200 });
    expect(JSON.parse((await onlyRow(update)).object_ids)).toEqual([entry.id, body.spiffeId]);

    const del = await admin.call('DELETE', `/entries/${entry.id}`);
    expect(del.status).toBe(204);
    expect(await onlyRow(del)).toMatchObject({ action: 'entry.delete', object_ids: JSON.stringify([entry.id]), status: 204 });

    const agentId = await attestedAgent();
    const ban = await admin.call('POST', `/agents/${encodeURIComponent(agentId)}/ban`);
    expect(await onlyRow(ban)).toMatchObject({ action: 'agent.ban', route: 'POST /agents/:spiffeId/ban', object_ids: JSON.stringify([agentId]), status: 200 });
    const evict = await admin.call('DELETE', `/agents/${encodeURIComponent(agentId)}`);
    expect(await onlyRow(evict)).toMatchObject({ action: 'agent.evict', object_ids: JSON.stringify([agentId]), status: 204 });

    const td = `${unique()}.example`;
    const fed = await admin.call('POST', '/federation', { trustDomain: td, bundleEndpointUrl: `https://${td}/bundle`, bundleEndpointProfile: 'https_web' });
    expect(fed.status).toBe(201);
    expect(await onlyRow(fed)).toMatchObject({ action: 'federation.create', object_ids: JSON.stringify([td]), status: 201 });
    const unfed = await admin.call('DELETE', `/federation/${td}`);
    expect(await onlyRow(unfed)).toMatchObject({ action: 'federation.delete', object_ids: JSON.stringify([td]), status: 204 });

    const spiffeId = sid(`/minted/${unique()}`);
    const x509 = await admin.call('POST', '/x509-svids/mint', { spiffeId, csr, ttlSeconds: 120 });
    expect(x509.status).toBe(200);
    const x509Row = await onlyRow(x509);
    expect(x509Row).toMatchObject({ action: 'svid.mint_x509', object_ids: JSON.stringify([spiffeId]), status: 200 });
    expect(JSON.parse(x509Row.detail)).toEqual({ ttlSeconds: 120, dnsNames: 0 });
    const jwt = await admin.call('POST', '/jwt-svids/mint', { spiffeId, audience: ['aud-1'] });
    expect(jwt.status).toBe(200);
    expect(await onlyRow(jwt)).toMatchObject({ action: 'svid.mint_jwt', object_ids: JSON.stringify([spiffeId]), status: 200 });
  });

  it('records authority changes (localauthority) with the kind and the authority ID as objects', async () => {
    const prepared = await admin.call('POST', '/localauthority/x509/prepare');
    expect(prepared.status).toBe(200);
    const { preparedAuthority } = (await prepared.json()) as { preparedAuthority: { authorityId: string } };
    expect(await onlyRow(prepared)).toMatchObject({ action: 'localauthority.prepare', route: 'POST /localauthority/:kind/prepare', object_ids: JSON.stringify(["x509", preparedAuthority.authorityId]), status: 200 });
    const refused = await admin.call('POST', '/localauthority/jwt/taint', { authorityId: 'abcdef' });
    expect(refused.status).toBe(404);
    expect(await onlyRow(refused)).toMatchObject({ action: 'localauthority.taint', object_ids: JSON.stringify(["jwt", "abcdef"]), status: 404, error_code: 'ERR_AUTHORITY_NOT_FOUND' });
  });

  it('records one row per batch request, with counts and the IDs that succeeded', async () => {
    const bodies = [entryBody(), entryBody(), entryBody()];
    const res = await admin.call('POST', '/entries/batch-create', { entries: [...bodies, { spiffeId: 'nope' }, bodies[0]] });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { entry?: { id: string } }[] };
    const ids = results.flatMap((r) => (r.entry ? [r.entry.id] : []));
    expect(ids).toHaveLength(3);
    const row = await onlyRow(res);
    expect(row).toMatchObject({ action: 'entry.batch_create', status: 200, error_code: null });
    expect(JSON.parse(row.object_ids)).toEqual(ids);
    expect(JSON.parse(row.detail)).toEqual({ items: 5, failed: 2 });

    const del = await admin.call('POST', '/entries/batch-delete', { ids: [...ids, 'missing-id'] });
    const delRow = await onlyRow(del);
    expect(delRow.action).toBe('entry.batch_delete');
    expect(JSON.parse(delRow.object_ids)).toEqual(ids);
    expect(JSON.parse(delRow.detail)).toEqual({ items: 4, failed: 1 });
  });

  it('records failed writes with their status and error code', async () => {
    const body = entryBody();
    await admin.call('POST', '/entries', body);
    const dup = await admin.call('POST', '/entries', body);
    expect(dup.status).toBe(409);
    expect(await onlyRow(dup)).toMatchObject({ action: 'entry.create', status: 409, error_code: 'ERR_ENTRY_EXISTS', object_ids: JSON.stringify([body.spiffeId]) });

    const unknown = sid(`/spire/agent/x/${unique()}`);
    const ban = await admin.call('POST', `/agents/${encodeURIComponent(unknown)}/ban`);
    expect(await onlyRow(ban)).toMatchObject({ action: 'agent.ban', status: 404, error_code: 'ERR_AGENT_NOT_FOUND', object_ids: JSON.stringify([unknown]) });

    const badJson = await admin.call('POST', '/join-tokens', '{', { 'content-type': 'application/json' });
    expect(await onlyRow(badJson)).toMatchObject({ action: 'join_token.create', status: 400, error_code: 'ERR_BAD_REQUEST', object_ids: '[]' });

    const mint = await admin.call('POST', '/x509-svids/mint', { spiffeId: sid('/m'), csr: btoa('garbage') });
    expect(await onlyRow(mint)).toMatchObject({ action: 'svid.mint_x509', status: 400, error_code: 'ERR_CSR_INVALID' });

    const noRoute = await admin.call('POST', '/no-such-thing', {});
    expect(await onlyRow(noRoute)).toMatchObject({ action: 'POST (no route)', route: 'POST (no route)', status: 404, error_code: 'ERR_NOT_FOUND' });
  });

  it('records nothing for reads and for requests without a valid credential', async () => {
    for (const path of ['/entries', '/entries/count', '/agents', '/bundle', '/audit']) {
      const res = await admin.call('GET', path);
      expect(res.status, path).toBeLessThan(500);
      expect(await rowsOf(res), path).toEqual([]);
    }
    for (const authorization of [undefined, 'Bearer wrong-token-wrong-token-wrong-token']) {
      const res = await admin.fetch('/entries', { method: 'POST', headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) }, body: JSON.stringify(entryBody()) });
      expect(res.status).toBeGreaterThanOrEqual(401);
      expect(await rowsOf(res)).toEqual([]);
    }
  });

  it('drops a source address that is not an IP address', async () => {
    const res = await admin.call('POST', '/entries', entryBody(), { 'cf-connecting-ip': '<script>' });
    expect((await onlyRow(res)).source_ip).toBeNull();
  });
});

describe('never a secret', () => {
  it('keeps no join token, JWT-SVID, certificate or CSR in any column', async () => {
    const token = await admin.call('POST', '/join-tokens', { ttlSeconds: 600, spiffeId: sid(`/spire/agent/preset/${unique()}`) });
    expect(token.status).toBe(201);
    const { token: secret, expiresAt } = (await token.json()) as { token: string; expiresAt: number };
    const tokenRow = await onlyRow(token);
    expect(tokenRow.action).toBe('join_token.create');
    expect(JSON.parse(tokenRow.object_ids)[0]).toMatch(/^join_token:sha256:[0-9a-f]{16}$/);
    expect(JSON.parse(tokenRow.detail)).toEqual({ expiresAt });

    const spiffeId = sid(`/minted/${unique()}`);
    const jwt = (await (await admin.call('POST', '/jwt-svids/mint', { spiffeId, audience: ['a'] })).json()) as { token: string };
    const x509 = (await (await admin.call('POST', '/x509-svids/mint', { spiffeId, csr })).json()) as { svid: { certChain: string[] } };

    // every column of every row, as text
    const { results } = await env.DB.prepare('SELECT * FROM audit_log').all<Record<string, unknown>>();
    expect(results.length).toBeGreaterThan(3);
    const everything = results.map((r) => Object.values(r).map(String).join('\u0000')).join('\n');
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(jwt.token.split('.')[2]);
    expect(everything).not.toContain(x509.svid.certChain[0]!.slice(40, 120));
    expect(everything).not.toContain(csr.slice(40, 120));
    expect(everything).not.toContain(config.adminToken);
  });
});

describe('routes the table does not name, and failed audit writes', () => {
  /** auditLog in front of a route no table names, as a helper's new admin route would be. */
  function appWith(record: (e: unknown) => Promise<void>) {
    const app = new Hono();
    app.onError(errorHandler);
    app.use('*', requestId);
    app.use('*', auditLog({ store: { record }, clock: () => NOW_MS, prefix: '/admin/v1', actions: {} }));
    app.use('*', async (c, next) => {
      c.set('adminPrincipal', 'admin-token');
      await next();
    });
    app.post('/admin/v1/localauthority/x509/:authorityId/taint', (c) => {
      noteAudit(c, { detail: { note: 'n' } });
      return c.json({ ok: true });
    });
    return app;
  }

  it('records an unnamed route as METHOD /pattern with its path parameters', async () => {
    const seen: unknown[] = [];
    const res = await appWith(async (e) => void seen.push(e)).request('http://issuer.test/admin/v1/localauthority/x509/ab%2Fcd/taint', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(seen).toEqual([
      expect.objectContaining({ action: 'POST /localauthority/x509/:authorityId/taint', objectIds: ['ab/cd'], detail: { note: 'n' }, status: 200, requestId: res.headers.get(REQUEST_ID_HEADER) }),
    ]);
  });

  it('answers 503 when the audit row cannot be written (fail closed), never the handler\'s 2xx', async () => {
    const res = await appWith(async () => {
      throw new Error('D1 is down');
    }).request('http://issuer.test/admin/v1/localauthority/x509/a/taint', { method: 'POST' });
    expect(res.status).toBe(503);
    expect(await errorCode(res)).toBe('ERR_UNAVAILABLE');
    expect(res.headers.get(REQUEST_ID_HEADER)).toMatch(/^[0-9a-f-]{36}$/);

    const failing = makeAdmin(ca, NOW_MS, (deps) => {
      deps.stores.audit = { ...deps.stores.audit, record: async () => Promise.reject(new Error('D1 is down')) };
    });
    const write = await failing.call('POST', '/entries', entryBody());
    expect(write.status).toBe(503);
    expect(write.headers.get('cache-control')).toBe('no-store');
    expect(await errorCode(write)).toBe('ERR_UNAVAILABLE');
  });
});

describe('GET /audit', () => {
  it('filters by action, principal, object and time, and pages in time order', async () => {
    const u = unique();
    const base = NOW + 1000;
    const clocks = [base, base + 10, base + 20];
    for (const at of clocks) {
      const res = await makeAdmin(ca, at * 1000).call('POST', '/entries', { ...entryBody(), spiffeId: sid(`/audit/${u}`), parentId: sid(`/spire/agent/${unique()}`) });
      expect(res.status).toBe(201);
    }
    const list = async (query: string) => {
      const res = await admin.call('GET', `/audit?${query}`);
      expect(res.status, query).toBe(200);
      return (await res.json()) as { events: AuditEvent[]; nextPageToken?: string };
    };
    const object = `objectId=${encodeURIComponent(sid(`/audit/${u}`))}`;
    const all = await list(object);
    expect(all.events.map((e) => e.at)).toEqual(clocks);
    expect(all.events.every((e) => e.action === 'entry.create' && e.principal === 'admin-token' && e.status === 201)).toBe(true);
    expect(all.nextPageToken).toBeUndefined();

    const since = new Date((base + 10) * 1000).toISOString();
    expect((await list(`${object}&since=${since}`)).events.map((e) => e.at)).toEqual([base + 10, base + 20]);
    expect((await list(`${object}&until=${base + 20}`)).events.map((e) => e.at)).toEqual([base, base + 10]);
    expect((await list(`${object}&action=entry.delete`)).events).toEqual([]);
    expect((await list(`${object}&action=entry.create&principal=admin-token`)).events).toHaveLength(3);
    expect((await list(`${object}&principal=spiffe%3A%2F%2Fexample.org%2Fsomeone`)).events).toEqual([]);

    const pages: number[][] = [];
    let token: string | undefined;
    do {
      const page = await list(`${object}&pageSize=2${token ? `&pageToken=${token}` : ''}`);
      pages.push(page.events.map((e) => e.at));
      token = page.nextPageToken;
    } while (token);
    expect(pages).toEqual([[base, base + 10], [base + 20]]);
  });

  it.each([
    ['since=yesterday'],
    ['since=2026-13-45T00:00:00Z'],
    ['until=2026-01-01'],
    ['pageSize=0'],
    ['pageToken=%21%21'],
    ['pageToken=YWJj'],
    ['action='],
    [`principal=${'x'.repeat(3000)}`],
  ])('rejects %s with 400', async (query) => {
    const res = await admin.call('GET', `/audit?${query}`);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('ERR_BAD_REQUEST');
  });
});

describe('retention', () => {
  it('the cron prunes events older than AUDIT_RETENTION (default 90d) and keeps the rest', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = `old-${unique()}`;
    const recent = `recent-${unique()}`;
    const event = { principal: 'admin-token', action: 'entry.create', route: 'POST /entries', objectIds: [], detail: {}, status: 201 };
    await audit.record({ ...event, at: now - 91 * 86400, requestId: old });
    await audit.record({ ...event, at: now - 89 * 86400, requestId: recent });
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/5 * * * *' }), env as never);
    const left = await env.DB.prepare('SELECT request_id FROM audit_log WHERE request_id IN (?, ?)').bind(old, recent).all<{ request_id: string }>();
    expect(left.results).toEqual([{ request_id: recent }]);
  });

  it('prunes in bounded chunks and reports how many went', async () => {
    const event = { principal: 'p', action: 'a', route: 'POST /a', objectIds: [], detail: {}, status: 200, requestId: unique() };
    await audit.record({ ...event, at: 5 });
    await audit.record({ ...event, at: 6 });
    expect(await audit.prune(7)).toBeGreaterThanOrEqual(2);
    expect(await audit.prune(7)).toBe(0);
  });
});
