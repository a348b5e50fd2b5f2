/**
 * The issuer's configuration: wrangler.toml [vars] plus secrets, parsed once into a typed `WorkerConfig`.
 * No module below this one reads `env.X` for configuration. Errors name the bad key.
 * @module
 */
import { WispError } from '../shared/errors.js';
import { parseDurationSeconds } from '../shared/duration.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { parseCloudAttestorsConfig, type CloudAttestorsConfig, type CloudAttestorsEnv } from './attestation/cloud-config.js';

export type JwtKeyType = 'ES256' | 'RS256';

export interface WorkerConfig {
  trustDomain: TrustDomain;
  /** RFC 4514-style subject of the CA certificate, e.g. `O=Wisp,CN=Wisp CA` */
  caSubject: string;
  caTtlSeconds: number;
  x509SvidTtlSeconds: number;
  jwtSvidTtlSeconds: number;
  /** `iss` of JWT-SVIDs and the OIDC issuer; https in production, http allowed for localhost */
  jwtIssuer: string;
  jwtKeyType: JwtKeyType;
  jwksMaxAgeSeconds: number;
  /** ≥ 32 bytes; CA and JWT private keys are encrypted at rest under a key derived from it */
  keyEncryptionSecret: string;
  /** ≥ 32 bytes; bearer token of the admin API */
  adminToken: string;
  /** Optional upstream CA: PEM chain (intermediate-issuing cert first, root last) and its PKCS#8 PEM key. */
  upstreamCa?: { certChainPem: string; keyPem: string };
  /** How long a signed agent request stays fresh (±), seconds. */
  agentRequestMaxSkewSeconds: number;
  /** Cloud node attestors (AWS_IID, GCP_IIT, AZURE_MSI JSON vars); absent ones are disabled. */
  nodeAttestors: CloudAttestorsConfig;
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
  JWKS_MAX_AGE?: string;
  KEY_ENCRYPTION_SECRET?: string;
  ADMIN_TOKEN?: string;
  UPSTREAM_CA_CERT_CHAIN?: string;
  UPSTREAM_CA_KEY?: string;
  AGENT_REQUEST_MAX_SKEW?: string;
}

export const CONFIG_DEFAULTS = {
  CA_SUBJECT: 'O=Wisp,CN=Wisp CA',
  CA_TTL: '24h',
  X509_SVID_TTL: '1h',
  JWT_SVID_TTL: '5m',
  JWT_KEY_TYPE: 'ES256',
  JWKS_MAX_AGE: '5m',
  AGENT_REQUEST_MAX_SKEW: '60s',
} as const;

const MIN_SECRET_LENGTH = 32;
const MIN_CA_TTL_SECONDS = 60;
const MAX_CA_TTL_SECONDS = 10 * 365 * 86400;

function bad(key: string, message: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `${key}: ${message}`);
}

function duration(env: WorkerConfigEnv, key: keyof typeof CONFIG_DEFAULTS & keyof WorkerConfigEnv, min = 1): number {
  const raw = env[key] ?? CONFIG_DEFAULTS[key];
  const seconds = parseDurationSeconds(raw);
  if (seconds === undefined) throw bad(key, `"${raw}" is not a duration (e.g. 90s, 5m, 1h, 7d)`);
  if (seconds < min) throw bad(key, `must be at least ${min}s`);
  return seconds;
}

function secret(env: WorkerConfigEnv, key: 'KEY_ENCRYPTION_SECRET' | 'ADMIN_TOKEN'): string {
  const value = env[key];
  if (!value) throw bad(key, 'secret is not set (wrangler secret put, or .dev.vars locally)');
  if (value.length < MIN_SECRET_LENGTH) throw bad(key, `must be at least ${MIN_SECRET_LENGTH} characters`);
  return value;
}

function issuerUrl(raw: string | undefined): string {
  if (!raw) throw bad('JWT_ISSUER', 'is required (the public https URL of this issuer)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('JWT_ISSUER', `"${raw}" is not a URL`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw bad('JWT_ISSUER', 'must be https (http only for localhost)');
  }
  if (url.search || url.hash) throw bad('JWT_ISSUER', 'must not have a query or fragment');
  return raw.replace(/\/+$/, '');
}

