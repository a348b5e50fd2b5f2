/**
 * Parsing and validation of registration entries from untrusted input (the admin API). Pure: the trust
 * domain is an argument. Every rule and bound is here, so the store only ever sees valid entries.
 *
 * Bounds (documented in docs/storage.md as well):
 * - spiffeId: SPIFFE-ID.md §2, in the trust domain, a non-empty path, not under the reserved `/spire/` path
 *   (agent and server IDs are not workload IDs), different from parentId.
 * - parentId: any SPIFFE ID in the trust domain (an agent ID, the server ID for node aliases, or another
 *   entry's spiffeId for nesting).
 * - selectors: 1..64, each per selectors.ts, no duplicates.
 * - x509SvidTtl: 0 (issuer default) or 1..30 days; jwtSvidTtl: 0 or 1..24 hours (whole seconds).
 * - dnsNames: ≤ 32, RFC 1123 hostnames ≤ 253 bytes, labels ≤ 63, a wildcard only as the whole leftmost label.
 * - hint: ≤ 1024 bytes UTF-8; federatesWith: ≤ 32 trust domain names, not our own; expiresAt: 0 or seconds.
 * - id (optional on create): 1..255 of [A-Za-z0-9._-].
 * - jwtSvidClaims: per jwt-svid-claims.ts (no reserved claim, ≤ 4 KiB); `{}` is the same as none.
 * @module
 */
import { WispError } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { dnsNameProblem } from '../spiffe/dns-name.js';
import { parseSpiffeIdInTrustDomain, parseTrustDomain, pathOf, type TrustDomain } from '../spiffe/id.js';
import type { Entry, NewEntry } from './entry.js';
import { jwtSvidClaimsProblem, type JwtSvidExtraClaims } from './jwt-svid-claims.js';
import { parseSelectors } from './selectors.js';

/** Longest X509-SVID TTL an entry may ask for. */
export const ENTRY_X509_SVID_TTL_MAX_SECONDS = 30 * 86400;
/** Longest JWT-SVID TTL an entry may ask for. */
export const ENTRY_JWT_SVID_TTL_MAX_SECONDS = 86400;
export const ENTRY_DNS_NAMES_MAX = 32;
export const ENTRY_FEDERATES_WITH_MAX = 32;
export const ENTRY_HINT_MAX_BYTES = 1024;
export const ENTRY_ID_PATTERN = /^[A-Za-z0-9._-]{1,255}$/;
/**
 * IDs an entry may not get, though ENTRY_ID_PATTERN matches them: URL parsing removes "." and ".." path
 * segments, so /admin/v1/entries/<id> could never reach such an entry. Lookups (parseEntryId) still accept
 * them, so batch-delete removes entries made before they were refused.
 */
const UNREACHABLE_ENTRY_IDS = new Set(['.', '..']);

const ENTRY_FIELDS = new Set([
  'id',
  'spiffeId',
  'parentId',
  'selectors',
  'x509SvidTtl',
  'jwtSvidTtl',
  'dnsNames',
  'federatesWith',
  'admin',
  'downstream',
  'hint',
  'expiresAt',
  'jwtSvidClaims',
  // read-only, accepted so a fetched entry can be sent back unchanged; ignored
  'revisionNumber',
  'createdAt',
]);

function invalid(message: string): WispError {
  return new WispError('ERR_ENTRY_INVALID', message);
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Parses an entry ID (path parameter or body field). */
export function parseEntryId(input: unknown): string {
  if (typeof input !== 'string' || !ENTRY_ID_PATTERN.test(input)) {
    throw invalid('id must be 1 to 255 characters of letters, digits, ".", "_" or "-"');
  }
  return input;
}

function ttl(value: unknown, field: string, max: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw invalid(`${field} must be whole seconds between 0 (issuer default) and ${max}`);
  }
  return value;
}

function bool(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw invalid(`${field} must be a boolean`);
  return value;
}

function stringList(value: unknown, field: string, max: number): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw invalid(`${field} must be an array of strings`);
  if (value.length > max) throw invalid(`${field} has more than ${max} items`);
  if (new Set(value).size !== value.length) throw invalid(`${field} has duplicates`);
  return value as string[];
}

/**
 * Parses one entry from untrusted JSON. Throws WispError: ERR_SPIFFE_ID_INVALID, ERR_TRUST_DOMAIN_MISMATCH,
 * ERR_SELECTOR_INVALID or ERR_ENTRY_INVALID (ERR_BAD_REQUEST when it is not an object).
 * @example parseEntryInput({ spiffeId: 'spiffe://example.org/web', parentId: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1000' }] }, td)
 */
