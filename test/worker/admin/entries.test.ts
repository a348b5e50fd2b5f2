// Admin entry endpoints over real D1: create, batch-create, list/count with filters and pages, get, replace,
// batch-update, delete, batch-delete; bad input answers {"error":{code,message}} and writes nothing.
import { describe, expect, it } from 'vitest';
import { env } from 'cloudflare:workers';
import type { SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createEntryStore } from '../../../src/worker/db/entries.js';
import { makeNewEntry } from '../../helpers/shared/entry.js';
import { errorCode, makeAdmin, sid, unique } from '../../helpers/workerd/admin.js';

const admin = makeAdmin();
type EntryJson = { id: string; spiffeId: string; parentId: string; selectors: { type: string; value: string }[]; revisionNumber: number; [k: string]: unknown };

function input(u: string, extra: Record<string, unknown> = {}) {
  return { spiffeId: sid(`/${u}/web`), parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'unix', value: 'uid:1000' }], ...extra };
}

async function create(body: unknown): Promise<EntryJson> {
  const res = await admin.call('POST', '/entries', body);
  expect(res.status).toBe(201);
  return ((await res.json()) as { entry: EntryJson }).entry;
}

async function countOf(spiffeId: string): Promise<number> {
  const res = await admin.call('GET', `/entries/count?spiffeId=${encodeURIComponent(spiffeId)}`);
  return ((await res.json()) as { count: number }).count;
}

