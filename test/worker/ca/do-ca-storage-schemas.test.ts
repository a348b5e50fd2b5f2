// The CA Durable Object's SQLite storage (src/worker/ca/do-ca-storage.ts) over data stored by earlier
// schemas: a database left at schema 1 and one at schema 4, laid out here as those versions created them
// (written out on purpose, not taken from the module, so a change of its migrations cannot pass unseen),
// migrate to CA_SCHEMA_VERSION, load every slot as it was stored, and take a WIT key slot (schema 5).
import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { CA_SCHEMA_VERSION, createDoCaStorage } from '../../../src/worker/ca/do-ca-storage.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { freshCa } from '../../helpers/workerd/ca.js';

const SCHEMA_1 = [
  `CREATE TABLE ca_key_slots (kid TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('x509', 'jwt')), status TEXT NOT NULL CHECK (status IN ('prepared', 'active', 'old')),
     issued_at INTEGER NOT NULL, not_after INTEGER NOT NULL, alg TEXT NOT NULL, cert_der BLOB, public_jwk TEXT, key_iv BLOB NOT NULL, key_ciphertext BLOB NOT NULL)`,
  'CREATE TABLE ca_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)',
];
const SCHEMA_2_TO_4 = [
  'ALTER TABLE ca_key_slots ADD COLUMN tainted INTEGER NOT NULL DEFAULT 0',
  'CREATE TABLE ca_rate_buckets (kind TEXT NOT NULL, key TEXT NOT NULL, tokens REAL NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID',
  'CREATE TABLE ca_metrics (name TEXT NOT NULL, labels TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (name, labels)) WITHOUT ROWID',
];
const SLOT_ROWS = [
  `INSERT INTO ca_key_slots (kid, kind, status, issued_at, not_after, alg, cert_der, public_jwk, key_iv, key_ciphertext)
     VALUES ('x-1', 'x509', 'active', 1000, 9000, 'EC P-256', x'3082beef', NULL, x'0102', x'0a0b0c')`,
  `INSERT INTO ca_key_slots (kid, kind, status, issued_at, not_after, alg, cert_der, public_jwk, key_iv, key_ciphertext)
     VALUES ('j-1', 'jwt', 'old', 500, 8000, 'ES256', NULL, '{"kty":"EC","crv":"P-256"}', x'03', x'0d')`,
  "INSERT INTO ca_meta (key, value) VALUES ('sequence', 7)",
];

/** In the object's storage: every CA table dropped, then `statements` run and the schema version set. */
function storeAt(sql: SqlStorage, version: number, statements: string[]): void {
  for (const t of ['ca_key_slots', 'ca_meta', 'ca_rate_buckets', 'ca_metrics', 'ca_schema']) sql.exec(`DROP TABLE IF EXISTS ${t}`);
  for (const s of statements) sql.exec(s);
  sql.exec('CREATE TABLE ca_schema (version INTEGER NOT NULL)');
  sql.exec('INSERT INTO ca_schema (version) VALUES (?)', version);
}

const bytes = (...b: number[]) => new Uint8Array(b);
const storedSlots = (tainted: boolean) => [
  { kid: 'j-1', kind: 'jwt', status: 'old', issuedAt: 500, notAfter: 8000, alg: 'ES256', certDer: undefined, publicJwk: { kty: 'EC', crv: 'P-256' }, keyIv: bytes(3), keyCiphertext: bytes(0x0d) },
  { kid: 'x-1', kind: 'x509', status: 'active', issuedAt: 1000, notAfter: 9000, alg: 'EC P-256', certDer: bytes(0x30, 0x82, 0xbe, 0xef), publicJwk: undefined, keyIv: bytes(1, 2), keyCiphertext: bytes(0x0a, 0x0b, 0x0c), ...(tainted ? { tainted: true } : {}) },
];

describe('CA storage from earlier schemas', () => {
  it('schema 1: migrates through every version and loads the slots and the sequence as stored', async () => {
    const { stub } = freshCa();
    await runInDurableObject(stub, (_i: TrustDomainCa, state) => {
      storeAt(state.storage.sql, 1, [...SCHEMA_1, ...SLOT_ROWS]);
      const storage = createDoCaStorage(state.storage);
      expect(state.storage.sql.exec<{ version: number }>('SELECT version FROM ca_schema').toArray()).toEqual([{ version: CA_SCHEMA_VERSION }]);
      expect(storage.load()).toEqual({ slots: storedSlots(false), sequence: 7 });
    });
  });

  it('schema 4: keeps a taint, the rate buckets and the counters; the copied table takes a WIT slot and still refuses other kinds', async () => {
    const { stub } = freshCa();
    await runInDurableObject(stub, (_i: TrustDomainCa, state) => {
      const sql = state.storage.sql;
      storeAt(sql, 4, [
        ...SCHEMA_1,
        ...SCHEMA_2_TO_4,
        ...SLOT_ROWS,
        "UPDATE ca_key_slots SET tainted = 1 WHERE kid = 'x-1'",
        "INSERT INTO ca_rate_buckets (kind, key, tokens, updated_at) VALUES ('attest', '192.0.2.1', 2.5, 4000)",
        `INSERT INTO ca_metrics (name, labels, value) VALUES ('spire_server_ca_sign_x509_svid', '[]', 3)`,
      ]);
      const storage = createDoCaStorage(state.storage);
      expect(storage.load()).toEqual({ slots: storedSlots(true), sequence: 7 });
      expect(storage.buckets.get('attest', '192.0.2.1')).toEqual({ tokens: 2.5, updatedAt: 4000 });
      expect(storage.metrics.list()).toEqual([{ name: 'spire_server_ca_sign_x509_svid', labels: {}, value: 3 }]);

      const wit = { kid: 'w-1', kind: 'wit' as const, status: 'prepared' as const, issuedAt: 2000, notAfter: 9500, alg: 'ES256', publicJwk: { kty: 'EC' }, keyIv: bytes(5), keyCiphertext: bytes(6) };
      storage.commit({ op: 'insert', slot: wit });
      expect(storage.load().slots.map((s) => `${s.kid}:${s.kind}`)).toEqual(['j-1:jwt', 'x-1:x509', 'w-1:wit']);
      expect(() => sql.exec(`INSERT INTO ca_key_slots (kid, kind, status, issued_at, not_after, alg, key_iv, key_ciphertext) VALUES ('b', 'bogus', 'old', 1, 2, 'x', x'00', x'00')`)).toThrow(/CHECK/);
    });
  });
});
