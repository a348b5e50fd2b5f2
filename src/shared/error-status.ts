/**
 * One table maps every error code to its HTTP status and gRPC code, so the same failure gets the same
 * status on the issuer and on the agent (SPIRE's MakeErr, oauth-provider's emaErrorToWire).
 * @module
 */
import type { WispErrorCode } from './errors.js';

export type GrpcCodeName =
  | 'InvalidArgument'
  | 'PermissionDenied'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Unavailable'
  | 'Unauthenticated'
  | 'ResourceExhausted'
  | 'Unimplemented'
  | 'Internal';

export const ERROR_STATUS = {
  ERR_BAD_REQUEST: { http: 400, grpc: 'InvalidArgument' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: 'InvalidArgument' },
  ERR_REQUEST_TOO_LARGE: { http: 413, grpc: 'ResourceExhausted' },
  ERR_SPIFFE_ID_INVALID: { http: 400, grpc: 'InvalidArgument' },
  ERR_TRUST_DOMAIN_MISMATCH: { http: 400, grpc: 'InvalidArgument' },
  ERR_SELECTOR_INVALID: { http: 400, grpc: 'InvalidArgument' },
  ERR_ENTRY_INVALID: { http: 400, grpc: 'InvalidArgument' },
  ERR_ENTRY_EXISTS: { http: 409, grpc: 'AlreadyExists' },
  ERR_ENTRY_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_AGENT_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_FEDERATION_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_FEDERATION_EXISTS: { http: 409, grpc: 'AlreadyExists' },
  ERR_BUNDLE_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_BUNDLE_SEQUENCE_BACKWARDS: { http: 409, grpc: 'InvalidArgument' },
  ERR_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_METHOD_NOT_ALLOWED: { http: 405, grpc: 'Unimplemented' },
  ERR_CSR_INVALID: { http: 400, grpc: 'InvalidArgument' },
  ERR_JWT_INVALID: { http: 400, grpc: 'InvalidArgument' },
  ERR_JOIN_TOKEN_INVALID: { http: 401, grpc: 'Unauthenticated' },
  ERR_ATTESTATION_FAILED: { http: 401, grpc: 'Unauthenticated' },
  ERR_AGENT_ALREADY_ATTESTED: { http: 409, grpc: 'PermissionDenied' },
  ERR_UNAUTHENTICATED: { http: 401, grpc: 'Unauthenticated' },
  ERR_AGENT_AUTH_FAILED: { http: 401, grpc: 'Unauthenticated' },
  ERR_PERMISSION_DENIED: { http: 403, grpc: 'PermissionDenied' },
  ERR_AGENT_BANNED: { http: 403, grpc: 'PermissionDenied' },
  ERR_SVID_REVOKED: { http: 401, grpc: 'Unauthenticated' },
  ERR_NO_IDENTITY: { http: 403, grpc: 'PermissionDenied' },
  ERR_RATE_LIMITED: { http: 429, grpc: 'ResourceExhausted' },
  ERR_CA_NOT_READY: { http: 503, grpc: 'Unavailable' },
  ERR_AUTHORITY_NOT_FOUND: { http: 404, grpc: 'NotFound' },
  ERR_AUTHORITY_STATE: { http: 409, grpc: 'InvalidArgument' },
  ERR_UNAVAILABLE: { http: 503, grpc: 'Unavailable' },
  ERR_UNIMPLEMENTED: { http: 501, grpc: 'Unimplemented' },
  ERR_CONFIG_INVALID: { http: 500, grpc: 'Internal' },
  ERR_INTERNAL: { http: 500, grpc: 'Internal' },
} as const satisfies Record<WispErrorCode, { http: number; grpc: GrpcCodeName }>;

export function httpStatusOf(code: WispErrorCode): number {
  return ERROR_STATUS[code].http;
}

export function grpcCodeOf(code: WispErrorCode): GrpcCodeName {
  return ERROR_STATUS[code].grpc;
}
