/**
 * Revocations over D1 (table svid_revocations, schema.ts; rules in shared/registry/revocation.ts). Every
 * write bumps revocation_revision in the same batch, so /sync can tell an agent "unchanged" from the
 * revision agent-auth already reads (agent-requests.ts) with no query of its own. Nothing here runs per
 * signed SVID: only revocations are written.
 * @module
 */
import type { RevocationSet, SvidRevocation } from '../../shared/registry/revocation.js';
import type { RevokedSerial } from '../ca/ca-api.js';
import { decodePageToken, encodePageToken } from './entries.js';

const BUMP = 'UPDATE revocation_revision SET revision = revision + 1 WHERE id = 1';
// a serial is revoked once (the first revocation's time and reason are kept); the expiry may only grow
const INSERT_SERIAL = `INSERT INTO svid_revocations (serial, spiffe_id, expires_at, revoked_at, reason) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (serial, spiffe_id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`;
// a later cutoff of the same SPIFFE ID replaces the earlier one (it revokes everything the earlier did)
const UPSERT_CUTOFF = `INSERT INTO svid_revocations (serial, spiffe_id, expires_at, revoked_at, reason) VALUES ('', ?, ?, ?, ?)
ON CONFLICT (serial, spiffe_id) DO UPDATE SET revoked_at = MAX(revoked_at, excluded.revoked_at), expires_at = MAX(expires_at, excluded.expires_at), reason = excluded.reason`;
const SELECT = 'SELECT serial, spiffe_id, expires_at, revoked_at, reason FROM svid_revocations';
// the serials of unknown SPIFFE ID concern every agent
const FOR_IDS = `${SELECT} WHERE expires_at > ?1 AND (spiffe_id IN (SELECT value FROM json_each(?2)) OR (spiffe_id = '' AND serial <> ''))`;
const CRL_SERIALS = "SELECT serial, MIN(revoked_at) AS revoked_at FROM svid_revocations WHERE serial <> '' AND expires_at > ? GROUP BY serial";

interface Row {
  serial: string;
  spiffe_id: string;
  expires_at: number;
  revoked_at: number;
  reason: string;
}

function rowToRevocation(r: Row): SvidRevocation {
  return { kind: r.serial === '' ? 'spiffe_id' : 'serial', serialNumber: r.serial, spiffeId: r.spiffe_id, expiresAt: r.expires_at, revokedAt: r.revoked_at, reason: r.reason };
}

export interface RevocationStore {
  /** records serial revocations (one batch, one revision bump) */
  revokeSerials(items: Array<{ serialNumber: string; spiffeId: string; expiresAt: number }>, reason: string, now: number): Promise<SvidRevocation[]>;
  /** records a SPIFFE ID cutoff (and, in the same batch, explicit serials known for it, e.g. an agent's) */
  revokeSpiffeId(cutoff: { spiffeId: string; revokedAt: number; expiresAt: number }, serials: Array<{ serialNumber: string; expiresAt: number }>, reason: string, now: number): Promise<SvidRevocation[]>;
  /** unexpired revocations, ordered by (serial, SPIFFE ID) */
  list(page: { pageSize: number; pageToken?: string }, now: number): Promise<{ revocations: SvidRevocation[]; nextPageToken?: string }>;
  /** what concerns an agent whose entries (and own ID) are `spiffeIds` */
  setFor(spiffeIds: readonly string[], now: number): Promise<RevocationSet>;
  /** the unexpired revoked serials, for the CRL */
  crlSerials(now: number): Promise<RevokedSerial[]>;
  /** the agent whose current or previous SVID has this serial (the only SVIDs the issuer records), if any */
  agentOfSerial(serialNumber: string): Promise<{ spiffeId: string; expiresAt: number } | undefined>;
  /** deletes rows whose SVIDs have all expired; how many */
  prune(now: number): Promise<number>;
  /** revocation_revision as agent-auth reads it (agent-requests.ts): for callers outside an agent request */
  revision(): Promise<string>;
}

