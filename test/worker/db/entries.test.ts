// EntryStore over real D1 (migrations applied): batches, uniqueness, revision, pagination, selector match
// modes and SPIRE's authorized-entries algorithm. Each test uses its own trust-domain path prefix.
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import type { NewEntry } from '../../../src/shared/registry/entry.js';
import { authorizedEntriesOf } from '../../../src/shared/registry/authorized-entries.js';
import type { Selector } from '../../../src/shared/registry/selectors.js';
import { parseSpiffeId, type SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createEntryStore } from '../../../src/worker/db/entries.js';
import { makeNewEntry } from '../../helpers/shared/entry.js';

const store = createEntryStore(env.DB);
const NOW = 1_800_000_000;
const SERVER = parseSpiffeId('spiffe://example.org/spire/server');
let seq = 0;
const unique = () => `t${Date.now().toString(36)}${(seq++).toString(36)}`;
const id = (path: string) => parseSpiffeId(`spiffe://example.org${path}`);
const sel = (s: string): Selector => ({ type: s.slice(0, s.indexOf(':')), value: s.slice(s.indexOf(':') + 1) });

function entry(spiffeId: SpiffeId, parentId: SpiffeId, selectors: string[], extra: Partial<NewEntry> = {}): NewEntry {
  return makeNewEntry({ spiffeId, parentId, selectors: selectors.map(sel), ...extra });
}

async function createOk(...items: NewEntry[]) {
  const results = await store.createBatch(items, NOW);
  for (const r of results) expect(r.status).toEqual({ code: 'OK', message: 'OK' });
  return results.map((r) => r.value!);
}

describe('createBatch', () => {
  it('stores entries with canonical selectors and reads them back', async () => {
    const u = unique();
    const [created] = await createOk(
      entry(id(`/${u}/web`), id(`/spire/agent/${u}`), ['unix:uid:1000', 'k8s:ns:prod'], { dnsNames: ['web.example.org'], x509SvidTtl: 600, admin: true, hint: 'h' }),
    );
    expect(created).toMatchObject({
      spiffeId: id(`/${u}/web`),
      selectors: [sel('k8s:ns:prod'), sel('unix:uid:1000')],
      dnsNames: ['web.example.org'],
      x509SvidTtl: 600,
      admin: true,
      downstream: false,
      hint: 'h',
      revisionNumber: 0,
      createdAt: NOW,
    });
    expect(await store.getById(created!.id)).toEqual(created);
  });

  it('rejects an exact duplicate (same spiffeId, parentId and selector set, any order) per item', async () => {
    const u = unique();
    const a = entry(id(`/${u}/a`), id(`/spire/agent/${u}`), ['unix:uid:1', 'unix:gid:2']);
    await createOk(a);
    const results = await store.createBatch(
      [entry(id(`/${u}/a`), id(`/spire/agent/${u}`), ['unix:gid:2', 'unix:uid:1']), entry(id(`/${u}/a`), id(`/spire/agent/${u}`), ['unix:uid:1'])],
      NOW,
    );
    expect(results.map((r) => r.status.code)).toEqual(['ERR_ENTRY_EXISTS', 'OK']);
    expect(await store.count({ spiffeId: id(`/${u}/a`) })).toBe(2);
  });

  it('rejects a chosen id that is taken, and duplicates inside one batch', async () => {
    const u = unique();
    const [first] = await createOk({ ...entry(id(`/${u}/a`), id(`/spire/agent/${u}`), ['unix:uid:1']), id: `${u}-fixed` });
    expect(first!.id).toBe(`${u}-fixed`);
    const results = await store.createBatch(
      [
        { ...entry(id(`/${u}/b`), id(`/spire/agent/${u}`), ['unix:uid:2']), id: `${u}-fixed` },
        entry(id(`/${u}/c`), id(`/spire/agent/${u}`), ['unix:uid:3']),
        entry(id(`/${u}/c`), id(`/spire/agent/${u}`), ['unix:uid:3']),
      ],
      NOW,
    );
    expect(results.map((r) => r.status.code)).toEqual(['ERR_ENTRY_EXISTS', 'OK', 'ERR_ENTRY_EXISTS']);
    // the taken id kept its original entry and selectors
    expect((await store.getById(`${u}-fixed`))!.spiffeId).toBe(id(`/${u}/a`));
    expect(await store.count({ selectors: { selectors: [sel('unix:uid:2')], match: 'any' }, parentId: id(`/spire/agent/${u}`) })).toBe(0);
  });

  it('handles a batch of 500 entries with many selectors in a few statements', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    const many = Array.from({ length: 64 }, (_, i) => `unix:gid:${i}`);
    const items = Array.from({ length: 500 }, (_, i) => entry(id(`/${u}/w${i}`), parent, i === 0 ? many : [`unix:uid:${i}`]));
    const results = await store.createBatch(items, NOW);
    expect(results.every((r) => r.status.code === 'OK')).toBe(true);
    expect(await store.count({ parentId: parent })).toBe(500);
    expect(await store.count({ parentId: parent, selectors: { selectors: many.map(sel), match: 'exact' } })).toBe(1);
  });
});

