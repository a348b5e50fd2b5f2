/**
 * The D1 schema of the registry: the single source of truth for migrations/ (drizzle-kit generate reads it;
 * test/worker/db-schema.test.ts checks the applied migrations match it). Times are seconds since the epoch.
 * JSON columns hold arrays as text. See docs/storage.md for example rows and what is hashed.
 * @module
 */
import { sql } from 'drizzle-orm';
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * Registration entries. `selectors` is the canonical (sorted) JSON list `[{type,value}]`; `selectors_key` the
 * canonical set key (`selectorSetKey`), so UNIQUE(spiffe_id, parent_id, selectors_key) rejects exact
 * duplicates. That unique index also serves lookups by spiffe_id (its leftmost column), so spiffe_id has no
 * separate index.
 */
export const entries = sqliteTable(
  'entries',
  {
    id: text('id').primaryKey(),
    spiffeId: text('spiffe_id').notNull(),
    parentId: text('parent_id').notNull(),
    selectors: text('selectors').notNull(),
    selectorsKey: text('selectors_key').notNull(),
    x509SvidTtl: integer('x509_svid_ttl').notNull().default(0),
    jwtSvidTtl: integer('jwt_svid_ttl').notNull().default(0),
    dnsNames: text('dns_names').notNull().default('[]'),
    federatesWith: text('federates_with').notNull().default('[]'),
    admin: integer('admin', { mode: 'boolean' }).notNull().default(false),
    downstream: integer('downstream', { mode: 'boolean' }).notNull().default(false),
    hint: text('hint').notNull().default(''),
    expiresAt: integer('expires_at').notNull().default(0),
    revisionNumber: integer('revision_number').notNull().default(0),
    createdAt: integer('created_at').notNull(),
    /** the entry's extra JWT-SVID claims, a JSON object (`{}`: none); src/shared/registry/jwt-svid-claims.ts */
    jwtSvidClaims: text('jwt_svid_claims').notNull().default('{}'),
  },
  (t) => [
    uniqueIndex('entries_spiffe_id_parent_id_selectors_key_unique').on(t.spiffeId, t.parentId, t.selectorsKey),
    index('entries_parent_id_idx').on(t.parentId),
  ],
);

