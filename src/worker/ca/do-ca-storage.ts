/**
 * CaStorage (ca-storage.ts) on the CA Durable Object's SQLite storage: a versioned schema (migrations run
 * once per version under blockConcurrencyWhile), the key slots of both kinds, and the published-set
 * sequence. Private keys are stored only as AES-GCM ciphertext (see key-crypto.ts). Documented in docs/storage.md terms:
 *
 *   ca_key_slots(kid PK, kind 'x509'|'jwt', status 'prepared'|'active'|'old', issued_at ms, not_after ms,
 *                alg, cert_der BLOB (x509) | public_jwk JSON (jwt), key_iv BLOB, key_ciphertext BLOB,
 *                tainted 0|1 -- schema 2: an operator's taint, kept until the key is revoked or expires)
 *   ca_meta(key PK, value)      -- 'sequence': spiffe_sequence of the published set
 *   ca_rate_buckets(kind, key, tokens, updated_at ms; PK kind+key)  -- schema 3: rate-limit buckets (rate-limits.ts)
 *   ca_metrics(name, labels JSON, value; PK name+labels)  -- schema 4: telemetry counters (metrics.ts)
 *   schema 5: ca_key_slots.kind may also be 'wit' (WIT-SVID signing keys, public_jwk like jwt)
 *   ca_schema(version)          -- one row, the applied schema version
 * @module
 */
import type { KeyKind, SlotStatus } from '../../shared/ca/key-slot.js';
import type { MetricSample } from '../../shared/telemetry/issuer-names.js';
import { metricLabelKey, type CaStorage, type StoredSlot } from './ca-storage.js';

/**
 * ca_key_slots, one definition for the tables of schema 1 (`kinds` x509 and jwt, no `tainted`: schema 2 adds
 * the column) and schema 5 (the copy that also allows 'wit'). The text is byte for byte the one those
 * migrations always ran. Never edit it: a new column or kind is a new migration (as schema 5 is).
 */
function keySlotsTable(name: string, kinds: readonly KeyKind[], tainted: boolean): string {
  const columns = [
    'kid TEXT PRIMARY KEY',
    `kind TEXT NOT NULL CHECK (kind IN (${kinds.map((k) => `'${k}'`).join(', ')}))`,
    "status TEXT NOT NULL CHECK (status IN ('prepared', 'active', 'old'))",
    'issued_at INTEGER NOT NULL',
    'not_after INTEGER NOT NULL',
    'alg TEXT NOT NULL',
    'cert_der BLOB',
    'public_jwk TEXT',
    'key_iv BLOB NOT NULL',
    'key_ciphertext BLOB NOT NULL',
    ...(tainted ? ['tainted INTEGER NOT NULL DEFAULT 0'] : []),
  ];
  return `CREATE TABLE ${name} (\n     ${columns.join(',\n     ')}\n   );`;
}

const SLOT_COLUMNS = 'kid, kind, status, issued_at, not_after, alg, cert_der, public_jwk, key_iv, key_ciphertext, tainted';