describe('registry revision', () => {
  it('changes on every entry write', async () => {
    const u = unique();
    const r0 = await store.revision();
    const [e] = await createOk(entry(id(`/${u}/a`), id(`/spire/agent/${u}`), ['unix:uid:1']));
    const r1 = await store.revision();
    expect(r1).not.toBe(r0);
    await store.updateBatch([{ ...e!, hint: 'x' }], NOW);
    const r2 = await store.revision();
    expect(r2).not.toBe(r1);
    await store.deleteBatch([e!.id]);
    expect(await store.revision()).not.toBe(r2);
  });
});

describe('updateBatch', () => {
  it('replaces the entry wholesale, bumps revisionNumber and re-indexes selectors', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    const [e] = await createOk(entry(id(`/${u}/a`), parent, ['unix:uid:1'], { dnsNames: ['a.example'] }));
    const [r] = await store.updateBatch([{ ...e!, selectors: [sel('unix:uid:2')], dnsNames: [], revisionNumber: 99, createdAt: 5 }], NOW + 10);
    expect(r!.status.code).toBe('OK');
    expect(r!.value).toMatchObject({ selectors: [sel('unix:uid:2')], dnsNames: [], revisionNumber: 1, createdAt: NOW });
    expect(await store.count({ parentId: parent, selectors: { selectors: [sel('unix:uid:1')], match: 'any' } })).toBe(0);
    expect(await store.count({ parentId: parent, selectors: { selectors: [sel('unix:uid:2')], match: 'exact' } })).toBe(1);
  });

  it('reports unknown ids and updates that would duplicate another entry, without writing them', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    const [a, b] = await createOk(entry(id(`/${u}/a`), parent, ['unix:uid:1']), entry(id(`/${u}/a`), parent, ['unix:uid:2']));
    const results = await store.updateBatch(
      [
        { ...b!, selectors: [sel('unix:uid:1')] },
        { ...a!, id: `${u}-missing` },
        { ...a!, hint: 'ok' },
        { ...a!, hint: 'again' },
      ],
      NOW,
    );
    expect(results.map((r) => r.status.code)).toEqual(['ERR_ENTRY_EXISTS', 'ERR_ENTRY_NOT_FOUND', 'OK', 'ERR_BAD_REQUEST']);
    expect(await store.getById(b!.id)).toEqual(b);
    expect((await store.getById(a!.id))!.hint).toBe('ok');
  });
});

describe('deleteBatch', () => {
  it('deletes entries and their selectors, reporting unknown ids', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    const [a] = await createOk(entry(id(`/${u}/a`), parent, ['unix:uid:1']));
    const results = await store.deleteBatch([a!.id, `${u}-nope`]);
    expect(results.map((r) => r.status.code)).toEqual(['OK', 'ERR_ENTRY_NOT_FOUND']);
    expect(await store.getById(a!.id)).toBeUndefined();
    const left = await env.DB.prepare('SELECT COUNT(*) AS n FROM entry_selectors WHERE entry_id = ?').bind(a!.id).first<{ n: number }>();
    expect(left!.n).toBe(0);
  });
});

describe('list and count', () => {
  it('pages through all matches in id order without repeats', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    await createOk(...Array.from({ length: 7 }, (_, i) => entry(id(`/${u}/w${i}`), parent, ['unix:uid:1'])));
    const seen: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await store.list({ parentId: parent }, { pageSize: 3, ...(pageToken ? { pageToken } : {}) });
      seen.push(...page.entries.map((e) => e.id));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(7);
    expect([...seen].sort()).toEqual(seen);
    expect(await store.count({ parentId: parent })).toBe(7);
  });

  it('rejects a forged page token', async () => {
    await expect(store.list({}, { pageSize: 1, pageToken: '!!!' })).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST' });
  });

  it('filters by selectors in the four SPIRE match modes', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    const [ab, a, abc, d] = await createOk(
      entry(id(`/${u}/ab`), parent, ['t:a', 't:b']),
      entry(id(`/${u}/a`), parent, ['t:a']),
      entry(id(`/${u}/abc`), parent, ['t:a', 't:b', 't:c']),
      entry(id(`/${u}/d`), parent, ['t:d']),
    );
    const q = async (match: 'exact' | 'subset' | 'superset' | 'any', s: string[]) =>
      (await store.list({ parentId: parent, selectors: { selectors: s.map(sel), match } }, { pageSize: 100 })).entries.map((e) => e.id).sort();
    const ids = (...es: { id: string }[]) => es.map((e) => e.id).sort();
    expect(await q('exact', ['t:b', 't:a'])).toEqual(ids(ab!));
    expect(await q('subset', ['t:a', 't:b'])).toEqual(ids(ab!, a!));
    expect(await q('superset', ['t:a', 't:b'])).toEqual(ids(ab!, abc!));
    expect(await q('any', ['t:c', 't:d'])).toEqual(ids(abc!, d!));
    expect(await q('any', ['t:zzz'])).toEqual([]);
    expect(await store.count({ parentId: parent, selectors: { selectors: [sel('t:a')], match: 'superset' } })).toBe(3);
  });

  it('filters by spiffeId', async () => {
    const u = unique();
    await createOk(entry(id(`/${u}/x`), id(`/spire/agent/${u}`), ['t:a']), entry(id(`/${u}/y`), id(`/spire/agent/${u}`), ['t:a']));
    const page = await store.list({ spiffeId: id(`/${u}/x`) }, { pageSize: 10 });
    expect(page.entries.map((e) => e.spiffeId)).toEqual([id(`/${u}/x`)]);
  });
});

