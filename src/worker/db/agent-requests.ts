/**
 * AgentRequestStore over D1: one D1 batch (one transaction, one round trip) per signed agent request, of
 * three statements built once. Remembering the jti is an INSERT that does nothing on a duplicate, so of two
 * concurrent uses exactly one is "first"; expired jtis are pruned in the same batch (indexed by expires_at).
 * The agent's row, the revisions and whether its SVID is revoked come back from one SELECT after the insert. Every agent call runs
 * this, so it speaks SQL (drizzle's query building cost more CPU than the queries); the columns are those
 * of schema.ts, and rows map through agents.ts's `rowToAgent`.
 * @module
 */
import type { AgentRequestStore } from '../../shared/registry/ports.js';
import { rowToAgent } from './agents.js';

const PRUNE = 'DELETE FROM agent_request_nonces WHERE expires_at <= ?';
const REMEMBER = 'INSERT INTO agent_request_nonces (jti, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING jti';
/** One row always: the agent's columns are NULL when it is not attested. */
const READ = `SELECT a.spiffe_id, a.attestation_type, a.serial, a.previous_serial, a.expires_at, a.banned, a.node_selectors,
  a.created_at, a.updated_at,
  (SELECT revision FROM registry_revision WHERE id = 1) AS registry_revision,
  (SELECT revision FROM federation_revision WHERE id = 1) AS federation_revision,
  (SELECT revision FROM revocation_revision WHERE id = 1) AS revocation_revision,
  EXISTS (SELECT 1 FROM svid_revocations WHERE serial = ?2) AS serial_revoked,
  (SELECT revoked_at FROM svid_revocations WHERE serial = '' AND spiffe_id = ?1) AS agent_cutoff
FROM (SELECT 1) LEFT JOIN agents a ON a.spiffe_id = ?1`;

interface ReadRow {
  spiffe_id: string | null;
  attestation_type: string;
  serial: string;
  previous_serial: string | null;
  expires_at: number;
  banned: number;
  node_selectors: string;
  created_at: number;
  updated_at: number;
  registry_revision: number | null;
  federation_revision: number | null;
  revocation_revision: number | null;
  serial_revoked: number;
  agent_cutoff: number | null;
}

/**
 * Creates the D1-backed agent request store.
 * @example const { fresh, agent } = await createAgentRequestStore(env.DB).admit({ jti, expiresAt, agentId }, now)
 */
export function createAgentRequestStore(d1: D1Database): AgentRequestStore {
  const prune = d1.prepare(PRUNE);
  const remember = d1.prepare(REMEMBER);
  const read = d1.prepare(READ);
  return {
    async admit({ jti, expiresAt, agentId, serialNumber }, now) {
      const [, inserted, found] = await d1.batch([prune.bind(now), remember.bind(jti, expiresAt), read.bind(agentId, serialNumber ?? '')]);
      const row = found!.results[0] as ReadRow | undefined;
      return {
        fresh: inserted!.results.length > 0,
        agent:
          row?.spiffe_id == null
            ? undefined
            : rowToAgent({
                spiffeId: row.spiffe_id,
                attestationType: row.attestation_type,
                serial: row.serial,
                previousSerial: row.previous_serial,
                expiresAt: row.expires_at,
                banned: row.banned !== 0,
                nodeSelectors: row.node_selectors,
                createdAt: row.created_at,
                updatedAt: row.updated_at,
              }),
        registryRevision: String(row?.registry_revision ?? 0),
        federationRevision: String(row?.federation_revision ?? 0),
        revocationRevision: String(row?.revocation_revision ?? 0),
        svidRevocation: { serialRevoked: row?.serial_revoked === 1, ...(row?.agent_cutoff == null ? {} : { cutoff: row.agent_cutoff }) },
      };
    },
  };
}
