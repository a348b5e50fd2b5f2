/**
 * Exchanged subject tokens over D1 (table token_exchange_jtis, schema.ts), for token issuers configured with
 * `"replay": "refuse"`: a use is one `INSERT ... ON CONFLICT DO NOTHING RETURNING`, so of any number of
 * concurrent exchanges of one token exactly one is first; rows are pruned once the token has expired (in
 * the same batch, indexed by expires_at, and by the cron).
 * @module
 */

export interface ExchangeJtiStore {
  /** true the first time `key` is used while unexpired; false for a replay */
  use(key: string, expiresAt: number, now: number): Promise<boolean>;
  prune(now: number): Promise<void>;
}

const PRUNE = 'DELETE FROM token_exchange_jtis WHERE expires_at <= ?';
const USE = 'INSERT INTO token_exchange_jtis (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key';

export function createExchangeJtiStore(d1: D1Database): ExchangeJtiStore {
  const prune = d1.prepare(PRUNE);
  const use = d1.prepare(USE);
  return {
    async use(key, expiresAt, now) {
      const [, inserted] = await d1.batch([prune.bind(now), use.bind(key, expiresAt)]);
      return (inserted?.results.length ?? 0) === 1;
    },
    async prune(now) {
      await prune.bind(now).run();
    },
  };
}
