/**
 * AgentStore over D1 (drizzle): attested agents, their current and previous SVID serials, bans.
 *
 * Attestation claims the agent ID first (one INSERT ... ON CONFLICT DO UPDATE ... WHERE, so of concurrent
 * claims at most one changes a row): the claim puts a token `attesting:<uuid>` in `serial` (no SVID serial
 * looks like it, so no proof matches it) and keeps the agent's current serial in `previous_serial`, which
 * agent-auth still accepts, until the signed SVID replaces both (completeAttestation, conditional on the token).
 * @module
 */
import { and, asc, count as countRows, eq, gt, lt, sql, type SQL } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import type { AgentFilter, AgentStore, AttestedAgent } from '../../shared/registry/ports.js';
import { formatSelector, type Selector } from '../../shared/registry/selectors.js';
import { isSpiffeId, type SpiffeId } from '../../shared/spiffe/id.js';
import { decodePageToken, encodePageToken } from './entries.js';
import { agents } from './schema.js';

type AgentRow = typeof agents.$inferSelect;

const CLAIM_PREFIX = 'attesting:';
/** A claim older than this (seconds) was abandoned (its isolate died between claim and completion). */
export const ATTESTATION_CLAIM_TIMEOUT_SECONDS = 60;

// Unqualified columns in DO UPDATE's SET and WHERE are the existing row's; `excluded.` is the new one.
const CLAIM_SQL = `INSERT INTO agents (spiffe_id, attestation_type, serial, previous_serial, expires_at, banned, node_selectors, created_at, updated_at)
VALUES (?1, ?2, ?3, NULL, 0, 0, '[]', ?4, ?4)
ON CONFLICT (spiffe_id) DO UPDATE SET
  serial = excluded.serial,
  previous_serial = CASE WHEN serial LIKE '${CLAIM_PREFIX}%' THEN previous_serial ELSE NULLIF(serial, '') END,
  updated_at = excluded.updated_at
WHERE banned = 0 AND (
  (serial LIKE '${CLAIM_PREFIX}%' AND updated_at <= ?5)
  OR (serial NOT LIKE '${CLAIM_PREFIX}%' AND (serial = '' OR ?6 = 1)))
RETURNING spiffe_id`;

/** The columns an attestation (or an upsert) writes for an agent with a freshly signed SVID. */
function attestedRow(agent: Omit<AttestedAgent, 'banned' | 'createdAt' | 'updatedAt' | 'previousSerialNumber'>, now: number) {
  return {
    attestationType: agent.attestationType,
    serial: agent.serialNumber,
    previousSerial: null,
    expiresAt: agent.expiresAt,
    nodeSelectors: JSON.stringify(agent.nodeSelectors.map(({ type, value }) => ({ type, value }))),
    updatedAt: now,
  };
}

