/**
 * Result values for validators and for anything crossing Durable Object RPC, where error classes are lost
 * (only name and message survive). Same shape as the Result type of Cloudflare's workers-oauth-provider.
 * @module
 */
import { WispError, type WispErrorData } from './errors.js';

export type Result<T, E = WispErrorData> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });

/** Turns a failed Result back into a thrown WispError (the one place that does so). */
export function unwrap<T>(result: Result<T, WispErrorData>): T {
  if (result.ok) return result.value;
  throw WispError.fromData(result.error);
}
