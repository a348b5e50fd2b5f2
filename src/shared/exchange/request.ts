/**
 * RFC 8693 token exchange on the wire: the form request (§2.1), the response (§2.2.1) and the errors in
 * RFC 6749 §5.2's shape (§2.2.2). Wisp issues a JWT-SVID for `requested_token_type=...:jwt`, or an X509-SVID
 * for `requested_token_type=urn:spiffe:token-type:x509-svid` with a `csr` (base64url DER PKCS#10); which
 * entry's SPIFFE ID it gets is decided by the registry, and `scope` may name one SPIFFE ID when several
 * entries authorize the token (docs/token-exchange.md).
 * @module
 */
import { decodeBase64, decodeBase64Url } from '../encoding/base64.js';
import { toPem } from '../encoding/pem.js';
import { parseSpiffeId, type SpiffeId } from '../spiffe/id.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
/** An X509-SVID (no registered URN exists; RFC 8693 §3 allows any URI): the answer to a request with a `csr`. */
export const TOKEN_TYPE_X509_SVID = 'urn:spiffe:token-type:x509-svid';
/** RFC 8693 §2.2.1: "N_A" when the issued token is not an OAuth access token. */
export const TOKEN_TYPE_NA = 'N_A';

export const EXCHANGE_LIMITS = {
  /** the whole form body, bytes */
  MAX_BODY_BYTES: 64 * 1024,
  /** a subject token, characters (GitHub's are ~1.5 KB, Kubernetes' ~1 KB) */
  MAX_SUBJECT_TOKEN_CHARS: 16 * 1024,
  MAX_AUDIENCES: 16,
  MAX_AUDIENCE_CHARS: 512,
} as const;

/** RFC 6749 §5.2 error codes (and RFC 6749 §4.1.2.1's temporarily_unavailable for a key server or CA that is not answering). */
export type ExchangeErrorCode = 'invalid_request' | 'invalid_grant' | 'unauthorized_client' | 'invalid_target' | 'invalid_scope' | 'unsupported_grant_type' | 'temporarily_unavailable';

/** HTTP status per code: RFC 6749 §5.2 answers 400 (401 only for invalid_client, which needs client auth Wisp does not take). */
const STATUS: Record<ExchangeErrorCode, number> = {
  invalid_request: 400,
  invalid_grant: 400,
  unauthorized_client: 400,
  invalid_target: 400,
  invalid_scope: 400,
  unsupported_grant_type: 400,
  temporarily_unavailable: 503,
};

export interface ExchangeErrorBody {
  error: ExchangeErrorCode;
  error_description: string;
}

/** A refusal of the exchange, answered in RFC 6749 §5.2's shape. */
export class ExchangeError extends Error {
  readonly error: ExchangeErrorCode;
  readonly status: number;
  constructor(error: ExchangeErrorCode, description: string, status = STATUS[error]) {
    super(description);
    this.name = 'ExchangeError';
    this.error = error;
    this.status = status;
  }
  body(): ExchangeErrorBody {
    return { error: this.error, error_description: this.message };
  }
}

export interface ExchangeRequest {
  subjectToken: string;
  subjectTokenType: typeof TOKEN_TYPE_JWT | typeof TOKEN_TYPE_ID_TOKEN;
  requestedTokenType: typeof TOKEN_TYPE_JWT | typeof TOKEN_TYPE_X509_SVID;
  /** the JWT-SVID's audience; empty for an X509-SVID */
  audience: string[];
  /** the SPIFFE ID asked for, when `scope` names one */
  spiffeId?: SpiffeId;
  /** DER PKCS#10, for an X509-SVID (not yet verified: the issuer's parseCsr does that) */
  csr?: Uint8Array;
}

export interface ExchangeResponse {
  /** the JWT-SVID, or the X509-SVID's chain in PEM (leaf first) */
  access_token: string;
  issued_token_type: typeof TOKEN_TYPE_JWT | typeof TOKEN_TYPE_X509_SVID;
  token_type: typeof TOKEN_TYPE_NA;
  expires_in: number;
  /** X509-SVID only: the chain, base64 DER, leaf first (RFC 6749 §5.1 lets a response carry more members) */
  x509_svid_chain?: string[];
  /** X509-SVID only: the trust domain's X.509 authorities, base64 DER */
  x509_bundle?: string[];
}

const bad = (description: string) => new ExchangeError('invalid_request', description);

/** RFC 6749 §3.2: "parameters MUST NOT be included more than once" (audience is RFC 8693's exception). */
function single(form: URLSearchParams, name: string): string | undefined {
  const all = form.getAll(name);
  if (all.length > 1) throw bad(`${name} is given more than once`);
  return all[0];
}

/**
 * Parses the form body (`application/x-www-form-urlencoded`, already read, at most MAX_BODY_BYTES).
 * @example parseExchangeRequest('application/x-www-form-urlencoded', 'grant_type=urn%3Aietf%3A...&subject_token=...')
 */
