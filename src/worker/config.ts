/**
 * The issuer's configuration: wrangler.toml [vars] plus secrets, parsed once into a typed `WorkerConfig`
 * (valibot schemas, src/shared/config/schema.ts). No module below this one reads `env.X` for
 * configuration. Errors name the bad key. `parseCaConfig` is the part the CA Durable Object needs;
 * RATE_LIMITS is checked by both parsers and read by the CA alone (`parseRateLimitsConfig`).
 * @module
 */
import * as v from 'valibot';
import { durationSeconds, httpsUrl, keyCheck, oneOf, parseConfig, parsedBy, secret, urlString } from '../shared/config/schema.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { CLOUD_ATTESTORS_ENTRIES, cloudAttestorsFromEnv, type CloudAttestorsConfig, type CloudAttestorsEnv } from './attestation/cloud-config.js';
import { RATE_LIMITS_ENTRY, type RateLimitsConfig } from './ca/rate-limits.js';
import { TOKEN_EXCHANGE_ENTRY, type TokenExchangeConfig } from '../shared/exchange/config.js';

export type JwtKeyType = 'ES256' | 'RS256';

/** What the CA Durable Object needs: its trust domain, CA and SVID lifetimes, JWT key type and key encryption. */
export interface CaConfig {
  trustDomain: TrustDomain;
  /** RFC 4514-style subject of the CA certificate, e.g. `O=Wisp,CN=Wisp CA` */
  caSubject: string;
  caTtlSeconds: number;
  x509SvidTtlSeconds: number;
  jwtSvidTtlSeconds: number;
  /** `iss` of JWT-SVIDs and the OIDC issuer; https in production, http allowed on a loopback host */
  jwtIssuer: string;
  jwtKeyType: JwtKeyType;
  /** WIT_SVID_TTL: set, the CA keeps a WIT key (JWT_KEY_TYPE's algorithm) and signs WIT-SVIDs; absent: the profile is off */
  witSvidTtlSeconds?: number;
  jwksMaxAgeSeconds: number;
  /** ≥ 32 bytes; CA and JWT private keys are encrypted at rest under a key derived from it */
  keyEncryptionSecret: string;
  /** Optional upstream CA: PEM chain (intermediate-issuing cert first, root last) and its PKCS#8 PEM key. */
  upstreamCa?: { certChainPem: string; keyPem: string };
}

export interface WorkerConfig extends CaConfig {
  /** ≥ 32 bytes; bearer token of the admin API */
  adminToken: string;
  /** How long a signed agent request stays fresh (±), seconds. */
  agentRequestMaxSkewSeconds: number;
  /** Cloud node attestors (AWS_IID, GCP_IIT, AZURE_MSI JSON vars); absent ones are disabled. */
  nodeAttestors: CloudAttestorsConfig;
  /** How long admin audit events are kept (the cron prunes older ones), seconds. */
  auditRetentionSeconds: number;
  /** Trusted token issuers of POST /exchange/v1/token (TOKEN_EXCHANGE JSON var); absent: exchange is off. */
  tokenExchange?: TokenExchangeConfig;
}

/** The raw bindings config is parsed from (vars and secrets are all strings). */
export interface WorkerConfigEnv extends CloudAttestorsEnv {
  TRUST_DOMAIN?: string;
  CA_SUBJECT?: string;
  CA_TTL?: string;
  X509_SVID_TTL?: string;
  JWT_SVID_TTL?: string;
  JWT_ISSUER?: string;
  JWT_KEY_TYPE?: string;
  /** WIT-SVID lifetime; setting it turns the (incubating) WIT-SVID profile on */
  WIT_SVID_TTL?: string;
  JWKS_MAX_AGE?: string;
  KEY_ENCRYPTION_SECRET?: string;
  ADMIN_TOKEN?: string;
  UPSTREAM_CA_CERT_CHAIN?: string;
  UPSTREAM_CA_KEY?: string;
  AGENT_REQUEST_MAX_SKEW?: string;
  AUDIT_RETENTION?: string;
  /** JSON: {"attestation"|"x509Signing"|"jwtSigning": {"ratePerSecond": n, "burst": n}} (ca/rate-limits.ts) */
  RATE_LIMITS?: string;
  /** JSON: the trusted token issuers of token exchange (shared/exchange/config.ts) */
  TOKEN_EXCHANGE?: string;
}