describe('listAuthorized', () => {
  it('follows agent-parented entries, matching node aliases and descendants, skipping expired ones', async () => {
    const u = unique();
    const agent = id(`/spire/agent/join_token/${u}`);
    const otherAgent = id(`/spire/agent/join_token/${u}-other`);
    const node = [sel(`join_token:${u}`), sel('region:eu')];
    const all = await createOk(
      entry(id(`/${u}/direct`), agent, ['unix:uid:1']), // 0: parented by the agent
      entry(id(`/${u}/cluster`), SERVER, [`join_token:${u}`]), // 1: node alias, selectors ⊆ node selectors
      entry(id(`/${u}/cluster-eu`), SERVER, [`join_token:${u}`, 'region:eu']), // 2: alias, equal set
      entry(id(`/${u}/not-alias`), SERVER, [`join_token:${u}`, 'region:us']), // 3: not a subset
      entry(id(`/${u}/via-alias`), id(`/${u}/cluster`), ['unix:uid:2']), // 4: child of alias
      entry(id(`/${u}/grandchild`), id(`/${u}/via-alias`), ['unix:uid:3']), // 5: grandchild
      entry(id(`/${u}/under-direct`), id(`/${u}/direct`), ['unix:uid:4']), // 6: child of a direct entry
      entry(id(`/${u}/expired`), agent, ['unix:uid:5'], { expiresAt: NOW - 1 }), // 7: expired
      entry(id(`/${u}/under-expired`), id(`/${u}/expired`), ['unix:uid:6']), // 8: only reachable via expired
      entry(id(`/${u}/other`), otherAgent, ['unix:uid:7']), // 9: another agent's
      entry(id(`/${u}/via-not-alias`), id(`/${u}/not-alias`), ['unix:uid:8']), // 10
      entry(id(`/${u}/future`), agent, ['unix:uid:9'], { expiresAt: NOW + 100 }), // 11: not yet expired
    );
    const got = (await store.listAuthorized(agent, node, NOW)).map((e) => e.id).sort();
    const want = [0, 1, 2, 4, 5, 6, 11].map((i) => all[i]!.id).sort();
    expect(got).toEqual(want);
    // same answer as the in-memory reference implementation
    const reference = (await authorizedEntriesOf(all, agent, SERVER, node, NOW)).map((e) => e.id).sort();
    expect(reference).toEqual(want);
  });

  it('terminates on cycles and returns nothing for an unknown agent', async () => {
    const u = unique();
    const agent = id(`/spire/agent/${u}`);
    await createOk(entry(id(`/${u}/a`), agent, ['t:1']), entry(id(`/${u}/b`), id(`/${u}/a`), ['t:2']), entry(id(`/${u}/a`), id(`/${u}/b`), ['t:3']));
    expect(await store.listAuthorized(agent, [], NOW)).toHaveLength(3);
    expect(await store.listAuthorized(id(`/spire/agent/${u}-nobody`), [sel('t:1')], NOW)).toEqual([]);
  });

  it('finds entries by selector through the (type, value) index, not a scan', async () => {
    const plan = await env.DB.prepare(
      `EXPLAIN QUERY PLAN SELECT es.entry_id, COUNT(*) FROM json_each(?) q JOIN entry_selectors es
       ON es.type = json_extract(q.value, '$.type') AND es.value = json_extract(q.value, '$.value') GROUP BY es.entry_id`,
    )
      .bind('[]')
      .all<{ detail: string }>();
    const details = plan.results.map((r) => r.detail).join('\n');
    expect(details).toMatch(/entry_selectors_type_value_idx/);
    const byParent = await env.DB.prepare(`EXPLAIN QUERY PLAN SELECT * FROM entries e WHERE e.parent_id IN (SELECT value FROM json_each(?))`)
      .bind('[]')
      .all<{ detail: string }>();
    expect(byParent.results.map((r) => r.detail).join('\n')).toMatch(/entries_parent_id_idx/);
  });
});

describe('isAdmin', () => {
  it('is true only for an unexpired admin entry', async () => {
    const u = unique();
    const parent = id(`/spire/agent/${u}`);
    await createOk(entry(id(`/${u}/admin`), parent, ['t:1'], { admin: true }), entry(id(`/${u}/old-admin`), parent, ['t:1'], { admin: true, expiresAt: NOW - 1 }), entry(id(`/${u}/user`), parent, ['t:1']));
    expect(await store.isAdmin(id(`/${u}/admin`), NOW)).toBe(true);
    expect(await store.isAdmin(id(`/${u}/old-admin`), NOW)).toBe(false);
    expect(await store.isAdmin(id(`/${u}/user`), NOW)).toBe(false);
  });
});