/** Ordered migrations; index + 1 is the schema version. Append only. */
const MIGRATIONS: readonly string[] = [
  `${keySlotsTable('ca_key_slots', ['x509', 'jwt'], false)}
   CREATE TABLE ca_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  `ALTER TABLE ca_key_slots ADD COLUMN tainted INTEGER NOT NULL DEFAULT 0;`,
  `CREATE TABLE ca_rate_buckets (
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     tokens REAL NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (kind, key)
   ) WITHOUT ROWID;`,
  `CREATE TABLE ca_metrics (
     name TEXT NOT NULL,
     labels TEXT NOT NULL,
     value REAL NOT NULL,
     PRIMARY KEY (name, labels)
   ) WITHOUT ROWID;`,
  // SQLite cannot alter a CHECK: the table is copied into one that also allows 'wit'
  `${keySlotsTable('ca_key_slots_v5', ['x509', 'jwt', 'wit'], true)}
   INSERT INTO ca_key_slots_v5 (${SLOT_COLUMNS})
     SELECT ${SLOT_COLUMNS} FROM ca_key_slots;
   DROP TABLE ca_key_slots;
   ALTER TABLE ca_key_slots_v5 RENAME TO ca_key_slots;`,
];

export const CA_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the schema to CA_SCHEMA_VERSION; a no-op when already there. */
function migrateCaStorage(sql: SqlStorage): void {
  sql.exec('CREATE TABLE IF NOT EXISTS ca_schema (version INTEGER NOT NULL)');
  const row = sql.exec<{ version: number }>('SELECT version FROM ca_schema').toArray()[0];
  let version = row?.version ?? 0;
  if (!row) sql.exec('INSERT INTO ca_schema (version) VALUES (0)');
  if (version > CA_SCHEMA_VERSION) throw new Error(`CA storage schema ${version} is newer than this code (${CA_SCHEMA_VERSION})`);
  while (version < CA_SCHEMA_VERSION) {
    sql.exec(MIGRATIONS[version]!);
    version++;
    sql.exec('UPDATE ca_schema SET version = ?', version);
  }
}

type SlotRow = {
  kid: string;
  kind: string;
  status: string;
  issued_at: number;
  not_after: number;
  alg: string;
  cert_der: ArrayBuffer | null;
  public_jwk: string | null;
  key_iv: ArrayBuffer;
  key_ciphertext: ArrayBuffer;
  tainted: number;
};

const buf = (b: Uint8Array): ArrayBuffer => b.slice().buffer as ArrayBuffer;

function loadSlots(sql: SqlStorage): StoredSlot[] {
  return sql.exec<SlotRow>('SELECT * FROM ca_key_slots ORDER BY issued_at, kid').toArray().map((r) => ({
    kid: r.kid,
    kind: r.kind as KeyKind,
    status: r.status as SlotStatus,
    issuedAt: r.issued_at,
    notAfter: r.not_after,
    alg: r.alg,
    certDer: r.cert_der ? new Uint8Array(r.cert_der) : undefined,
    publicJwk: r.public_jwk ? (JSON.parse(r.public_jwk) as Record<string, string>) : undefined,
    keyIv: new Uint8Array(r.key_iv),
    keyCiphertext: new Uint8Array(r.key_ciphertext),
    ...(r.tainted ? { tainted: true } : {}),
  }));
}

function insertSlot(sql: SqlStorage, s: StoredSlot): void {
  sql.exec(
    'INSERT INTO ca_key_slots (kid, kind, status, issued_at, not_after, alg, cert_der, public_jwk, key_iv, key_ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    s.kid,
    s.kind,
    s.status,
    s.issuedAt,
    s.notAfter,
    s.alg,
    s.certDer ? buf(s.certDer) : null,
    s.publicJwk ? JSON.stringify(s.publicJwk) : null,
    buf(s.keyIv),
    buf(s.keyCiphertext),
  );
}

function updateSlotStatus(sql: SqlStorage, kid: string, status: SlotStatus): void {
  sql.exec('UPDATE ca_key_slots SET status = ? WHERE kid = ?', status, kid);
}

function deleteSlot(sql: SqlStorage, kid: string): void {
  sql.exec('DELETE FROM ca_key_slots WHERE kid = ?', kid);
}

function loadSequence(sql: SqlStorage): number {
  return sql.exec<{ value: number }>("SELECT value FROM ca_meta WHERE key = 'sequence'").toArray()[0]?.value ?? 0;
}

function saveSequence(sql: SqlStorage, sequence: number): void {
  sql.exec("INSERT INTO ca_meta (key, value) VALUES ('sequence', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", sequence);
}

/** The DO's CaStorage: migrates the schema now (call inside blockConcurrencyWhile), writes in one transaction. */
export function createDoCaStorage(storage: DurableObjectStorage): CaStorage {
  const sql = storage.sql;
  migrateCaStorage(sql);
  return {
    load: () => ({ slots: loadSlots(sql), sequence: loadSequence(sql) }),
    // each put is one row write, durable before the call's answer leaves the object (the output gate)
    buckets: {
      get: (kind, key) => {
        const row = sql.exec<{ tokens: number; updated_at: number }>('SELECT tokens, updated_at FROM ca_rate_buckets WHERE kind = ? AND key = ?', kind, key).toArray()[0];
        return row ? { tokens: row.tokens, updatedAt: row.updated_at } : undefined;
      },
      put: (kind, key, state) => {
        sql.exec(
          'INSERT INTO ca_rate_buckets (kind, key, tokens, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at',
          kind,
          key,
          state.tokens,
          state.updatedAt,
        );
      },
      prune: (kind, before) => void sql.exec('DELETE FROM ca_rate_buckets WHERE kind = ? AND updated_at < ?', kind, before),
    },
    // one upsert per sample, in the call that counted it (durable by the same output gate as the buckets)
    metrics: {
      add(samples) {
        for (const s of samples) {
          sql.exec('INSERT INTO ca_metrics (name, labels, value) VALUES (?, ?, ?) ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value', s.name, metricLabelKey(s.labels), s.value);
        }
      },
      list: () =>
        sql.exec<{ name: string; labels: string; value: number }>('SELECT name, labels, value FROM ca_metrics').toArray().map((r): MetricSample => ({ name: r.name, labels: Object.fromEntries(JSON.parse(r.labels) as [string, string][]), value: r.value })),
    },
    commit(write, sequence) {
      storage.transactionSync(() => {
        if (write.op === 'insert') insertSlot(sql, write.slot);
        if (write.op === 'activate') {
          sql.exec("UPDATE ca_key_slots SET status = 'old' WHERE kind = ? AND status = 'active'", write.kind);
          updateSlotStatus(sql, write.kid, 'active');
        }
        if (write.op === 'retire') deleteSlot(sql, write.kid);
        if (write.op === 'taint') sql.exec('UPDATE ca_key_slots SET tainted = 1 WHERE kid = ?', write.kid);
        if (sequence !== undefined) saveSequence(sql, sequence);
      });
    },
    getAlarm: () => storage.getAlarm(),
    setAlarm: (at) => storage.setAlarm(at),
  };
}
