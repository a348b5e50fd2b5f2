/**
 * Federation relationships (SPIFFE_Federation.md): which foreign trust domain we trust, where its bundle
 * endpoint is, and how that endpoint authenticates (profile `https_web`: web PKI; `https_spiffe`: an SVID
 * of the foreign trust domain, verified against the stored bundle). Parsing of admin input, the endpoint URL
 * rule, and the refresh schedule, all pure.
 * @module
 */
import { WispError } from '../errors.js';
import { isHttpsOrLoopbackHttp } from '../net/loopback.js';
import { isAgentId, parseSpiffeId, parseSpiffeIdInTrustDomain, parseTrustDomain, trustDomainOf, type SpiffeId, type TrustDomain } from '../spiffe/id.js';

export type BundleEndpointProfile = 'https_web' | 'https_spiffe';
export const BUNDLE_ENDPOINT_PROFILES: readonly BundleEndpointProfile[] = ['https_web', 'https_spiffe'];

/** The stored relationship, as the admin API shows it. Times are seconds since the epoch; 0 = never. */
export interface FederationRelationship {
  trustDomain: TrustDomain;
  bundleEndpointUrl: string;
  bundleEndpointProfile: BundleEndpointProfile;
  /** https_spiffe only: the SPIFFE ID the endpoint's certificate must carry */
  endpointSpiffeId?: SpiffeId;
  /** https_spiffe only: the agent (of the local trust domain) that refreshes this bundle */
  refreshAgentId?: SpiffeId;
  createdAt: number;
  updatedAt: number;
  /** last successful refresh (the bundle was fetched and valid, changed or not) */
  lastRefreshAt: number;
  /** the error of the last refresh attempt, '' after a success */
  lastRefreshError: string;
  /** when the cron should refresh next (https_web only) */
  nextRefreshAt: number;
}

/** What an admin sends to create or replace a relationship. */
export interface RelationshipInput {
  trustDomain: TrustDomain;
  bundleEndpointUrl: string;
  bundleEndpointProfile: BundleEndpointProfile;
  endpointSpiffeId?: SpiffeId;
  refreshAgentId?: SpiffeId;
  /** bootstrap bundle, SPIFFE JSON (object or text) or PEM; required for https_spiffe */
  trustDomainBundle?: unknown;
}

/** Refresh interval bounds applied to a bundle's `spiffe_refresh_hint`, seconds. */
export const FEDERATION_REFRESH_MIN_SECONDS = 60;
export const FEDERATION_REFRESH_MAX_SECONDS = 86_400;
/** Interval used when a bundle has no hint, and retry delay after a failed refresh, seconds. */
export const FEDERATION_REFRESH_DEFAULT_SECONDS = 300;
/** Longest bundle endpoint URL accepted. */
export const BUNDLE_ENDPOINT_URL_MAX_CHARS = 2048;

function bad(message: string): WispError {
  return new WispError('ERR_BAD_REQUEST', message);
}

/**
 * A bundle endpoint URL: https, or http on a loopback host only (local testing); no credentials, no
 * fragment. Throws WispError ERR_BAD_REQUEST.
 * @example parseBundleEndpointUrl('https://partner.example/bundle')
 */