/** What the CA Durable Object needs (it does not parse the rest). */
export type CaConfig = Pick<
  WorkerConfig,
  'trustDomain' | 'caSubject' | 'caTtlSeconds' | 'x509SvidTtlSeconds' | 'jwtSvidTtlSeconds' | 'jwtIssuer' | 'jwtKeyType' | 'jwksMaxAgeSeconds' | 'keyEncryptionSecret' | 'upstreamCa'
>;

/** Parses the CA's part of the bindings; throws WispError ERR_CONFIG_INVALID naming the key. */
export function parseCaConfig(env: WorkerConfigEnv): CaConfig {
  let trustDomain: TrustDomain;
  try {
    trustDomain = parseTrustDomain(env.TRUST_DOMAIN ?? '');
  } catch (e) {
    throw bad('TRUST_DOMAIN', e instanceof Error ? e.message : 'invalid');
  }
  const caTtlSeconds = duration(env, 'CA_TTL', MIN_CA_TTL_SECONDS);
  if (caTtlSeconds > MAX_CA_TTL_SECONDS) throw bad('CA_TTL', 'must be at most 10 years');
  const x509SvidTtlSeconds = duration(env, 'X509_SVID_TTL');
  const jwtSvidTtlSeconds = duration(env, 'JWT_SVID_TTL');
  const jwksMaxAgeSeconds = duration(env, 'JWKS_MAX_AGE', 0);
  // A relying party caching the JWKS for max-age must see a prepared key before it signs:
  // prepare→activate lead time is lifetime/3 (SPIRE's 1/2 and 1/6 thresholds).
  if (jwksMaxAgeSeconds >= caTtlSeconds / 3) {
    throw bad('JWKS_MAX_AGE', `must be shorter than a third of CA_TTL (${Math.floor(caTtlSeconds / 3)}s), the key pre-publication lead time`);
  }
  const jwtKeyType = env.JWT_KEY_TYPE ?? CONFIG_DEFAULTS.JWT_KEY_TYPE;
  if (jwtKeyType !== 'ES256' && jwtKeyType !== 'RS256') throw bad('JWT_KEY_TYPE', 'must be ES256 or RS256');
  const caSubject = env.CA_SUBJECT ?? CONFIG_DEFAULTS.CA_SUBJECT;
  if (!/^[A-Za-z][A-Za-z0-9.]*=[^,]+(,[A-Za-z][A-Za-z0-9.]*=[^,]+)*$/.test(caSubject)) {
    throw bad('CA_SUBJECT', 'must look like "O=Example,CN=Example CA"');
  }
  const hasChain = Boolean(env.UPSTREAM_CA_CERT_CHAIN);
  if (hasChain !== Boolean(env.UPSTREAM_CA_KEY)) {
    throw bad(hasChain ? 'UPSTREAM_CA_KEY' : 'UPSTREAM_CA_CERT_CHAIN', 'upstream CA needs both UPSTREAM_CA_CERT_CHAIN and UPSTREAM_CA_KEY');
  }
  return {
    trustDomain,
    caSubject,
    caTtlSeconds,
    x509SvidTtlSeconds,
    jwtSvidTtlSeconds,
    jwtIssuer: issuerUrl(env.JWT_ISSUER),
    jwtKeyType,
    jwksMaxAgeSeconds,
    keyEncryptionSecret: secret(env, 'KEY_ENCRYPTION_SECRET'),
    upstreamCa: hasChain ? { certChainPem: env.UPSTREAM_CA_CERT_CHAIN!, keyPem: env.UPSTREAM_CA_KEY! } : undefined,
  };
}

/** Parses bindings into a WorkerConfig; throws WispError ERR_CONFIG_INVALID naming the key. */
export function parseWorkerConfig(env: WorkerConfigEnv): WorkerConfig {
  return {
    ...parseCaConfig(env),
    adminToken: secret(env, 'ADMIN_TOKEN'),
    agentRequestMaxSkewSeconds: duration(env, 'AGENT_REQUEST_MAX_SKEW'),
    nodeAttestors: parseCloudAttestorsConfig(env),
  };
}
