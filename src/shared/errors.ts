/**
 * Wisp's one error type. Bad input and denied requests throw `WispError` with a stable `code`;
 * caller bugs throw `TypeError`. Codes map to HTTP and gRPC statuses in `error-status.ts`.
 * @module
 */

export type WispErrorCode =
  | 'ERR_BAD_REQUEST' // malformed JSON, missing or mistyped field
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_REQUEST_TOO_LARGE'
  | 'ERR_SPIFFE_ID_INVALID'
  | 'ERR_TRUST_DOMAIN_MISMATCH' // a SPIFFE ID outside the issuer's trust domain
  | 'ERR_SELECTOR_INVALID'
  | 'ERR_ENTRY_INVALID' // TTL bounds, DNS names, hint, ... of a registration entry
  | 'ERR_ENTRY_EXISTS' // same SPIFFE ID, parent ID and selectors
  | 'ERR_ENTRY_NOT_FOUND'
  | 'ERR_AGENT_NOT_FOUND'
  | 'ERR_FEDERATION_NOT_FOUND' // no federation relationship with this trust domain
  | 'ERR_FEDERATION_EXISTS'
  | 'ERR_BUNDLE_NOT_FOUND' // no foreign bundle of this trust domain
  | 'ERR_BUNDLE_SEQUENCE_BACKWARDS' // a foreign bundle whose spiffe_sequence is lower than the stored one
  | 'ERR_NOT_FOUND' // unknown route
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_CSR_INVALID'
  | 'ERR_JWT_INVALID'
  | 'ERR_JOIN_TOKEN_INVALID' // unknown, expired or already used: one code, one message
  | 'ERR_ATTESTATION_FAILED'
  | 'ERR_AGENT_ALREADY_ATTESTED' // trust on first use: a second attestation of the same node
  | 'ERR_UNAUTHENTICATED' // no credential at all
  | 'ERR_AGENT_AUTH_FAILED' // a signed agent request that does not verify (stale, replayed, forged, renewed-away)
  | 'ERR_PERMISSION_DENIED' // a credential that is valid but not allowed here (e.g. wrong admin token)
  | 'ERR_AGENT_BANNED'
  | 'ERR_SVID_REVOKED' // an agent proof signed by a revoked agent SVID (shared/registry/revocation.ts)
  | 'ERR_NO_IDENTITY' // SPIRE: PermissionDenied "no identity issued"
  | 'ERR_RATE_LIMITED' // a token bucket is empty (HTTP 429 with Retry-After; SPIRE: ResourceExhausted)
  | 'ERR_CA_NOT_READY'
  | 'ERR_AUTHORITY_NOT_FOUND' // no live CA key with this authority ID
  | 'ERR_AUTHORITY_STATE' // the key's state forbids the operation (e.g. taint the active authority)
  | 'ERR_UNAVAILABLE'
  | 'ERR_UNIMPLEMENTED'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_INTERNAL';

/** Plain data form: survives structured clone, DO RPC and JSON. */
export interface WispErrorData {
  code: WispErrorCode;
  message: string;
  /** ERR_RATE_LIMITED: whole seconds until a retry can pass (HTTP Retry-After) */
  retryAfterSeconds?: number;
}

export class WispError extends Error {
  readonly code: WispErrorCode;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: WispErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    super(message, options);
    this.name = 'WispError';
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  toData(): WispErrorData {
    return this.retryAfterSeconds === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, retryAfterSeconds: this.retryAfterSeconds };
  }

  static fromData(data: WispErrorData): WispError {
    return new WispError(data.code, data.message, data.retryAfterSeconds === undefined ? undefined : { retryAfterSeconds: data.retryAfterSeconds });
  }
}

export function isWispError(value: unknown): value is WispError {
  return value instanceof WispError;
}
