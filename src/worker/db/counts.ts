/**
 * The registry sizes the metrics scrape reports (routes/admin/metrics.ts): one D1 statement, three COUNT(*)
 * over entries, agents and join_tokens. D1 bills each row a COUNT reads, so a scrape costs about
 * entries + agents + join tokens rows read (docs/telemetry.md).
 * @module
 */

export interface RegistryCounts {
  /** entries not expired at `now` */
  entries: number;
  /** agent records (attested; banned ones included, as `wisp agent list` shows them) */
  agents: number;
  /** join tokens not used and not expired at `now` */
  joinTokens: number;
}

export async function countRegistry(db: D1Database, nowSeconds: number): Promise<RegistryCounts> {
  const row = await db
    .prepare('SELECT (SELECT COUNT(*) FROM entries WHERE expires_at = 0 OR expires_at > ?1) AS entries, (SELECT COUNT(*) FROM agents) AS agents, (SELECT COUNT(*) FROM join_tokens WHERE expires_at > ?1) AS join_tokens')
    .bind(nowSeconds)
    .first<{ entries: number; agents: number; join_tokens: number }>();
  return { entries: row?.entries ?? 0, agents: row?.agents ?? 0, joinTokens: row?.join_tokens ?? 0 };
}
