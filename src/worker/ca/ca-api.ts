/**
 * The contract of the TrustDomainCa Durable Object's RPC surface: plain data in, `Result` out (error classes
 * do not survive DO RPC). The Worker verifies CSRs and authorization before calling; the DO only signs.
 * @module
 */
import type { KeyKind } from '../../shared/ca/key-slot.js';
import type { AuthorityOp, AuthorityResult } from '../../shared/ca/local-authority.js';
import { unwrap, type Result } from '../../shared/result.js';
import type { JwtSvidExtraClaims } from '../../shared/registry/jwt-svid-claims.js';
import type { MetricSample } from '../../shared/telemetry/issuer-names.js';

/** Most SVIDs signed in one signX509Svids / signJwtSvids call (callers split larger batches). */
export const MAX_SIGN_BATCH = 256;

/**
 * `requests` signed in calls of at most MAX_SIGN_BATCH (the agent API allows larger batches), in parallel, each
 * by `sign`: the results in order, unwrapped, so any refused item fails the whole call with its WispError.
 */
export async function signInBatches<Req, Res>(requests: readonly Req[], sign: (batch: Req[]) => Promise<Result<Res>[]>): Promise<Res[]> {
  const batches: Req[][] = [];
  for (let i = 0; i < requests.length; i += MAX_SIGN_BATCH) batches.push(requests.slice(i, i + MAX_SIGN_BATCH));
  const results = (await Promise.all(batches.map((batch) => sign(batch)))).flat();
  if (results.length !== requests.length) throw new Error('CA returned a batch of the wrong size');
  return results.map(unwrap);
}

export interface SignX509SvidRequest {
  spiffeId: string;
  /**
   * DER SubjectPublicKeyInfo, as bytes (structured clone over DO RPC: no base64 both ways per SVID). Already
   * proven by the CSR signature in the Worker. The DO also accepts the former base64 string (version skew).
   */
  publicKeySpki: Uint8Array;
  dnsNames: string[];
  /** requested lifetime; the DO caps it at the signing CA's notAfter */
  ttlSeconds: number;
}

export interface SignedX509Svid {
  spiffeId: string;
  /** leaf first, then intermediates up to (not including) the bundle's root; base64 DER each */
  certChain: string[];
  /** seconds since the epoch */
  expiresAt: number;
  serialNumber: string;
}

export interface SignJwtSvidRequest {
  spiffeId: string;
  audience: string[];
  ttlSeconds: number;
  /** the entry's `jwtSvidClaims` (checked again by sign-requests.ts) */
  extraClaims?: JwtSvidExtraClaims;
}

export interface SignedJwtSvid {
  spiffeId: string;
  token: string;
  /** seconds since the epoch */
  expiresAt: number;
}

export interface SignWitSvidRequest {
  spiffeId: string;
  /** the workload's public key for `cnf.jwk`; checked again by the CA (shared/spiffe/wit-svid.ts) */
  publicJwk: Record<string, unknown>;
  ttlSeconds: number;
}

export interface SignedWitSvid {
  spiffeId: string;
  token: string;
  /** seconds since the epoch */
  expiresAt: number;
}

/** One authority-management call (SPIRE's LocalAuthority API); `authorityId` for activate, taint and revoke. */
export interface AuthorityRequest {
  kind: KeyKind;
  op: AuthorityOp;
  authorityId?: string;
}

// The published view is shared with the bundle/JWKS builders in src/shared (one definition).
export type { PublishedJwk, PublishedKeys } from '../../shared/spiffe/bundle.js';
import type { PublishedKeys } from '../../shared/spiffe/bundle.js';

/**
 * `caller` of the signing calls: the bucket the call is counted in (the agent ID), one token per SVID
 * (rate-limits.ts), in the same RPC as the signing; refused, every result is ERR_RATE_LIMITED and nothing is
 * signed. Left out (the agent's own SVID at attestation, which attestation's limit covers): not counted.
 */
export interface TrustDomainCaApi {
  signX509Svids(requests: SignX509SvidRequest[], caller?: string): Promise<Result<SignedX509Svid>[]>;
  signJwtSvid(request: SignJwtSvidRequest, caller?: string): Promise<Result<SignedJwtSvid>>;
  /** one result per request, in order (at most MAX_SIGN_BATCH per call): one RPC for a whole agent batch */
  signJwtSvids(requests: SignJwtSvidRequest[], caller?: string): Promise<Result<SignedJwtSvid>[]>;
  /** WIT-SVIDs (counted in the JWT signing bucket); ERR_UNIMPLEMENTED each when WIT_SVID_TTL is unset. Absent: an older CA */
  signWitSvids?(requests: SignWitSvidRequest[], caller?: string): Promise<Result<SignedWitSvid>[]>;
  /** counts one node attestation attempt from `source` (the client's address); err ERR_RATE_LIMITED when over */
  admitAttestation(source: string): Promise<Result<true>>;
  /** err ERR_CA_NOT_READY when the CA has no usable keys (a failed first generation or rotation) */
  getPublishedKeys(): Promise<Result<PublishedKeys>>;
  /** show, prepare, activate, taint or revoke a key of one kind (local-authority.ts) */
  manageAuthority(request: AuthorityRequest): Promise<Result<AuthorityResult>>;
  /** ready = an active X.509 CA and an active JWT key exist */
  status(): Promise<{ ready: boolean }>;
  /** CRLs of `revoked`, one per X.509 CA key that may have signed unexpired SVIDs, the active key's first */
  getCrls(revoked: RevokedSerial[]): Promise<Result<SignedCrl[]>>;
  /** adds the Worker's coalesced agent API samples to the stored counters (ca/metrics.ts) */
  recordTelemetry(samples: MetricSample[]): Promise<Result<true>>;
  /** the stored counters and the CA's gauges, for the metrics scrape */
  getMetrics(): Promise<Result<MetricSample[]>>;
}

/** A revoked serial for the CRL: normalized hex (shared/registry/revocation.ts), revoked at (seconds). */
export interface RevokedSerial {
  serialNumber: string;
  revokedAt: number;
}

/** A CRL signed by one X.509 CA key (worker/ca/crl.ts). */
export interface SignedCrl {
  /** the CA key that signed it */
  kid: string;
  der: Uint8Array;
  /** seconds */
  thisUpdate: number;
  nextUpdate: number;
}
