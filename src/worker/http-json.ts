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
 * How much of an oversize request body is read and thrown away before the 413 (nothing of it is kept).
 * Cancelling the body mid-upload makes wrangler dev's proxy answer its own 503 ("worker restarted
 * mid-request") or reset the connection instead of passing the 413 on (57 of 80 chunked uploads 2 MiB over
 * the limit, test/e2e/body-limits.test.ts); reading the rest lets the sender finish and get the JSON 413.
 * Bounded, so a huge upload costs at most this much reading; beyond it the body is cancelled (README, HTTP API).
 */
export const OVERSIZE_DRAIN_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Reads at most `maxBytes` of a request's (or a fetched response's) body as it streams in, never holding
 * more; past the limit it fails with 413 ERR_REQUEST_TOO_LARGE (the declared content-length is checked
 * first). `what` names the body in that error.
 */
export async function readBodyBytes(req: Request | Response, maxBytes: number, what = 'request body'): Promise<Uint8Array> {
  const tooLarge = () => new WispError('ERR_REQUEST_TOO_LARGE', `${what} is larger than ${maxBytes} bytes`);
  const declared = req.headers.get('content-length');
  const declaredBytes = declared === null ? undefined : Number(declared);
  if (declaredBytes !== undefined && declaredBytes > maxBytes) {
    if (req instanceof Request && req.body && declaredBytes - maxBytes <= OVERSIZE_DRAIN_MAX_BYTES) await drain(req.body.getReader(), -maxBytes);
    else await req.body?.cancel();
    throw tooLarge();
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
      if (req instanceof Request) await drain(reader, total - maxBytes);
      else await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

/** Reads the rest of an oversize body and drops it, up to OVERSIZE_DRAIN_MAX_BYTES past the limit, then cancels. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, over: number): Promise<void> {
  try {
    for (;;) {
      if (over > OVERSIZE_DRAIN_MAX_BYTES) {
        await reader.cancel();
        return;
      }
      const { done, value } = await reader.read();
      if (done) return;
      over += value.byteLength;
    }
  } catch {
    // the sender went away: the 413 is all that is left to do
  }
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
