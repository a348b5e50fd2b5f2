/**
 * The CA's storage port: what the CA core (ca-core.ts) needs to persist, with no runtime in it. Two
 * implementations with the same semantics: DO SQLite (do-ca-storage.ts, production) and memory (below, for
 * the core in plain Node or in tests). Private keys are stored only sealed (key-crypto.ts).
 * @module
 */
import type { KeyKind, KeySlot } from '../../shared/ca/key-slot.js';
import type { BucketState } from '../../shared/rate-limit/token-bucket.js';
import type { MetricSample } from '../../shared/telemetry/issuer-names.js';

/** A slot as stored: rotation metadata plus the key material (private key encrypted). */
export interface StoredSlot extends KeySlot {
  kind: KeyKind;
  /** x509: 'EC P-256'; jwt: 'ES256' | 'RS256' */
  alg: string;
  /** x509 only: DER CA certificate */
  certDer?: Uint8Array;
  /** jwt only: public JWK (kty + params) */
  publicJwk?: Record<string, string>;
  keyIv: Uint8Array;
  keyCiphertext: Uint8Array;
}

/** Everything the CA keeps: its slots (ordered by issuedAt, kid) and the published-set sequence. */
export interface CaState {
  slots: StoredSlot[];
  sequence: number;
}

/** One rotation step as written. `activate` also demotes the kind's current active slot to old; `retire` deletes (expiry, revoke). */
export type SlotWrite = { op: 'insert'; slot: StoredSlot } | { op: 'activate'; kind: KeyKind; kid: string } | { op: 'retire'; kid: string } | { op: 'taint'; kid: string };

/** Rate-limit buckets (rate-limits.ts) by kind and key; synchronous, like the DO's SQLite. */
export interface BucketStorage {
  get(kind: string, key: string): BucketState | undefined;
  put(kind: string, key: string, state: BucketState): void;
  /** deletes the buckets of `kind` last written before `before` (ms): full again, the same as none */
  prune(kind: string, before: number): void;
}

/** Telemetry counters (metrics.ts): samples keyed by name and labels; synchronous, like the DO's SQLite. */
export interface MetricStorage {
  /** adds each sample's value to the stored one (a new key starts at 0) */
  add(samples: readonly MetricSample[]): void;
  list(): MetricSample[];
}

/** The key a sample is stored under: its labels in name order. */
export const metricLabelKey = (labels: Record<string, string>): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));

export interface CaStorage {
  load(): CaState;
  buckets: BucketStorage;
  metrics: MetricStorage;
  /** Applies one step atomically, with the new published-set sequence when the step changes that set. */
  commit(write: SlotWrite, sequence?: number): void;
  /** the next rotation check, ms since the epoch (a DO alarm in production) */
  getAlarm(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
}

/** In-memory CaStorage: copies in and out (no aliasing with the core's state), the SQL order on load. */
export function createMemoryCaStorage(): CaStorage & { readonly alarm: number | null } {
  let slots: StoredSlot[] = [];
  let sequence = 0;
  let alarm: number | null = null;
  const buckets = new Map<string, { kind: string; state: BucketState }>();
  const metrics = new Map<string, MetricSample>();
  return {
    metrics: {
      add(samples) {
        for (const s of samples) {
          const id = `${s.name}\n${metricLabelKey(s.labels)}`;
          const found = metrics.get(id);
          metrics.set(id, { name: s.name, labels: { ...s.labels }, value: (found?.value ?? 0) + s.value });
        }
      },
      list: () => [...metrics.values()].map((s) => ({ ...s, labels: { ...s.labels } })),
    },
    get alarm() {
      return alarm;
    },
    buckets: {
      get: (kind, key) => {
        const found = buckets.get(`${kind}\n${key}`);
        return found ? { ...found.state } : undefined;
      },
      put: (kind, key, state) => void buckets.set(`${kind}\n${key}`, { kind, state: { ...state } }),
      prune(kind, before) {
        for (const [id, b] of buckets) if (b.kind === kind && b.state.updatedAt < before) buckets.delete(id);
      },
    },
    load: () => ({ slots: structuredClone(slots).sort((a, b) => a.issuedAt - b.issuedAt || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0)), sequence }),
    commit(write, next) {
      if (write.op === 'insert') {
        if (slots.some((s) => s.kid === write.slot.kid)) throw new Error(`slot ${write.slot.kid} exists`);
        slots = [...slots, structuredClone(write.slot)];
      }
      if (write.op === 'activate') {
        slots = slots.map((s) => (s.kid === write.kid ? { ...s, status: 'active' } : s.kind === write.kind && s.status === 'active' ? { ...s, status: 'old' } : s));
      }
      if (write.op === 'retire') slots = slots.filter((s) => s.kid !== write.kid);
      if (write.op === 'taint') slots = slots.map((s) => (s.kid === write.kid ? { ...s, tainted: true } : s));
      if (next !== undefined) sequence = next;
    },
    getAlarm: async () => alarm,
    setAlarm: async (at) => {
      alarm = at;
    },
  };
}
