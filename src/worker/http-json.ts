/**
 * Reading request bodies safely: content type, a byte limit enforced while streaming, and JSON syntax.
 * Every route reads its body through `readJsonBody`, so these checks exist once.
 * @module
 */
import type { Context } from 'hono';
import { concatBytes } from '../shared/encoding/bytes.js';
import { WispError } from '../shared/errors.js';

/** Default body limit for API requests. */
export const MAX_JSON_BODY_BYTES = 64 * 1024;

/**
 * Reads at most `maxBytes` of a request's (or a fetched response's) body, failing with 413 as soon as the
 * limit is passed; `what` names the body in that error.
 */
export async function readBodyBytes(req: Request | Response, maxBytes: number, what = 'request body'): Promise<Uint8Array> {
  const declared = req.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    throw new WispError('ERR_REQUEST_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
  }
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new WispError('ERR_REQUEST_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

/** Parses the raw body as JSON after the content-type check. */
export function parseJsonBytes(contentType: string | null, bytes: Uint8Array): unknown {
  if (!contentType || !/^application\/json\s*(;|$)/i.test(contentType)) {
    throw new WispError('ERR_UNSUPPORTED_MEDIA_TYPE', 'content-type must be application/json');
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new WispError('ERR_BAD_REQUEST', 'request body is not valid JSON');
  }
}

/** Reads and parses a JSON body (content type, size, syntax). The result is untrusted `unknown`. */
export async function readJsonBody(c: Context, maxBytes = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const bytes = await readBodyBytes(c.req.raw, maxBytes);
  return parseJsonBytes(c.req.header('content-type') ?? null, bytes);
}

/** Requires a JSON object (not an array or a primitive). */
export function asObject(value: unknown, what = 'request body'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WispError('ERR_BAD_REQUEST', `${what} must be a JSON object`);
  }
  return value as Record<string, unknown>;
}