export const CONFIG_DEFAULTS = {
  CA_SUBJECT: 'O=Wisp,CN=Wisp CA',
  CA_TTL: '24h',
  X509_SVID_TTL: '1h',
  JWT_SVID_TTL: '5m',
  JWT_KEY_TYPE: 'ES256',
  JWKS_MAX_AGE: '5m',
  AGENT_REQUEST_MAX_SKEW: '60s',
  AUDIT_RETENTION: '90d',
} as const;

const MIN_SECRET_LENGTH = 32;
const MIN_CA_TTL_SECONDS = 60;
const MAX_CA_TTL_SECONDS = 10 * 365 * 86400;
/** An audit log kept for less than a day would be gone before anyone looks at an incident. */
const MIN_AUDIT_RETENTION_SECONDS = 86400;
const UPSTREAM_PAIR = 'upstream CA needs both UPSTREAM_CA_CERT_CHAIN and UPSTREAM_CA_KEY';

const CA_ENTRIES = {
  TRUST_DOMAIN: v.pipe(v.optional(v.string(), ''), parsedBy((s: string) => parseTrustDomain(s))),
  CA_TTL: v.optional(v.pipe(durationSeconds(MIN_CA_TTL_SECONDS), v.maxValue(MAX_CA_TTL_SECONDS, 'must be at most 10 years')), CONFIG_DEFAULTS.CA_TTL),
  X509_SVID_TTL: v.optional(durationSeconds(), CONFIG_DEFAULTS.X509_SVID_TTL),
  JWT_SVID_TTL: v.optional(durationSeconds(), CONFIG_DEFAULTS.JWT_SVID_TTL),
  WIT_SVID_TTL: v.optional(durationSeconds()),
  JWKS_MAX_AGE: v.optional(durationSeconds(0), CONFIG_DEFAULTS.JWKS_MAX_AGE),
  JWT_KEY_TYPE: v.optional(oneOf(['ES256', 'RS256'], 'must be ES256 or RS256'), CONFIG_DEFAULTS.JWT_KEY_TYPE),
  CA_SUBJECT: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z][A-Za-z0-9.]*=[^,]+(,[A-Za-z][A-Za-z0-9.]*=[^,]+)*$/, 'must look like "O=Example,CN=Example CA"')),
    CONFIG_DEFAULTS.CA_SUBJECT,
  ),
  UPSTREAM_CA_CERT_CHAIN: v.optional(v.string()),
  UPSTREAM_CA_KEY: v.optional(v.string()),
  RATE_LIMITS: RATE_LIMITS_ENTRY,
  KEY_ENCRYPTION_SECRET: secret(MIN_SECRET_LENGTH),
  JWT_ISSUER: v.pipe(
    v.optional(v.string(), ''),
    v.check((s) => s !== '', 'is required (the public https URL of this issuer)'),
    urlString(),
    httpsUrl(),
    v.check((s) => { const u = new URL(s); return !u.search && !u.hash; }, 'must not have a query or fragment'),
    v.transform((s) => s.replace(/\/+$/, '')),
  ),
};

type CaInput = v.InferOutput<v.ObjectSchema<typeof CA_ENTRIES, undefined>>;

