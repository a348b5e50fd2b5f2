/**
 * FederationStore over D1 (tables federation_relationships, federated_bundles, federation_revision of
 * schema.ts). Every relationship or bundle write bumps federation_revision in the same D1 batch. The
 * "spiffe_sequence must not go backwards" rule is enforced in the upsert itself, so two concurrent
 * refreshes cannot store an older bundle over a newer one.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { ForeignBundle } from '../../shared/federation/foreign-bundle.js';
import type { FederationStore, NewRelationship } from '../../shared/federation/federation-store.js';
import type { BundleEndpointProfile, FederationRelationship } from '../../shared/federation/relationship.js';
import type { SpiffeBundleJson } from '../../shared/spiffe/bundle.js';
import type { SpiffeId, TrustDomain } from '../../shared/spiffe/id.js';

interface RelationshipRow {
  trust_domain: string;
  bundle_endpoint_url: string;
  bundle_endpoint_profile: string;
  endpoint_spiffe_id: string | null;
  refresh_agent_id: string | null;
  created_at: number;
  updated_at: number;
  last_refresh_at: number;
  last_refresh_error: string;
  next_refresh_at: number;
}

interface BundleRow {
  trust_domain: string;
  bundle: string;
  sequence: number | null;
  refresh_hint: number | null;
  updated_at: number;
}

const BUMP_REVISION = 'UPDATE federation_revision SET revision = revision + 1 WHERE id = 1';

function rowToRelationship(r: RelationshipRow): FederationRelationship {
  return {
    trustDomain: r.trust_domain as TrustDomain,
    bundleEndpointUrl: r.bundle_endpoint_url,
    bundleEndpointProfile: r.bundle_endpoint_profile as BundleEndpointProfile,
    ...(r.endpoint_spiffe_id ? { endpointSpiffeId: r.endpoint_spiffe_id as SpiffeId } : {}),
    ...(r.refresh_agent_id ? { refreshAgentId: r.refresh_agent_id as SpiffeId } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastRefreshAt: r.last_refresh_at,
    lastRefreshError: r.last_refresh_error,
    nextRefreshAt: r.next_refresh_at,
  };
}

function rowToBundle(r: BundleRow): ForeignBundle {
  return {
    trustDomain: r.trust_domain as TrustDomain,
    bundle: JSON.parse(r.bundle) as SpiffeBundleJson,
    ...(r.sequence === null ? {} : { sequence: r.sequence }),
    ...(r.refresh_hint === null ? {} : { refreshHintSeconds: r.refresh_hint }),
    updatedAt: r.updated_at,
  };
}

/** Upsert that keeps the stored bundle when the incoming spiffe_sequence is lower. */
const PUT_BUNDLE = `INSERT INTO federated_bundles (trust_domain, bundle, sequence, refresh_hint, updated_at) SELECT ?, ?, ?, ?, ?
  WHERE ? = 0 OR EXISTS (SELECT 1 FROM federation_relationships r WHERE r.trust_domain = ?)
  ON CONFLICT (trust_domain) DO UPDATE SET bundle = excluded.bundle, sequence = excluded.sequence,
    refresh_hint = excluded.refresh_hint, updated_at = excluded.updated_at
  WHERE excluded.sequence IS NULL OR federated_bundles.sequence IS NULL OR excluded.sequence >= federated_bundles.sequence`;