/** A row of `agents` (as drizzle maps it) as the port's AttestedAgent; agent-requests.ts maps its raw rows through it too. */
export function rowToAgent(row: AgentRow): AttestedAgent {
  return {
    spiffeId: row.spiffeId as SpiffeId,
    attestationType: row.attestationType,
    // a claim in flight has no current SVID yet (its token is store-internal)
    serialNumber: row.serial.startsWith(CLAIM_PREFIX) ? '' : row.serial,
    ...(row.previousSerial === null ? {} : { previousSerialNumber: row.previousSerial }),
    expiresAt: row.expiresAt,
    banned: row.banned,
    nodeSelectors: JSON.parse(row.nodeSelectors) as Selector[],
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * The WHERE conditions of a filter; undefined when it can match nothing. Node selectors are a JSON list
 * column, matched as entries' selectors are (SPIRE's modes): m = query selectors the agent has, n = its own;
 * any m ≥ 1, superset m = |q|, subset m = n ≥ 1, exact m = n = |q|. A scan of the rows: agents are few.
 */
function filterConditions(filter: AgentFilter = {}): SQL[] | undefined {
  const conditions: SQL[] = [];
  if (filter.attestationType !== undefined) conditions.push(eq(agents.attestationType, filter.attestationType));
  if (filter.banned !== undefined) conditions.push(eq(agents.banned, filter.banned));
  if (filter.expiresBefore !== undefined) conditions.push(lt(agents.expiresAt, filter.expiresBefore));
  if (filter.selectors) {
    const query = [...new Set(filter.selectors.selectors.map(formatSelector))];
    const { match } = filter.selectors;
    if (query.length === 0) return match === 'superset' ? conditions : undefined;
    const key = sql`json_extract(s.value, '$.type') || ':' || json_extract(s.value, '$.value')`;
    const m = sql`(SELECT COUNT(DISTINCT ${key}) FROM json_each(${agents.nodeSelectors}) s WHERE ${key} IN (SELECT value FROM json_each(${JSON.stringify(query)})))`;
    const n = sql`(SELECT COUNT(DISTINCT ${key}) FROM json_each(${agents.nodeSelectors}) s)`;
    if (match === 'any') conditions.push(sql`${m} >= 1`);
    else if (match === 'superset') conditions.push(sql`${m} = ${query.length}`);
    else if (match === 'subset') conditions.push(sql`${m} = ${n} AND ${n} >= 1`);
    else conditions.push(sql`${m} = ${query.length} AND ${n} = ${query.length}`);
  }
  return conditions;
}

/**
 * Creates the D1-backed agent store.
 * @example const agentStore = createAgentStore(env.DB); await agentStore.get(agentId)
 */
export function createAgentStore(d1: D1Database): AgentStore {
  const db = drizzle(d1);
  return {
    async get(spiffeId) {
      const row = await db.select().from(agents).where(eq(agents.spiffeId, spiffeId)).get();
      return row ? rowToAgent(row) : undefined;
    },

    async claimAttestation(claim, now) {
      const token = `${CLAIM_PREFIX}${crypto.randomUUID()}`;
      const row = await d1
        .prepare(CLAIM_SQL)
        .bind(claim.spiffeId, claim.attestationType, token, now, now - ATTESTATION_CLAIM_TIMEOUT_SECONDS, claim.allowReattestation ? 1 : 0)
        .first();
      if (row) return { claimed: true, token };
      const existing = await this.get(claim.spiffeId);
      return { claimed: false, reason: existing?.banned ? 'banned' : 'attested' };
    },

    async completeAttestation(token, agent, now) {
      const row = await db
        .update(agents)
        .set(attestedRow(agent, now))
        .where(and(eq(agents.spiffeId, agent.spiffeId), eq(agents.serial, token), eq(agents.banned, false)))
        .returning()
        .get();
      return row ? rowToAgent(row) : undefined;
    },

    async releaseAttestation(spiffeId, token) {
      // a claim that created the row leaves none (as an evicted agent); otherwise the serial it displaced is back
      await d1.batch([
        d1.prepare('DELETE FROM agents WHERE spiffe_id = ? AND serial = ? AND previous_serial IS NULL AND banned = 0').bind(spiffeId, token),
        d1.prepare("UPDATE agents SET serial = COALESCE(previous_serial, ''), previous_serial = NULL WHERE spiffe_id = ? AND serial = ?").bind(spiffeId, token),
      ]);
    },

    async upsertAttested(agent, now) {
      const values = attestedRow(agent, now);
      // `banned` is never reset here: a banned agent stays banned through re-attestation.
      const row = await db
        .insert(agents)
        .values({ spiffeId: agent.spiffeId, ...values, banned: false, createdAt: now })
        .onConflictDoUpdate({ target: agents.spiffeId, set: values })
        .returning()
        .get();
      return rowToAgent(row);
    },

    async renew(spiffeId, serialNumber, expiresAt, now) {
      // SQLite evaluates the SET right-hand sides against the old row, so previous_serial gets the old serial
      await d1
        .prepare('UPDATE agents SET previous_serial = serial, serial = ?, expires_at = ?, updated_at = ? WHERE spiffe_id = ?')
        .bind(serialNumber, expiresAt, now, spiffeId)
        .run();
    },

    async forgetPreviousSerial(spiffeId) {
      await db.update(agents).set({ previousSerial: null }).where(eq(agents.spiffeId, spiffeId)).run();
    },

    async list(page, filter) {
      const after = page.pageToken === undefined ? undefined : decodePageToken(page.pageToken, isSpiffeId);
      const conditions = filterConditions(filter);
      if (!conditions) return { agents: [] };
      if (after !== undefined) conditions.push(gt(agents.spiffeId, after));
      const rows = await db
        .select()
        .from(agents)
        .where(and(...conditions))
        .orderBy(asc(agents.spiffeId))
        .limit(page.pageSize + 1)
        .all();
      const list = rows.slice(0, page.pageSize).map(rowToAgent);
      if (rows.length <= page.pageSize) return { agents: list };
      return { agents: list, nextPageToken: encodePageToken(list[list.length - 1]!.spiffeId) };
    },

    async count(filter) {
      const conditions = filterConditions(filter);
      if (!conditions) return 0;
      const row = await db.select({ n: countRows() }).from(agents).where(and(...conditions)).get();
      return row?.n ?? 0;
    },

    async purgeExpired(expiredBefore, now, dryRun) {
      const where = and(
        lt(agents.expiresAt, expiredBefore),
        eq(agents.banned, false),
        // a claim in flight (a first attestation has expires_at 0) is not an expired agent
        sql`NOT (${agents.serial} LIKE ${`${CLAIM_PREFIX}%`} AND ${agents.updatedAt} > ${now - ATTESTATION_CLAIM_TIMEOUT_SECONDS})`,
      );
      const rows = dryRun
        ? await db.select().from(agents).where(where).orderBy(asc(agents.spiffeId)).all()
        : await db.delete(agents).where(where).returning().all();
      return rows.map(rowToAgent).sort((a, b) => (a.spiffeId < b.spiffeId ? -1 : a.spiffeId > b.spiffeId ? 1 : 0));
    },

    async ban(spiffeId, now) {
      const rows = await db.update(agents).set({ banned: true, updatedAt: now }).where(eq(agents.spiffeId, spiffeId)).returning({ id: agents.spiffeId }).all();
      return rows.length > 0;
    },

    async evict(spiffeId) {
      // A banned agent's row is kept (it stays banned); evicting it only forgets its SVID serials.
      const agent = await this.get(spiffeId);
      if (!agent) return false;
      if (agent.banned) {
        await db.update(agents).set({ serial: '', previousSerial: null }).where(eq(agents.spiffeId, spiffeId)).run();
        return true;
      }
      const rows = await db.delete(agents).where(eq(agents.spiffeId, spiffeId)).returning({ id: agents.spiffeId }).all();
      return rows.length > 0;
    },
  };
}