/** One row per selector of an entry: the (type, value) index finds entries by selector without a scan. */
export const entrySelectors = sqliteTable(
  'entry_selectors',
  {
    entryId: text('entry_id')
      .notNull()
      .references(() => entries.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    value: text('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.entryId, t.type, t.value] }), index('entry_selectors_type_value_idx').on(t.type, t.value)],
);

/** Attested agents (SPIRE's attested_node_entries). */
export const agents = sqliteTable('agents', {
  spiffeId: text('spiffe_id').primaryKey(),
  attestationType: text('attestation_type').notNull(),
  serial: text('serial').notNull(),
  previousSerial: text('previous_serial'),
  expiresAt: integer('expires_at').notNull(),
  banned: integer('banned', { mode: 'boolean' }).notNull().default(false),
  nodeSelectors: text('node_selectors').notNull().default('[]'),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/** Join tokens, stored as SHA-256 (lowercase hex) of the token only; a row is deleted when consumed. */
export const joinTokens = sqliteTable(
  'join_tokens',
  {
    tokenHash: text('token_hash').primaryKey(),
    spiffeId: text('spiffe_id'),
    expiresAt: integer('expires_at').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('join_tokens_expires_at_idx').on(t.expiresAt)],
);

/** A single row whose counter is bumped in the same D1 batch as every entry write. */
export const registryRevision = sqliteTable(
  'registry_revision',
  {
    id: integer('id').primaryKey(),
    revision: integer('revision').notNull(),
  },
  (t) => [check('registry_revision_single_row', sql`${t.id} = 1`)],
);

/** jti values of signed agent requests seen and not yet expired: a second insert of a jti is a replay. */
export const agentRequestNonces = sqliteTable(
  'agent_request_nonces',
  {
    jti: text('jti').primaryKey(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('agent_request_nonces_expires_at_idx').on(t.expiresAt)],
);

/** x509pop challenge nonces issued and not yet used or expired: consuming one is a DELETE that returns it once. */
export const x509popNonces = sqliteTable(
  'x509pop_nonces',
  {
    nonce: text('nonce').primaryKey(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('x509pop_nonces_expires_at_idx').on(t.expiresAt)],
);

/** Exchanged subject tokens (issuer alias + jti) of issuers that refuse replays, kept until the token's exp. */
export const tokenExchangeJtis = sqliteTable(
  'token_exchange_jtis',
  {
    key: text('key').primaryKey(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [index('token_exchange_jtis_expires_at_idx').on(t.expiresAt)],
);

/**
 * Federation relationships (SPIRE's federated_trust_domains): the foreign trust domain, its bundle endpoint
 * and profile, and the state of the last refresh. `next_refresh_at` orders the cron's work (https_web only).
 */
export const federationRelationships = sqliteTable(
  'federation_relationships',
  {
    trustDomain: text('trust_domain').primaryKey(),
    bundleEndpointUrl: text('bundle_endpoint_url').notNull(),
    bundleEndpointProfile: text('bundle_endpoint_profile').notNull(),
    endpointSpiffeId: text('endpoint_spiffe_id'),
    /** https_spiffe only: the agent allowed to refresh this relationship's bundle (migration 0003) */
    refreshAgentId: text('refresh_agent_id'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    lastRefreshAt: integer('last_refresh_at').notNull().default(0),
    lastRefreshError: text('last_refresh_error').notNull().default(''),
    nextRefreshAt: integer('next_refresh_at').notNull().default(0),
  },
  (t) => [index('federation_relationships_next_refresh_at_idx').on(t.nextRefreshAt)],
);

/** Foreign trust bundles (SPIRE's bundles, minus our own): the SPIFFE bundle document as JSON text. */
export const federatedBundles = sqliteTable('federated_bundles', {
  trustDomain: text('trust_domain').primaryKey(),
  bundle: text('bundle').notNull(),
  sequence: integer('sequence'),
  refreshHint: integer('refresh_hint'),
  updatedAt: integer('updated_at').notNull(),
});

/** A single row bumped in the same D1 batch as every relationship or foreign-bundle write (folded into /sync's revision). */
export const federationRevision = sqliteTable(
  'federation_revision',
  {
    id: integer('id').primaryKey(),
    revision: integer('revision').notNull(),
  },
  (t) => [check('federation_revision_single_row', sql`${t.id} = 1`)],
);

/**
 * The audit log of admin requests (migration 0005): who (`principal`: `admin-token` or the admin JWT-SVID's
 * SPIFFE ID), what (`action`, `route`), which objects (`object_ids`, JSON array), the outcome (`status`,
 * `error_code`), `request_id` (the response's X-Request-Id) and `source_ip` (CF-Connecting-IP). Never a
 * secret, CSR, key or SVID (docs/audit.md). `id` only grows (AUTOINCREMENT), so page tokens stay valid
 * while old rows are pruned by `at` (AUDIT_RETENTION).
 */
export const auditLog = sqliteTable(
  'audit_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    requestId: text('request_id').notNull(),
    principal: text('principal').notNull(),
    action: text('action').notNull(),
    route: text('route').notNull(),
    objectIds: text('object_ids').notNull().default('[]'),
    detail: text('detail').notNull().default('{}'),
    status: integer('status').notNull(),
    errorCode: text('error_code'),
    sourceIp: text('source_ip'),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_principal_at_idx').on(t.principal, t.at),
    index('audit_log_action_at_idx').on(t.action, t.at),
  ],
);

/**
 * Per-SVID revocations (migration 0004; rules in shared/registry/revocation.ts). A serial revocation has
 * `serial` set (`spiffe_id` '' when unknown); a SPIFFE ID cutoff has `serial` '' and revokes every SVID of
 * `spiffe_id` issued before `revoked_at`. Rows may be pruned once `expires_at` has passed (the cron does).
 */
export const svidRevocations = sqliteTable(
  'svid_revocations',
  {
    serial: text('serial').notNull(),
    spiffeId: text('spiffe_id').notNull(),
    expiresAt: integer('expires_at').notNull(),
    revokedAt: integer('revoked_at').notNull(),
    reason: text('reason').notNull().default(''),
  },
  (t) => [primaryKey({ columns: [t.serial, t.spiffeId] }), index('svid_revocations_spiffe_id_idx').on(t.spiffeId), index('svid_revocations_expires_at_idx').on(t.expiresAt)],
);

/** A single row bumped in the same D1 batch as every revocation write (folded into /sync's revision). */
export const revocationRevision = sqliteTable(
  'revocation_revision',
  {
    id: integer('id').primaryKey(),
    revision: integer('revision').notNull(),
  },
  (t) => [check('revocation_revision_single_row', sql`${t.id} = 1`)],
);
