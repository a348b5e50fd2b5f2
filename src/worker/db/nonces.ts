/**
 * NonceStore over D1 (drizzle): replay protection for signed agent requests. Remembering a jti is one
 * INSERT that does nothing on a duplicate, so of two concurrent uses exactly one is "first". Expired jtis
 * are pruned in the same batch (indexed by expires_at).
 * @module
 */
import { lte } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import type { NonceStore } from '../../shared/registry/ports.js';
import { agentRequestNonces } from './schema.js';

/**
 * Creates the D1-backed nonce store.
 * @example if (!(await createNonceStore(env.DB).remember(jti, exp, now))) throw replay
 */
export function createNonceStore(d1: D1Database): NonceStore {
  const db = drizzle(d1);
  return {
    async remember(jti, expiresAt, now) {
      const [, inserted] = await db.batch([
        db.delete(agentRequestNonces).where(lte(agentRequestNonces.expiresAt, now)),
        db.insert(agentRequestNonces).values({ jti, expiresAt }).onConflictDoNothing().returning({ jti: agentRequestNonces.jti }),
      ]);
      return inserted.length > 0;
    },
  };
}
