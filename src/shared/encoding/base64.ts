/**
 * The one base64 codec (RFC 4648 §4 standard with padding, §5 base64url without padding), Web APIs only,
 * for every part: issuer, CA, agent and CLI. Table codecs into and out of ASCII bytes: on the issuance
 * path they run for every certificate and CSR, where building a binary string for btoa / atob cost ~20 µs
 * per SVID (bench/). On Node, Buffer's native codec is faster still (~0.4 µs vs ~2.6 µs for 700 bytes),
 * but the agent encodes only once per CSR and decodes once per received certificate, next to a key
 * generation and a signature, so one implementation is worth more than the microseconds.
 * @module
 */
import { WispError, type WispErrorCode } from '../errors.js';

const BASE64_CODES = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const BASE64URL_CODES = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_');
const ASCII = new TextDecoder();

/** Standard base64 (with padding) of bytes. */
export function toBase64(bytes: Uint8Array | ArrayBuffer): string {
  return encodeBase64(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes), BASE64_CODES, true);
}

/** base64url without padding (RFC 4648 §5, as JWS uses it). */
export function toBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes, BASE64URL_CODES, false);
}

function encodeBase64(v: Uint8Array, c: Uint8Array, pad: boolean): string {
  const out = new Uint8Array(Math.ceil(v.length / 3) * 4);
  let i = 0;
  let o = 0;
  for (; i + 2 < v.length; i += 3) {
    const n = (v[i]! << 16) | (v[i + 1]! << 8) | v[i + 2]!;
    out[o++] = c[n >> 18]!;
    out[o++] = c[(n >> 12) & 63]!;
    out[o++] = c[(n >> 6) & 63]!;
    out[o++] = c[n & 63]!;
  }
  if (i < v.length) {
    const n = (v[i]! << 16) | ((v[i + 1] ?? 0) << 8);
    out[o++] = c[n >> 18]!;
    out[o++] = c[(n >> 12) & 63]!;
    if (i + 1 < v.length) out[o++] = c[(n >> 6) & 63]!;
    else if (pad) out[o++] = 61;
    if (pad) out[o++] = 61;
  }
  return ASCII.decode(out.subarray(0, o));
}

/** base64 character code → 6-bit value, 255 for anything else. */
const valuesOf = (codes: Uint8Array): Uint8Array => {
  const t = new Uint8Array(128).fill(255);
  for (let i = 0; i < codes.length; i++) t[codes[i]!] = i;
  return t;
};
const BASE64_VALUES = valuesOf(BASE64_CODES);
const BASE64URL_VALUES = valuesOf(BASE64URL_CODES);

/**
 * Decodes standard base64 with padding; undefined for anything else. Accepts exactly what a
 * `^[A-Za-z0-9+/]*={0,2}$`-plus-length check followed by atob accepts (no whitespace, no missing padding;
 * the unused low bits of the last group are ignored, as atob does; tested against atob).
 */
export function decodeBase64(input: string): Uint8Array | undefined {
  const length = input.length;
  if (length % 4 !== 0) return undefined;
  let pad = 0;
  if (length > 0 && input.charCodeAt(length - 1) === 61) pad = length > 1 && input.charCodeAt(length - 2) === 61 ? 2 : 1;
  return decodeGroups(input, length - pad, BASE64_VALUES);
}

/** Decodes base64url without padding (RFC 4648 §5, as JWS and page tokens use it); undefined for anything else. */
export function decodeBase64Url(input: string): Uint8Array | undefined {
  return input.length % 4 === 1 ? undefined : decodeGroups(input, input.length, BASE64URL_VALUES);
}

/** Decodes the first `chars` characters (whole groups, then a last group of 2 or 3 characters). */
function decodeGroups(input: string, chars: number, values: Uint8Array): Uint8Array | undefined {
  const rest = chars % 4;
  const out = new Uint8Array(((chars - rest) / 4) * 3 + (rest === 0 ? 0 : rest - 1));
  let o = 0;
  let i = 0;
  for (; i + 4 <= chars; i += 4) {
    const a = input.charCodeAt(i);
    const b = input.charCodeAt(i + 1);
    const c = input.charCodeAt(i + 2);
    const d = input.charCodeAt(i + 3);
    const va = a < 128 ? values[a]! : 255;
    const vb = b < 128 ? values[b]! : 255;
    const vc = c < 128 ? values[c]! : 255;
    const vd = d < 128 ? values[d]! : 255;
    if ((va | vb | vc | vd) > 63) return undefined;
    const n = (va << 18) | (vb << 12) | (vc << 6) | vd;
    out[o++] = n >> 16;
    out[o++] = (n >> 8) & 0xff;
    out[o++] = n & 0xff;
  }
  if (rest === 1) return undefined;
  if (rest > 0) {
    let n = 0;
    for (let k = 0; k < rest; k++) {
      const ch = input.charCodeAt(i + k);
      const v = ch < 128 ? values[ch]! : 255;
      if (v > 63) return undefined;
      n |= v << (18 - 6 * k);
    }
    out[o] = n >> 16;
    if (rest === 3) out[o + 1] = (n >> 8) & 0xff;
  }
  return out;
}

/** `decodeBase64`, throwing WispError `code` ("<what> is not base64") on anything that is not base64. */
export function fromBase64(input: string, code: WispErrorCode = 'ERR_BAD_REQUEST', what = 'value'): Uint8Array {
  const out = decodeBase64(input);
  if (!out) throw new WispError(code, `${what} is not base64`);
  return out;
}
