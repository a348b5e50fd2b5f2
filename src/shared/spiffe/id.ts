/**
 * SPIFFE IDs and trust domain names, parsed strictly per SPIFFE-ID.md §2. Parsing is the only way to get a
 * `SpiffeId` or `TrustDomain`, so code that holds one can rely on its syntax.
 * @module
 */
import { WispError } from '../errors.js';

/** A syntactically valid SPIFFE ID, e.g. `spiffe://example.org/ns/prod/sa/web`. */
export type SpiffeId = string & { readonly __brand: 'SpiffeId' };
/** A syntactically valid trust domain name, e.g. `example.org`. */
export type TrustDomain = string & { readonly __brand: 'TrustDomain' };

/** SPIFFE-ID.md §2.3: implementations must support 2048 bytes and should not generate more. */
export const SPIFFE_ID_MAX_BYTES = 2048;
/** SPIFFE-ID.md §2.3: RFC 3986 limits the host to 255 characters. */
export const TRUST_DOMAIN_MAX_BYTES = 255;

const SCHEME_PREFIX = 'spiffe://';
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;

function invalid(message: string): WispError {
  return new WispError('ERR_SPIFFE_ID_INVALID', message);
}

/** Why `name` is not a valid trust domain name, or undefined when it is. */
function trustDomainProblem(name: string): string | undefined {
  if (name.length === 0) return 'trust domain is missing';
  if (name.length > TRUST_DOMAIN_MAX_BYTES) return `trust domain is longer than ${TRUST_DOMAIN_MAX_BYTES} bytes`;
  if (!TRUST_DOMAIN_CHARS.test(name)) {
    return 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
  }
  return undefined;
}

/**
 * Parses a trust domain name (SPIFFE-ID.md §2.1). Accepts a bare name only; use `trustDomainOf` for IDs.
 * @example parseTrustDomain('example.org')
 */
export function parseTrustDomain(input: unknown): TrustDomain {
  if (typeof input !== 'string') throw invalid('trust domain must be a string');
  const problem = trustDomainProblem(input);
  if (problem) throw invalid(problem);
  return input as TrustDomain;
}

/**
 * Parses a SPIFFE ID (SPIFFE-ID.md §2): scheme `spiffe`, a non-empty lowercase trust domain, no userinfo,
 * port, query, fragment or percent-encoding, and a path of non-empty, non-relative segments of
 * [a-zA-Z0-9._-] with no trailing slash.
 * @example parseSpiffeId('spiffe://example.org/ns/prod/sa/web')
 */
export function parseSpiffeId(input: unknown): SpiffeId {
  if (typeof input !== 'string') throw invalid('SPIFFE ID must be a string');
  if (input.length === 0) throw invalid('SPIFFE ID is empty');
  if (new TextEncoder().encode(input).length > SPIFFE_ID_MAX_BYTES) {
    throw invalid(`SPIFFE ID is longer than ${SPIFFE_ID_MAX_BYTES} bytes`);
  }
  if (!input.startsWith(SCHEME_PREFIX)) {
    throw invalid(input.toLowerCase().startsWith(SCHEME_PREFIX) ? 'scheme must be lowercase "spiffe"' : 'scheme is missing or invalid');
  }
  const rest = input.slice(SCHEME_PREFIX.length);
  if (rest.includes('?')) throw invalid('SPIFFE ID must not include a query');
  if (rest.includes('#')) throw invalid('SPIFFE ID must not include a fragment');
  if (rest.includes('%')) throw invalid('SPIFFE ID must not include percent-encoded characters');
  const slash = rest.indexOf('/');
  const authority = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (authority.includes('@')) throw invalid('SPIFFE ID must not include userinfo');
  if (authority.includes(':')) throw invalid('SPIFFE ID must not include a port');
  const problem = trustDomainProblem(authority);
  if (problem) throw invalid(problem);
  if (path.length > 0) {
    if (path.endsWith('/')) throw invalid('path must not have a trailing slash');
    for (const segment of path.slice(1).split('/')) {
      if (segment === '') throw invalid('path must not contain empty segments');
      if (segment === '.' || segment === '..') throw invalid('path must not contain dot segments');
      if (!PATH_SEGMENT_CHARS.test(segment)) {
        throw invalid('path segment characters are limited to letters, numbers, dots, dashes, and underscores');
      }
    }
  }
  return input as SpiffeId;
}

/** True when `input` is a valid SPIFFE ID. */
export function isSpiffeId(input: unknown): input is SpiffeId {
  try {
    parseSpiffeId(input);
    return true;
  } catch {
    return false;
  }
}

/** The trust domain of a parsed SPIFFE ID. */
export function trustDomainOf(id: SpiffeId): TrustDomain {
  const rest = id.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  return (slash === -1 ? rest : rest.slice(0, slash)) as TrustDomain;
}

/** The path of a parsed SPIFFE ID ('' for a trust domain's own ID). */
export function pathOf(id: SpiffeId): string {
  const rest = id.slice(SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? '' : rest.slice(slash);
}

/** `spiffe://<td>`: the ID of a trust domain itself; the key of bundle maps in the Workload API. */
export function trustDomainId(td: TrustDomain): SpiffeId {
  return `${SCHEME_PREFIX}${td}` as SpiffeId;
}

/** Builds an ID in `td` from path segments; each segment must be valid (throws WispError otherwise). */
export function spiffeIdFromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
  return parseSpiffeId(`${SCHEME_PREFIX}${td}${segments.map((s) => `/${s}`).join('')}`);
}

/** Parses `input` and requires it to be in trust domain `td`. */
export function parseSpiffeIdInTrustDomain(input: unknown, td: TrustDomain, what = 'SPIFFE ID'): SpiffeId {
  const id = parseSpiffeId(input);
  if (trustDomainOf(id) !== td) {
    throw new WispError('ERR_TRUST_DOMAIN_MISMATCH', `${what} "${id}" is not a member of trust domain "${td}"`);
  }
  return id;
}

/** SPIRE's server ID, parent of node-alias entries: `spiffe://<td>/spire/server`. */
export function serverId(td: TrustDomain): SpiffeId {
  return `${SCHEME_PREFIX}${td}/spire/server` as SpiffeId;
}

/** True for SPIRE-style agent IDs: `spiffe://<td>/spire/agent/...`. */
export function isAgentId(id: SpiffeId): boolean {
  return pathOf(id).startsWith('/spire/agent/');
}
