/**
 * JoinTokenStore over D1 (drizzle). Only SHA-256(token) is stored. `consume` is one DELETE ... RETURNING:
 * of two concurrent uses of a token exactly one gets the row (STYLE G10), and a used token is gone.
 * @module
 */
import { and, eq, gt, lte } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import type { JoinTokenStore } from '../../shared/registry/ports.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';
import { joinTokens } from './schema.js';

/** Lowercase hex SHA-256 of a UTF-8 string. */
export async function sha256Hex(value: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Creates the D1-backed join token store.
 * @example await createJoinTokenStore(env.DB).consume(token, nowSeconds)
 */
export function createJoinTokenStore(d1: D1Database): JoinTokenStore {
  const db = drizzle(d1);
  return {
    async create(token, data, now) {
      const tokenHash = await sha256Hex(token);
      // expired tokens are pruned on every create (indexed by expires_at), in the same batch
      await db.batch([
        db.delete(joinTokens).where(lte(joinTokens.expiresAt, now)),
        db.insert(joinTokens).values({ tokenHash, spiffeId: data.spiffeId ?? null, expiresAt: data.expiresAt, createdAt: now }),
      ]);
    },

    async consume(token, now) {
      const tokenHash = await sha256Hex(token);
      const row = await db
        .delete(joinTokens)
        .where(and(eq(joinTokens.tokenHash, tokenHash), gt(joinTokens.expiresAt, now)))
        .returning({ spiffeId: joinTokens.spiffeId, expiresAt: joinTokens.expiresAt })
        .get();
      if (!row) return undefined;
      return { ...(row.spiffeId === null ? {} : { spiffeId: row.spiffeId as SpiffeId }), expiresAt: row.expiresAt };
    },
  };
}