export function parseBundleEndpointUrl(input: unknown): string {
  if (typeof input !== 'string' || input.length === 0) throw bad('bundleEndpointUrl must be a non-empty string');
  if (input.length > BUNDLE_ENDPOINT_URL_MAX_CHARS) throw bad(`bundleEndpointUrl is longer than ${BUNDLE_ENDPOINT_URL_MAX_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw bad(`bundleEndpointUrl "${input}" is not a URL`);
  }
  if (!isHttpsOrLoopbackHttp(url)) {
    throw bad('bundleEndpointUrl must be https (http only for a loopback host)');
  }
  if (url.username || url.password) throw bad('bundleEndpointUrl must not carry credentials');
  if (url.hash) throw bad('bundleEndpointUrl must not have a fragment');
  return url.toString();
}

function onlyFields(o: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(o)) if (!allowed.includes(key)) throw bad(`unknown field "${key}"`);
}

const RELATIONSHIP_FIELDS = ['trustDomain', 'bundleEndpointUrl', 'bundleEndpointProfile', 'endpointSpiffeId', 'refreshAgentId', 'trustDomainBundle'] as const;

/**
 * Parses a relationship from the admin API. `https_spiffe` needs `endpointSpiffeId` (a SPIFFE ID of the
 * foreign trust domain) and may name `refreshAgentId` (an agent of the local trust domain that refreshes the
 * bundle); `https_web` has neither. The foreign trust domain must not be `ownTrustDomain`.
 * Whether a bootstrap bundle is needed is the caller's decision (it may already be stored).
 */
export function parseRelationshipInput(input: unknown, ownTrustDomain: TrustDomain, pathTrustDomain?: string): RelationshipInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw bad('request body must be a JSON object');
  const o = input as Record<string, unknown>;
  onlyFields(o, RELATIONSHIP_FIELDS);
  const rawTd = o.trustDomain ?? pathTrustDomain;
  let trustDomain: TrustDomain;
  try {
    trustDomain = parseTrustDomain(rawTd);
  } catch (e) {
    throw bad(`trustDomain: ${e instanceof Error ? e.message : 'invalid'}`);
  }
  if (pathTrustDomain !== undefined && trustDomain !== pathTrustDomain) throw bad('the trustDomain in the body differs from the one in the path');
  if (trustDomain === ownTrustDomain) throw bad('a trust domain cannot federate with itself');
  const bundleEndpointUrl = parseBundleEndpointUrl(o.bundleEndpointUrl);
  const profile = o.bundleEndpointProfile ?? 'https_web';
  if (!BUNDLE_ENDPOINT_PROFILES.includes(profile as BundleEndpointProfile)) throw bad(`bundleEndpointProfile must be one of ${BUNDLE_ENDPOINT_PROFILES.join(', ')}`);
  const out: RelationshipInput = { trustDomain, bundleEndpointUrl, bundleEndpointProfile: profile as BundleEndpointProfile };
  if (profile === 'https_spiffe') {
    if (o.endpointSpiffeId === undefined) throw bad('endpointSpiffeId is required for the https_spiffe profile');
    let id: SpiffeId;
    try {
      id = parseSpiffeId(o.endpointSpiffeId);
    } catch (e) {
      throw new WispError('ERR_SPIFFE_ID_INVALID', `endpointSpiffeId: ${e instanceof Error ? e.message : 'invalid'}`);
    }
    if (trustDomainOf(id) !== trustDomain) throw bad('endpointSpiffeId must belong to the federated trust domain');
    out.endpointSpiffeId = id;
    if (o.refreshAgentId !== undefined && o.refreshAgentId !== null) {
      let agent: SpiffeId;
      try {
        agent = parseSpiffeIdInTrustDomain(o.refreshAgentId, ownTrustDomain, 'refreshAgentId');
      } catch (e) {
        throw new WispError('ERR_SPIFFE_ID_INVALID', e instanceof Error ? e.message : 'refreshAgentId is invalid');
      }
      if (!isAgentId(agent)) throw bad('refreshAgentId must be an agent ID (spiffe://<trust domain>/spire/agent/...)');
      out.refreshAgentId = agent;
    }
  } else if (o.endpointSpiffeId !== undefined || o.refreshAgentId !== undefined) {
    throw bad('endpointSpiffeId and refreshAgentId are only for the https_spiffe profile');
  }
  if (o.trustDomainBundle !== undefined && o.trustDomainBundle !== null) out.trustDomainBundle = o.trustDomainBundle;
  return out;
}

/** Seconds until the next refresh for a bundle's refresh hint: the hint bounded to 1 min..1 day. */
export function refreshIntervalSeconds(refreshHintSeconds: number | undefined): number {
  if (refreshHintSeconds === undefined || refreshHintSeconds <= 0) return FEDERATION_REFRESH_DEFAULT_SECONDS;
  return Math.min(FEDERATION_REFRESH_MAX_SECONDS, Math.max(FEDERATION_REFRESH_MIN_SECONDS, refreshHintSeconds));
}