export function createFederationStore(db: D1Database): FederationStore {
  /** `withRelationship`: store only while the relationship exists (same batch as its write). */
  const putBundleStmt = (b: ForeignBundle, withRelationship = false) =>
    db
      .prepare(PUT_BUNDLE)
      .bind(b.trustDomain, JSON.stringify(b.bundle), b.sequence ?? null, b.refreshHintSeconds ?? null, b.updatedAt, withRelationship ? 1 : 0, b.trustDomain);

  async function getRelationship(td: string): Promise<FederationRelationship | undefined> {
    const row = await db.prepare('SELECT * FROM federation_relationships WHERE trust_domain = ?').bind(td).first<RelationshipRow>();
    return row ? rowToRelationship(row) : undefined;
  }

  return {
    async listRelationships() {
      const { results } = await db.prepare('SELECT * FROM federation_relationships ORDER BY trust_domain').all<RelationshipRow>();
      return results.map(rowToRelationship);
    },

    getRelationship,

    async createRelationship(rel: NewRelationship, bundle, now) {
      try {
        // one D1 batch is one transaction: a duplicate fails the INSERT and nothing else is written
        await db.batch([
          db
            .prepare(
              `INSERT INTO federation_relationships (trust_domain, bundle_endpoint_url, bundle_endpoint_profile, endpoint_spiffe_id,
                 refresh_agent_id, created_at, updated_at, next_refresh_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
            )
            .bind(rel.trustDomain, rel.bundleEndpointUrl, rel.bundleEndpointProfile, rel.endpointSpiffeId ?? null, rel.refreshAgentId ?? null, now, now, now),
          ...(bundle ? [putBundleStmt(bundle, true)] : []),
          db.prepare(BUMP_REVISION),
        ]);
      } catch (e) {
        if (/UNIQUE|PRIMARY KEY/i.test(String((e as Error).message))) {
          throw new WispError('ERR_FEDERATION_EXISTS', `a federation relationship with "${rel.trustDomain}" already exists`);
        }
        throw e;
      }
      return (await getRelationship(rel.trustDomain))!;
    },

    async updateRelationship(rel, bundle, now) {
      const [updated] = await db.batch([
        db
          .prepare(
            `UPDATE federation_relationships SET bundle_endpoint_url = ?, bundle_endpoint_profile = ?, endpoint_spiffe_id = ?,
               refresh_agent_id = ?, updated_at = ?, next_refresh_at = ? WHERE trust_domain = ?`,
          )
          .bind(rel.bundleEndpointUrl, rel.bundleEndpointProfile, rel.endpointSpiffeId ?? null, rel.refreshAgentId ?? null, now, now, rel.trustDomain),
        ...(bundle ? [putBundleStmt(bundle, true)] : []),
        db.prepare(BUMP_REVISION),
      ]);
      if (!updated?.meta.changes) throw new WispError('ERR_FEDERATION_NOT_FOUND', `no federation relationship with "${rel.trustDomain}"`);
      return (await getRelationship(rel.trustDomain))!;
    },

    async deleteRelationship(td) {
      const [deleted] = await db.batch([
        db.prepare('DELETE FROM federation_relationships WHERE trust_domain = ?').bind(td),
        db.prepare('DELETE FROM federated_bundles WHERE trust_domain = ?').bind(td),
        db.prepare(BUMP_REVISION),
      ]);
      return (deleted?.meta.changes ?? 0) > 0;
    },

    async recordRefresh(td, record) {
      await db
        .prepare(
          `UPDATE federation_relationships SET last_refresh_at = COALESCE(?, last_refresh_at), last_refresh_error = ?, next_refresh_at = ?
           WHERE trust_domain = ?`,
        )
        .bind(record.lastRefreshAt ?? null, record.lastRefreshError, record.nextRefreshAt, td)
        .run();
    },

    async refreshTasksFor(agentId) {
      const { results } = await db
        .prepare(
          `SELECT r.*, b.bundle AS b_bundle, b.sequence AS b_sequence, b.refresh_hint AS b_refresh_hint, b.updated_at AS b_updated_at
           FROM federation_relationships r LEFT JOIN federated_bundles b ON b.trust_domain = r.trust_domain
           WHERE r.refresh_agent_id = ? AND r.bundle_endpoint_profile = 'https_spiffe' ORDER BY r.trust_domain`,
        )
        .bind(agentId)
        .all<RelationshipRow & { b_bundle: string | null; b_sequence: number | null; b_refresh_hint: number | null; b_updated_at: number | null }>();
      return results.map((r) => ({
        relationship: rowToRelationship(r),
        ...(r.b_bundle === null
          ? {}
          : { bundle: rowToBundle({ trust_domain: r.trust_domain, bundle: r.b_bundle, sequence: r.b_sequence, refresh_hint: r.b_refresh_hint, updated_at: r.b_updated_at ?? 0 }) }),
      }));
    },

    async dueForRefresh(now, limit) {
      const { results } = await db
        .prepare(`SELECT * FROM federation_relationships WHERE bundle_endpoint_profile = 'https_web' AND next_refresh_at <= ? ORDER BY next_refresh_at LIMIT ?`)
        .bind(now, limit)
        .all<RelationshipRow>();
      return results.map(rowToRelationship);
    },

    async listBundles() {
      const { results } = await db.prepare('SELECT * FROM federated_bundles ORDER BY trust_domain').all<BundleRow>();
      return results.map(rowToBundle);
    },

    async getBundle(td) {
      const row = await db.prepare('SELECT * FROM federated_bundles WHERE trust_domain = ?').bind(td).first<BundleRow>();
      return row ? rowToBundle(row) : undefined;
    },

    async bundlesOf(tds) {
      if (tds.length === 0) return [];
      const { results } = await db
        .prepare('SELECT * FROM federated_bundles WHERE trust_domain IN (SELECT value FROM json_each(?)) ORDER BY trust_domain')
        .bind(JSON.stringify([...new Set(tds)]))
        .all<BundleRow>();
      return results.map(rowToBundle);
    },

    async putBundle(bundle) {
      const [put] = await db.batch([putBundleStmt(bundle), db.prepare(BUMP_REVISION)]);
      return (put?.meta.changes ?? 0) > 0;
    },

    async deleteBundle(td) {
      const [deleted] = await db.batch([db.prepare('DELETE FROM federated_bundles WHERE trust_domain = ?').bind(td), db.prepare(BUMP_REVISION)]);
      return (deleted?.meta.changes ?? 0) > 0;
    },

    async revision() {
      const row = await db.prepare('SELECT revision FROM federation_revision WHERE id = 1').first<{ revision: number }>();
      return String(row?.revision ?? 0);
    },
  };
}