describe('POST /entries', () => {
  it('creates an entry with SPIRE field names and defaults', async () => {
    const u = unique();
    const entry = await create(input(u, { x509SvidTtl: 3600, dnsNames: ['web.example.org', '*.web.example.org'], federatesWith: ['partner.test'], hint: 'web' }));
    expect(entry).toMatchObject({
      spiffeId: sid(`/${u}/web`),
      parentId: sid(`/spire/agent/${u}`),
      selectors: [{ type: 'unix', value: 'uid:1000' }],
      x509SvidTtl: 3600,
      jwtSvidTtl: 0,
      dnsNames: ['web.example.org', '*.web.example.org'],
      federatesWith: ['partner.test'],
      admin: false,
      downstream: false,
      hint: 'web',
      expiresAt: 0,
      revisionNumber: 0,
    });
    expect(typeof entry.id).toBe('string');
    const got = await admin.call('GET', `/entries/${entry.id}`);
    expect(await got.json()).toEqual({ entry });
  });

  it('answers 409 ERR_ENTRY_EXISTS for an exact duplicate', async () => {
    const u = unique();
    await create(input(u));
    const res = await admin.call('POST', '/entries', input(u));
    expect(res.status).toBe(409);
    expect(await errorCode(res)).toBe('ERR_ENTRY_EXISTS');
    expect(await countOf(sid(`/${u}/web`))).toBe(1);
  });

  const bad: [string, (u: string) => unknown, number, string][] = [
    ['a spiffeId with another scheme', (u) => input(u, { spiffeId: `https://example.org/${u}` }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['an uppercase trust domain', (u) => input(u, { spiffeId: `spiffe://Example.org/${u}` }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a dot segment', (u) => input(u, { spiffeId: sid(`/${u}/../x`) }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a trailing slash', (u) => input(u, { spiffeId: sid(`/${u}/`) }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a percent-encoded path', (u) => input(u, { spiffeId: sid(`/${u}%41`) }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a query', (u) => input(u, { spiffeId: sid(`/${u}?a=b`) }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a port', (u) => input(u, { spiffeId: `spiffe://example.org:8080/${u}` }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['an ID over 2048 bytes', (u) => input(u, { spiffeId: sid(`/${u}/${'a'.repeat(2048)}`) }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['the trust domain ID itself', (u) => input(u, { spiffeId: sid('') }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a reserved /spire/ ID', (u) => input(u, { spiffeId: sid(`/spire/agent/${u}`), parentId: sid('/spire/server') }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a missing spiffeId', (u) => ({ parentId: sid(`/spire/agent/${u}`), selectors: [{ type: 'a', value: 'b' }] }), 400, 'ERR_SPIFFE_ID_INVALID'],
    ['a foreign spiffeId', (u) => input(u, { spiffeId: `spiffe://other.test/${u}` }), 400, 'ERR_TRUST_DOMAIN_MISMATCH'],
    ['a foreign parentId', (u) => input(u, { parentId: `spiffe://other.test/spire/agent/${u}` }), 400, 'ERR_TRUST_DOMAIN_MISMATCH'],
    ['no selectors', (u) => input(u, { selectors: [] }), 400, 'ERR_SELECTOR_INVALID'],
    ['a selector without a value', (u) => input(u, { selectors: [{ type: 'unix', value: '' }] }), 400, 'ERR_SELECTOR_INVALID'],
    ['duplicate selectors', (u) => input(u, { selectors: [{ type: 'a', value: 'b' }, { type: 'a', value: 'b' }] }), 400, 'ERR_SELECTOR_INVALID'],
    ['a TTL beyond 30 days', (u) => input(u, { x509SvidTtl: 30 * 86400 + 1 }), 400, 'ERR_ENTRY_INVALID'],
    ['a fractional TTL', (u) => input(u, { jwtSvidTtl: 1.5 }), 400, 'ERR_ENTRY_INVALID'],
    ['a wildcard that is not leftmost', (u) => input(u, { dnsNames: ['a.*.example.org'] }), 400, 'ERR_ENTRY_INVALID'],
    ['a DNS label with an underscore', (u) => input(u, { dnsNames: ['a_b.example.org'] }), 400, 'ERR_ENTRY_INVALID'],
    ['a hint over 1024 bytes', (u) => input(u, { hint: 'é'.repeat(513) }), 400, 'ERR_ENTRY_INVALID'],
    ['an invalid federated trust domain', (u) => input(u, { federatesWith: ['Partner.test'] }), 400, 'ERR_ENTRY_INVALID'],
    ['a negative expiresAt', (u) => input(u, { expiresAt: -1 }), 400, 'ERR_ENTRY_INVALID'],
    ['an unknown field', (u) => input(u, { x509SvidTTL: 60 }), 400, 'ERR_ENTRY_INVALID'],
    ['a malformed id', (u) => input(u, { id: 'has space' }), 400, 'ERR_ENTRY_INVALID'],
    ['an array body', (u) => [input(u)], 400, 'ERR_BAD_REQUEST'],
    ['malformed JSON', () => '{"spiffeId": ', 400, 'ERR_BAD_REQUEST'],
  ];
  it.each(bad)('rejects %s and writes nothing', async (_what, body, status, code) => {
    const u = unique();
    const before = await admin.call('GET', '/entries/count');
    const res = await admin.call('POST', '/entries', body(u));
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
    const after = await admin.call('GET', '/entries/count');
    expect(await after.json()).toEqual(await before.json());
  });

  it('rejects a wrong content type (415) and a body over 64 KiB (413)', async () => {
    const u = unique();
    const wrongType = await admin.call('POST', '/entries', input(u), { 'content-type': 'text/plain' });
    expect(wrongType.status).toBe(415);
    expect(await errorCode(wrongType)).toBe('ERR_UNSUPPORTED_MEDIA_TYPE');
    const big = await admin.call('POST', '/entries', input(u, { hint: 'x'.repeat(70_000) }));
    expect(big.status).toBe(413);
    expect(await errorCode(big)).toBe('ERR_REQUEST_TOO_LARGE');
    expect(await countOf(sid(`/${u}/web`))).toBe(0);
  });
});

describe('POST /entries/batch-create', () => {
  it('answers a per-item status in order', async () => {
    const u = unique();
    const res = await admin.call('POST', '/entries/batch-create', {
      entries: [input(u), input(u, { spiffeId: 'nope' }), input(u), input(u, { spiffeId: sid(`/${u}/other`) })],
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: { status: { code: string }; entry?: EntryJson }[] };
    expect(results.map((r) => r.status.code)).toEqual(['OK', 'ERR_SPIFFE_ID_INVALID', 'ERR_ENTRY_EXISTS', 'OK']);
    expect(results[0]!.entry!.spiffeId).toBe(sid(`/${u}/web`));
    expect(results[1]!.entry).toBeUndefined();
  });

  it('refuses more than 500 items (413) and a missing list (400)', async () => {
    const u = unique();
    const many = Array.from({ length: 501 }, (_, i) => input(u, { spiffeId: sid(`/${u}/w${i}`) }));
    const res = await admin.call('POST', '/entries/batch-create', { entries: many });
    expect(res.status).toBe(413);
    expect(await countOf(sid(`/${u}/w0`))).toBe(0);
    const none = await admin.call('POST', '/entries/batch-create', { entry: [] });
    expect(await errorCode(none)).toBe('ERR_BAD_REQUEST');
  });
});

describe('GET /entries', () => {
  it('filters by parentId and selectors with a match mode and pages through results', async () => {
    const u = unique();
    const parentId = sid(`/spire/agent/${u}`);
    const sel = (v: string) => ({ type: 'k8s', value: v });
    await admin.call('POST', '/entries/batch-create', {
      entries: [
        { spiffeId: sid(`/${u}/a`), parentId, selectors: [sel('ns:a'), sel('sa:x')] },
        { spiffeId: sid(`/${u}/b`), parentId, selectors: [sel('ns:a')] },
        { spiffeId: sid(`/${u}/c`), parentId, selectors: [sel('ns:c')] },
      ],
    });
    const q = async (query: string) => {
      const res = await admin.call('GET', `/entries?parentId=${encodeURIComponent(parentId)}&${query}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { entries: EntryJson[] }).entries.map((e) => e.spiffeId.split('/').pop()).sort();
    };
    expect(await q('selector=k8s:ns:a')).toEqual(['a', 'b']); // default: superset
    expect(await q('selector=k8s:ns:a&match=exact')).toEqual(['b']);
    expect(await q('selector=k8s:ns:a&selector=k8s:sa:x&match=subset')).toEqual(['a', 'b']);
    expect(await q('selector=k8s:ns:c&selector=k8s:sa:x&match=any')).toEqual(['a', 'c']);

    const first = (await (await admin.call('GET', `/entries?parentId=${encodeURIComponent(parentId)}&pageSize=2`)).json()) as { entries: EntryJson[]; nextPageToken?: string };
    expect(first.entries).toHaveLength(2);
    const second = (await (await admin.call('GET', `/entries?parentId=${encodeURIComponent(parentId)}&pageSize=2&pageToken=${first.nextPageToken}`)).json()) as { entries: EntryJson[]; nextPageToken?: string };
    expect(second.entries).toHaveLength(1);
    expect(second.nextPageToken).toBeUndefined();
    const count = await admin.call('GET', `/entries/count?parentId=${encodeURIComponent(parentId)}&selector=k8s:ns:a`);
    expect(await count.json()).toEqual({ count: 2 });
  });

  it('filters by federatesWith (SPIRE match modes, default superset), hint and downstream', async () => {
    const u = unique();
    const parentId = sid(`/spire/agent/${u}`);
    const sel = [{ type: 'unix', value: 'uid:1' }];
    await admin.call('POST', '/entries/batch-create', {
      entries: [
        { spiffeId: sid(`/${u}/ab`), parentId, selectors: sel, federatesWith: ['a.test', 'b.test'], hint: 'web' },
        { spiffeId: sid(`/${u}/a`), parentId, selectors: sel, federatesWith: ['a.test'], downstream: true },
        { spiffeId: sid(`/${u}/c`), parentId, selectors: sel, federatesWith: ['c.test'], hint: 'web2' },
        { spiffeId: sid(`/${u}/none`), parentId, selectors: sel },
      ],
    });
    const q = async (query: string) => {
      const res = await admin.call('GET', `/entries?parentId=${encodeURIComponent(parentId)}&${query}`);
      expect(res.status).toBe(200);
      const count = await admin.call('GET', `/entries/count?parentId=${encodeURIComponent(parentId)}&${query}`);
      const names = ((await res.json()) as { entries: EntryJson[] }).entries.map((e) => e.spiffeId.split('/').pop()).sort();
      expect(await count.json()).toEqual({ count: names.length });
      return names;
    };
    expect(await q('federatesWith=a.test')).toEqual(['a', 'ab']);
    expect(await q('federatesWith=a.test&federatesWith=b.test')).toEqual(['ab']);
    expect(await q('federatesWith=a.test&federatesWithMatch=exact')).toEqual(['a']);
    expect(await q('federatesWith=a.test&federatesWith=b.test&federatesWithMatch=exact')).toEqual(['ab']);
    expect(await q('federatesWith=a.test&federatesWith=c.test&federatesWithMatch=subset')).toEqual(['a', 'c']);
    expect(await q('federatesWith=b.test&federatesWith=c.test&federatesWithMatch=any')).toEqual(['ab', 'c']);
    expect(await q('federatesWith=d.test&federatesWithMatch=any')).toEqual([]);
    expect(await q('hint=web')).toEqual(['ab']);
    expect(await q('downstream=true')).toEqual(['a']);
    expect(await q('downstream=false')).toEqual(['ab', 'c', 'none']);
    expect(await q('downstream=false&federatesWith=a.test')).toEqual(['ab']);
  });

  it.each([
    ['federatesWith=spiffe%3A%2F%2Fa.test', 'ERR_BAD_REQUEST'],
    ['federatesWith=a.test&federatesWithMatch=all', 'ERR_BAD_REQUEST'],
    ['downstream=yes', 'ERR_BAD_REQUEST'],
    ['match=some&selector=a:b', 'ERR_BAD_REQUEST'],
    ['pageSize=0', 'ERR_BAD_REQUEST'],
    ['pageSize=1001', 'ERR_BAD_REQUEST'],
    ['pageToken=%21%21', 'ERR_BAD_REQUEST'],
    ['selector=novalue', 'ERR_SELECTOR_INVALID'],
    ['spiffeId=spiffe%3A%2F%2Fexample.org%2F', 'ERR_SPIFFE_ID_INVALID'],
  ])('rejects ?%s', async (query, code) => {
    const res = await admin.call('GET', `/entries?${query}`);
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe(code);
  });
});

describe('GET/PUT/DELETE /entries/:id', () => {
  it('answers 404 for unknown and malformed ids', async () => {
    for (const id of [unique(), 'bad%20id']) {
      for (const [method, body] of [['GET', undefined], ['PUT', input(unique())], ['DELETE', undefined]] as const) {
        const res = await admin.call(method, `/entries/${id}`, body);
        expect(res.status).toBe(404);
        expect(await errorCode(res)).toBe('ERR_ENTRY_NOT_FOUND');
      }
    }
  });

  it('replaces an entry wholesale and bumps its revision; a GET result can be sent back as is', async () => {
    const u = unique();
    const entry = await create(input(u, { dnsNames: ['a.example.org'], hint: 'h' }));
    const res = await admin.call('PUT', `/entries/${entry.id}`, { ...entry, selectors: [{ type: 'unix', value: 'uid:2' }], dnsNames: undefined, hint: undefined });
    expect(res.status).toBe(200);
    const { entry: updated } = (await res.json()) as { entry: EntryJson };
    expect(updated).toMatchObject({ id: entry.id, selectors: [{ type: 'unix', value: 'uid:2' }], dnsNames: [], hint: '', revisionNumber: 1 });
    expect(updated.createdAt).toBe(entry.createdAt);
  });

  it('refuses a body id different from the path, and an update into a duplicate (409), leaving the entry as it was', async () => {
    const u = unique();
    const a = await create(input(u));
    const b = await create(input(u, { selectors: [{ type: 'unix', value: 'uid:2' }] }));
    const mismatch = await admin.call('PUT', `/entries/${a.id}`, { ...a, id: b.id });
    expect(await errorCode(mismatch)).toBe('ERR_BAD_REQUEST');
    const dup = await admin.call('PUT', `/entries/${b.id}`, { ...b, selectors: a.selectors });
    expect(dup.status).toBe(409);
    expect(await (await admin.call('GET', `/entries/${b.id}`)).json()).toEqual({ entry: b });
    const invalid = await admin.call('PUT', `/entries/${b.id}`, { ...b, parentId: 'spiffe://other.test/x' });
    expect(await errorCode(invalid)).toBe('ERR_TRUST_DOMAIN_MISMATCH');
  });

  it('deletes an entry (204) and then it is gone', async () => {
    const entry = await create(input(unique()));
    const res = await admin.call('DELETE', `/entries/${entry.id}`);
    expect(res.status).toBe(204);
    expect((await admin.call('GET', `/entries/${entry.id}`)).status).toBe(404);
  });
});

describe('entry IDs "." and ".." (URLs remove such path segments, so /entries/<id> could not reach them)', () => {
  it('are refused by create, batch-create, PUT and batch-update with a clear message', async () => {
    for (const id of ['.', '..']) {
      const u = unique();
      const res = await admin.call('POST', '/entries', input(u, { id }));
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error).toEqual({ code: 'ERR_ENTRY_INVALID', message: 'id must not be "." or "..": URLs drop such path segments, so /entries/<id> could not reach the entry' });
      const batch = await admin.call('POST', '/entries/batch-create', { entries: [input(u, { id })] });
      expect(((await batch.json()) as { results: { status: { code: string } }[] }).results.map((r) => r.status.code)).toEqual(['ERR_ENTRY_INVALID']);
      expect(await countOf(input(u).spiffeId)).toBe(0);
      const a = await create(input(u));
      expect(await errorCode(await admin.call('PUT', `/entries/${a.id}`, { ...a, id }))).toBe('ERR_ENTRY_INVALID');
      const update = await admin.call('POST', '/entries/batch-update', { entries: [{ ...a, id }] });
      expect(((await update.json()) as { results: { status: { code: string } }[] }).results.map((r) => r.status.code)).toEqual(['ERR_ENTRY_INVALID']);
    }
  });

  it('made before, are still removed by batch-delete', async () => {
    const u = unique();
    const [made] = await createEntryStore(env.DB).createBatch([{ ...makeNewEntry({ spiffeId: sid(`/${u}/web`) as SpiffeId, parentId: sid(`/spire/agent/${u}`) as SpiffeId, selectors: [{ type: 'unix', value: 'uid:1' }] }), id: '..' }], Math.floor(Date.now() / 1000));
    expect(made?.status.code).toBe('OK');
    const res = await admin.call('POST', '/entries/batch-delete', { ids: ['..'] });
    expect(((await res.json()) as { results: { status: { code: string } }[] }).results.map((r) => r.status.code)).toEqual(['OK']);
  });
});

describe('batch-update and batch-delete', () => {
  it('updates per item: OK, not found, missing id, invalid', async () => {
    const u = unique();
    const a = await create(input(u));
    const res = await admin.call('POST', '/entries/batch-update', {
      entries: [{ ...a, hint: 'new' }, { ...input(u), id: unique() }, input(u), { ...a, spiffeId: 'x' }],
    });
    const { results } = (await res.json()) as { results: { status: { code: string }; entry?: EntryJson }[] };
    expect(results.map((r) => r.status.code)).toEqual(['OK', 'ERR_ENTRY_NOT_FOUND', 'ERR_BAD_REQUEST', 'ERR_SPIFFE_ID_INVALID']);
    expect(results[0]!.entry).toMatchObject({ hint: 'new', revisionNumber: 1 });
  });

  it('deletes per item', async () => {
    const a = await create(input(unique()));
    const res = await admin.call('POST', '/entries/batch-delete', { ids: [a.id, unique(), 42] });
    expect(await res.json()).toEqual({
      results: [
        { status: { code: 'OK', message: 'OK' }, id: a.id },
        { status: { code: 'ERR_ENTRY_NOT_FOUND', message: 'no entry with this id' } },
        { status: { code: 'ERR_ENTRY_INVALID', message: expect.any(String) } },
      ],
    });
  });
});