export function createRevocationStore(d1: D1Database): RevocationStore {
  async function read(keys: Array<[string, string]>): Promise<SvidRevocation[]> {
    const rows = await d1.batch(keys.map(([serial, id]) => d1.prepare(`${SELECT} WHERE serial = ? AND spiffe_id = ?`).bind(serial, id)));
    return rows.flatMap((r) => (r.results as unknown as Row[]).map(rowToRevocation));
  }
  return {
    async revision() {
      const row = await d1.prepare('SELECT revision FROM revocation_revision WHERE id = 1').first<{ revision: number }>();
      return String(row?.revision ?? 0);
    },
    async revokeSerials(items, reason, now) {
      if (items.length === 0) return [];
      await d1.batch([...items.map((i) => d1.prepare(INSERT_SERIAL).bind(i.serialNumber, i.spiffeId, i.expiresAt, now, reason)), d1.prepare(BUMP)]);
      return read(items.map((i) => [i.serialNumber, i.spiffeId]));
    },

    async revokeSpiffeId(cutoff, serials, reason, now) {
      await d1.batch([
        d1.prepare(UPSERT_CUTOFF).bind(cutoff.spiffeId, cutoff.expiresAt, cutoff.revokedAt, reason),
        ...serials.map((s) => d1.prepare(INSERT_SERIAL).bind(s.serialNumber, cutoff.spiffeId, s.expiresAt, now, reason)),
        d1.prepare(BUMP),
      ]);
      return read([['', cutoff.spiffeId], ...serials.map((s): [string, string] => [s.serialNumber, cutoff.spiffeId])]);
    },

    async list(page, now) {
      const after = page.pageToken === undefined ? undefined : decodePageToken(page.pageToken, (k) => k.includes('\n'));
      const [serial, id] = after === undefined ? ['', ''] : (after.split('\n') as [string, string]);
      const where = after === undefined ? 'expires_at > ?1' : 'expires_at > ?1 AND (serial > ?2 OR (serial = ?2 AND spiffe_id > ?3))';
      const stmt = d1.prepare(`${SELECT} WHERE ${where} ORDER BY serial, spiffe_id LIMIT ?4`);
      const { results } = await stmt.bind(now, serial, id, page.pageSize + 1).all<Row>();
      const list = results.slice(0, page.pageSize).map(rowToRevocation);
      if (results.length <= page.pageSize) return { revocations: list };
      const last = list[list.length - 1]!;
      return { revocations: list, nextPageToken: encodePageToken(`${last.serialNumber}\n${last.spiffeId}`) };
    },

    async setFor(spiffeIds, now) {
      const { results } = await d1.prepare(FOR_IDS).bind(now, JSON.stringify(spiffeIds)).all<Row>();
      const set: RevocationSet = { serials: [], spiffeIds: [] };
      for (const r of results) {
        if (r.serial === '') set.spiffeIds.push({ spiffeId: r.spiffe_id, revokedAt: r.revoked_at });
        else set.serials.push(r.serial);
      }
      set.serials = [...new Set(set.serials)].sort();
      return set;
    },

    async crlSerials(now) {
      const { results } = await d1.prepare(CRL_SERIALS).bind(now).all<{ serial: string; revoked_at: number }>();
      return results.map((r) => ({ serialNumber: r.serial, revokedAt: r.revoked_at }));
    },

    async agentOfSerial(serialNumber) {
      // agents.serial is not indexed: an admin call, over one row per agent
      const row = await d1.prepare('SELECT spiffe_id, expires_at FROM agents WHERE serial = ?1 OR previous_serial = ?1 LIMIT 1').bind(serialNumber).first<{ spiffe_id: string; expires_at: number }>();
      return row ? { spiffeId: row.spiffe_id, expiresAt: row.expires_at } : undefined;
    },

    async prune(now) {
      const res = await d1.prepare('DELETE FROM svid_revocations WHERE expires_at <= ?').bind(now).run();
      return res.meta.changes ?? 0;
    },
  };
}
