/**
 * AgentRequestStore over D1 (drizzle): one D1 batch per signed agent request, run as one transaction.
 * Remembering the jti is an INSERT that does nothing on a duplicate, so of two concurrent uses exactly one
 * is "first"; expired jtis are pruned in the same batch (indexed by expires_at). The agent's row and the
 * registry and federation revisions are read in that batch too, after the insert.
 * @module
 */
import { eq, lte } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import type { AgentRequestStore } from '../../shared/registry/ports.js';
import { rowToAgent } from './agents.js';
import { agentRequestNonces, agents, federationRevision, registryRevision } from './schema.js';

/**
 * Creates the D1-backed agent request store.
 * @example const { fresh, agent } = await createAgentRequestStore(env.DB).admit({ jti, expiresAt, agentId }, now)
 */
export function createAgentRequestStore(d1: D1Database): AgentRequestStore {
  const db = drizzle(d1);
  return {
    async admit({ jti, expiresAt, agentId }, now) {
      const [, inserted, agentRows, registry, federation] = await db.batch([
        db.delete(agentRequestNonces).where(lte(agentRequestNonces.expiresAt, now)),
        db.insert(agentRequestNonces).values({ jti, expiresAt }).onConflictDoNothing().returning({ jti: agentRequestNonces.jti }),
        db.select().from(agents).where(eq(agents.spiffeId, agentId)),
        db.select({ revision: registryRevision.revision }).from(registryRevision).where(eq(registryRevision.id, 1)),
        db.select({ revision: federationRevision.revision }).from(federationRevision).where(eq(federationRevision.id, 1)),
      ]);
      return {
        fresh: inserted.length > 0,
        agent: agentRows[0] ? rowToAgent(agentRows[0]) : undefined,
        registryRevision: String(registry[0]?.revision ?? 0),
        federationRevision: String(federation[0]?.revision ?? 0),
      };
    },
  };
}