/** The checks between keys, after each key is valid on its own. */
function withCaChecks<T extends CaInput>(schema: v.GenericSchema<WorkerConfigEnv, T>) {
  return v.pipe(
    schema,
    // A relying party caching the JWKS for max-age must see a prepared key before it signs:
    // prepare→activate lead time is lifetime/3 (SPIRE's 1/2 and 1/6 thresholds).
    keyCheck<T>(
      'JWKS_MAX_AGE',
      (c) => c.JWKS_MAX_AGE < c.CA_TTL / 3,
      (c) => `must be shorter than a third of CA_TTL (${Math.floor(c.CA_TTL / 3)}s), the key pre-publication lead time`,
    ),
    keyCheck<T>('UPSTREAM_CA_KEY', (c) => !c.UPSTREAM_CA_CERT_CHAIN || Boolean(c.UPSTREAM_CA_KEY), () => UPSTREAM_PAIR),
    keyCheck<T>('UPSTREAM_CA_CERT_CHAIN', (c) => Boolean(c.UPSTREAM_CA_CERT_CHAIN) || !c.UPSTREAM_CA_KEY, () => UPSTREAM_PAIR),
  );
}

function toCaConfig(c: CaInput): CaConfig {
  return {
    trustDomain: c.TRUST_DOMAIN,
    caSubject: c.CA_SUBJECT,
    caTtlSeconds: c.CA_TTL,
    x509SvidTtlSeconds: c.X509_SVID_TTL,
    jwtSvidTtlSeconds: c.JWT_SVID_TTL,
    jwtKeyType: c.JWT_KEY_TYPE,
    ...(c.WIT_SVID_TTL !== undefined ? { witSvidTtlSeconds: c.WIT_SVID_TTL } : {}),
    jwksMaxAgeSeconds: c.JWKS_MAX_AGE,
    jwtIssuer: c.JWT_ISSUER,
    keyEncryptionSecret: c.KEY_ENCRYPTION_SECRET,
    upstreamCa: c.UPSTREAM_CA_CERT_CHAIN ? { certChainPem: c.UPSTREAM_CA_CERT_CHAIN, keyPem: c.UPSTREAM_CA_KEY! } : undefined,
  };
}

const CA_SCHEMA = v.pipe(withCaChecks(v.object(CA_ENTRIES)), v.transform(toCaConfig));

const WORKER_SCHEMA = v.pipe(
  withCaChecks(v.object({
    ...CA_ENTRIES,
    ADMIN_TOKEN: secret(MIN_SECRET_LENGTH),
    AGENT_REQUEST_MAX_SKEW: v.optional(durationSeconds(), CONFIG_DEFAULTS.AGENT_REQUEST_MAX_SKEW),
    AUDIT_RETENTION: v.optional(durationSeconds(MIN_AUDIT_RETENTION_SECONDS), CONFIG_DEFAULTS.AUDIT_RETENTION),
    ...CLOUD_ATTESTORS_ENTRIES,
    TOKEN_EXCHANGE: TOKEN_EXCHANGE_ENTRY,
  })),
  v.transform(
    (c): WorkerConfig => ({
      ...toCaConfig(c),
      adminToken: c.ADMIN_TOKEN,
      agentRequestMaxSkewSeconds: c.AGENT_REQUEST_MAX_SKEW,
      nodeAttestors: cloudAttestorsFromEnv(c),
      auditRetentionSeconds: c.AUDIT_RETENTION,
      ...(c.TOKEN_EXCHANGE ? { tokenExchange: c.TOKEN_EXCHANGE } : {}),
    }),
  ),
);

/** Parses the bindings the CA Durable Object needs; throws WispError ERR_CONFIG_INVALID naming the key. */
export function parseCaConfig(env: WorkerConfigEnv): CaConfig {
  return parseConfig(CA_SCHEMA, env);
}

const RATE_LIMITS_SCHEMA = v.pipe(v.object({ RATE_LIMITS: RATE_LIMITS_ENTRY }), v.transform((c) => c.RATE_LIMITS));

/** The rate limits the CA counts (RATE_LIMITS; unset: the defaults); throws WispError ERR_CONFIG_INVALID. */
export function parseRateLimitsConfig(env: WorkerConfigEnv): RateLimitsConfig {
  return parseConfig(RATE_LIMITS_SCHEMA, env);
}

/** Parses bindings into a WorkerConfig; throws WispError ERR_CONFIG_INVALID naming the key. */
export function parseWorkerConfig(env: WorkerConfigEnv): WorkerConfig {
  return parseConfig(WORKER_SCHEMA, env);
}