export function parseExchangeRequest(contentType: string | undefined, body: string): ExchangeRequest {
  if ((contentType ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
    throw bad('the request must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(body);
  const grant = single(form, 'grant_type');
  if (grant === undefined || grant === '') throw bad('grant_type is required');
  if (grant !== TOKEN_EXCHANGE_GRANT) throw new ExchangeError('unsupported_grant_type', `grant_type must be ${TOKEN_EXCHANGE_GRANT}`);
  const subjectToken = single(form, 'subject_token');
  if (!subjectToken) throw bad('subject_token is required');
  if (subjectToken.length > EXCHANGE_LIMITS.MAX_SUBJECT_TOKEN_CHARS) throw bad(`subject_token is longer than ${EXCHANGE_LIMITS.MAX_SUBJECT_TOKEN_CHARS} characters`);
  const subjectTokenType = single(form, 'subject_token_type');
  if (subjectTokenType !== TOKEN_TYPE_JWT && subjectTokenType !== TOKEN_TYPE_ID_TOKEN) throw bad(`subject_token_type must be ${TOKEN_TYPE_ID_TOKEN} or ${TOKEN_TYPE_JWT}`);
  const csrText = single(form, 'csr');
  const requested = single(form, 'requested_token_type') ?? (csrText === undefined ? TOKEN_TYPE_JWT : TOKEN_TYPE_X509_SVID);
  if (requested !== TOKEN_TYPE_JWT && requested !== TOKEN_TYPE_X509_SVID) throw bad(`requested_token_type must be ${TOKEN_TYPE_JWT} (a JWT-SVID) or ${TOKEN_TYPE_X509_SVID} (with a csr)`);
  if (single(form, 'actor_token') !== undefined) throw bad('actor_token (delegation) is not supported');
  const scope = parseScope(single(form, 'scope'));
  const base: Pick<ExchangeRequest, 'subjectToken' | 'subjectTokenType' | 'spiffeId'> = { subjectToken, subjectTokenType, ...(scope ? { spiffeId: scope } : {}) };
  if (requested === TOKEN_TYPE_X509_SVID) {
    if (csrText === undefined) throw bad(`csr is required for ${TOKEN_TYPE_X509_SVID}`);
    if (form.has('audience')) throw new ExchangeError('invalid_target', 'audience does not apply to an X509-SVID');
    return { ...base, requestedTokenType: TOKEN_TYPE_X509_SVID, audience: [], csr: decodeCsrParam(csrText) };
  }
  if (csrText !== undefined) throw bad(`csr is only for requested_token_type=${TOKEN_TYPE_X509_SVID}`);
  const audience = form.getAll('audience');
  if (audience.length === 0) throw new ExchangeError('invalid_target', 'audience is required: a JWT-SVID names who it is for');
  if (audience.length > EXCHANGE_LIMITS.MAX_AUDIENCES) throw new ExchangeError('invalid_target', `at most ${EXCHANGE_LIMITS.MAX_AUDIENCES} audiences are accepted`);
  for (const a of audience) {
    if (a.trim() === '' || a.length > EXCHANGE_LIMITS.MAX_AUDIENCE_CHARS) throw new ExchangeError('invalid_target', `each audience must be 1 to ${EXCHANGE_LIMITS.MAX_AUDIENCE_CHARS} characters`);
  }
  return { subjectToken, subjectTokenType, requestedTokenType: TOKEN_TYPE_JWT, audience: [...new Set(audience)], ...(scope ? { spiffeId: scope } : {}) };
}

function parseScope(scope: string | undefined): SpiffeId | undefined {
  if (scope === undefined) return undefined;
  try {
    return parseSpiffeId(scope);
  } catch {
    throw new ExchangeError('invalid_scope', 'scope must be one SPIFFE ID (the identity asked for)');
  }
}

/** `csr`: base64url (RFC 4648 §5, padding tolerated); its size and signature are parseCsr's (spiffe/csr.ts) to check. */
function decodeCsrParam(text: string): Uint8Array {
  const unpadded = text.replace(/={1,2}$/, '');
  const der = decodeBase64Url(unpadded);
  if (!der || der.length === 0) throw bad('csr must be base64url DER (PKCS#10)');
  return der;
}

/** The §2.2.1 response for a JWT-SVID expiring at `expiresAt` (seconds). */
export function exchangeResponse(token: string, expiresAt: number, nowSeconds: number): ExchangeResponse {
  return { access_token: token, issued_token_type: TOKEN_TYPE_JWT, token_type: TOKEN_TYPE_NA, expires_in: Math.max(0, expiresAt - nowSeconds) };
}

/** The §2.2.1 response for an X509-SVID: the chain as PEM in access_token, and as base64 DER beside the bundle. */
export function x509ExchangeResponse(certChain: string[], bundle: string[], expiresAt: number, nowSeconds: number): ExchangeResponse {
  const pem = certChain.map((b64) => toPem('CERTIFICATE', decodeBase64(b64)!)).join('');
  return { access_token: pem, issued_token_type: TOKEN_TYPE_X509_SVID, token_type: TOKEN_TYPE_NA, expires_in: Math.max(0, expiresAt - nowSeconds), x509_svid_chain: certChain, x509_bundle: bundle };
}
