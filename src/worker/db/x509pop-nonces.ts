/**
 * The x509pop nonce store over D1 (table x509pop_nonces, schema.ts): issuing is an INSERT (expired nonces
 * pruned in the same batch, indexed by expires_at); consuming is one `DELETE ... RETURNING`, so of any number
 * of concurrent uses of a nonce exactly one gets it back, and an expired one never does.
 * @module
 */
import type { X509popNonceStore } from '../attestation/x509pop.js';

const PRUNE = 'DELETE FROM x509pop_nonces WHERE expires_at <= ?';
const ISSUE = 'INSERT INTO x509pop_nonces (nonce, expires_at) VALUES (?, ?)';
const CONSUME = 'DELETE FROM x509pop_nonces WHERE nonce = ? AND expires_at > ? RETURNING nonce';

export function createX509popNonceStore(d1: D1Database): X509popNonceStore {
  const prune = d1.prepare(PRUNE);
  const issue = d1.prepare(ISSUE);
  const consume = d1.prepare(CONSUME);
  return {
    async issue(nonce, expiresAt, now) {
      await d1.batch([prune.bind(now), issue.bind(nonce, expiresAt)]);
    },
    async consume(nonce, now) {
      const { results } = await consume.bind(nonce, now).all();
      return results.length === 1;
    },
  };
}
