/**
 * How the agent and the CLI read an issuer's answer, written once: the body is JSON or nothing, and an
 * error answer carries `{"error":{"code","message"}}` (src/worker/http-json.ts writes it). When it does not
 * (a proxy's HTML page, a crash), the HTTP status picks the code.
 * @module
 */
import { ERROR_STATUS } from '../shared/error-status.js';
import type { WispErrorCode } from '../shared/errors.js';

/** The body as JSON; undefined when it is empty or not JSON. */
export function parseJsonBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isKnownCode(code: unknown): code is WispErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}

/** Fallback codes for error answers that carry no Wisp error JSON: 502/503/504 are the way there, other 5xx the issuer itself. */
export function codeForStatus(status: number): WispErrorCode {
  if (status === 401) return 'ERR_UNAUTHENTICATED';
  if (status === 403) return 'ERR_PERMISSION_DENIED';
  if (status === 404) return 'ERR_NOT_FOUND';
  if (status === 413) return 'ERR_REQUEST_TOO_LARGE';
  if (status >= 500) return status === 502 || status === 503 || status === 504 ? 'ERR_UNAVAILABLE' : 'ERR_INTERNAL';
  return 'ERR_BAD_REQUEST';
}

/**
 * An error answer's code (the issuer's when it is one of ours, else from the status) and the issuer's
 * message, if it sent one.
 * @example issuerError(403, { error: { code: 'ERR_PERMISSION_DENIED', message: 'not an admin' } })
 */
export function issuerError(status: number, json: unknown): { code: WispErrorCode; message: string | undefined } {
  const error = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  return {
    code: isKnownCode(error?.code) ? error.code : codeForStatus(status),
    message: typeof error?.message === 'string' ? error.message : undefined,
  };
}
