// The applied migrations (migrations/*.sql, as wrangler applies them) match src/worker/db/schema.ts:
// every table, column, NOT NULL and index drizzle declares exists in D1, and nothing more.
import { env } from 'cloudflare:workers';
import { getTableConfig, type SQLiteTable } from 'drizzle-orm/sqlite-core';
import { expect, it } from 'vitest';
import * as schema from '../../../src/worker/db/schema.js';

const tables = Object.values(schema) as SQLiteTable[];

it.each(tables.map((t) => [getTableConfig(t).name, t] as const))('table %s matches schema.ts', async (name, table) => {
  const config = getTableConfig(table);
  const cols = await env.DB.prepare(`SELECT name, "notnull" AS nn FROM pragma_table_info(?)`).bind(name).all<{ name: string; nn: number }>();
  const actual = cols.results.map((c) => [c.name, c.nn === 1]).sort();
  const declared = config.columns.map((c) => [c.name, c.notNull]).sort();
  expect(actual).toEqual(declared);
  const idx = await env.DB.prepare(`SELECT name FROM pragma_index_list(?) WHERE origin = 'c'`).bind(name).all<{ name: string }>();
  expect(idx.results.map((i) => i.name).sort()).toEqual(config.indexes.map((i) => i.config.name).sort());
});

it('seeds the single registry_revision row', async () => {
  const rows = await env.DB.prepare('SELECT id FROM registry_revision').all();
  expect(rows.results).toEqual([{ id: 1 }]);
});