export function parseEntryInput(input: unknown, td: TrustDomain): NewEntry {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new WispError('ERR_BAD_REQUEST', 'entry must be a JSON object');
  }
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!ENTRY_FIELDS.has(key)) throw invalid(`unknown entry field "${key}"`);
  }
  const id = o.id === undefined ? undefined : parseEntryId(o.id);
  if (id !== undefined && UNREACHABLE_ENTRY_IDS.has(id)) {
    throw invalid('id must not be "." or "..": URLs drop such path segments, so /entries/<id> could not reach the entry');
  }
  if (o.spiffeId === undefined) throw new WispError('ERR_SPIFFE_ID_INVALID', 'spiffeId is required');
  if (o.parentId === undefined) throw new WispError('ERR_SPIFFE_ID_INVALID', 'parentId is required');
  const spiffeId = parseSpiffeIdInTrustDomain(o.spiffeId, td, 'spiffeId');
  const parentId = parseSpiffeIdInTrustDomain(o.parentId, td, 'parentId');
  const path = pathOf(spiffeId);
  if (path === '') throw new WispError('ERR_SPIFFE_ID_INVALID', 'spiffeId must have a path (the trust domain ID is not a workload ID)');
  if (path === '/spire' || path.startsWith('/spire/')) {
    throw new WispError('ERR_SPIFFE_ID_INVALID', 'spiffeId must not be in the reserved /spire/ namespace');
  }
  if (spiffeId === parentId) throw invalid('spiffeId and parentId must differ');
  if (o.selectors === undefined) throw new WispError('ERR_SELECTOR_INVALID', 'selectors are required');
  const selectors = parseSelectors(o.selectors);

  const dnsNames = stringList(o.dnsNames, 'dnsNames', ENTRY_DNS_NAMES_MAX);
  for (const name of dnsNames) {
    const problem = dnsNameProblem(name);
    if (problem) throw invalid(problem);
  }
  const federatesWith = stringList(o.federatesWith, 'federatesWith', ENTRY_FEDERATES_WITH_MAX).map((name) => {
    let federated: TrustDomain;
    try {
      federated = parseTrustDomain(name);
    } catch {
      throw invalid(`federatesWith: "${name}" is not a valid trust domain name`);
    }
    if (federated === td) throw invalid('federatesWith must not name the local trust domain');
    return federated;
  });
  const hint = o.hint === undefined ? '' : o.hint;
  if (typeof hint !== 'string') throw invalid('hint must be a string');
  if (byteLength(hint) > ENTRY_HINT_MAX_BYTES) throw invalid(`hint is longer than ${ENTRY_HINT_MAX_BYTES} bytes`);
  const expiresAt = o.expiresAt === undefined ? 0 : o.expiresAt;
  if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw invalid('expiresAt must be whole seconds since the epoch, or 0 for never');
  }
  let jwtSvidClaims: JwtSvidExtraClaims | undefined;
  if (o.jwtSvidClaims !== undefined) {
    const problem = jwtSvidClaimsProblem(o.jwtSvidClaims);
    if (problem) throw invalid(problem);
    if (Object.keys(o.jwtSvidClaims as object).length > 0) jwtSvidClaims = o.jwtSvidClaims as JwtSvidExtraClaims;
  }
  return {
    ...(id === undefined ? {} : { id }),
    spiffeId,
    parentId,
    selectors,
    x509SvidTtl: ttl(o.x509SvidTtl, 'x509SvidTtl', ENTRY_X509_SVID_TTL_MAX_SECONDS),
    jwtSvidTtl: ttl(o.jwtSvidTtl, 'jwtSvidTtl', ENTRY_JWT_SVID_TTL_MAX_SECONDS),
    dnsNames,
    federatesWith,
    admin: bool(o.admin, 'admin'),
    downstream: bool(o.downstream, 'downstream'),
    hint,
    expiresAt,
    ...(jwtSvidClaims === undefined ? {} : { jwtSvidClaims }),
  };
}

/** Result form of `parseEntryInput`, for per-item batch statuses. */
export function validateEntryInput(input: unknown, td: TrustDomain): Result<NewEntry> {
  try {
    return ok(parseEntryInput(input, td));
  } catch (e) {
    if (e instanceof WispError) return err(e.toData());
    throw e;
  }
}

/** True when the entry has an expiry and it has passed at `now` (seconds). */
export function isEntryExpired(entry: Pick<Entry, 'expiresAt'>, now: number): boolean {
  return entry.expiresAt !== 0 && entry.expiresAt <= now;
}
