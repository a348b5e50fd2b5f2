/**
 * A minimal DER reader and writer for the hot paths of issuance (x509-svid-template.ts, csr.ts):
 * tag-length-value encoding of definite lengths, and a strict reader that refuses indefinite or non-minimal
 * lengths and trailing bytes. Everything else (general ASN.1) stays with @peculiar/x509.
 * @module
 */
import { concatBytes } from '../encoding/bytes.js';

/** DER length octets of `n`. */
export function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0x81, n);
  if (n < 0x10000) return Uint8Array.of(0x82, n >> 8, n & 0xff);
  if (n < 0x1000000) return Uint8Array.of(0x83, n >> 16, (n >> 8) & 0xff, n & 0xff);
  throw new RangeError('DER value too long');
}

/** One DER element: tag, length, then the contents (the concatenation of `parts`). */
export function derTlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  return concatBytes([Uint8Array.of(tag), derLength(size), ...parts]);
}

/** DER INTEGER of an unsigned big-endian magnitude (leading zeros stripped, 0x00 added when the high bit is set). */
export function derUnsignedInteger(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m.length > 0 && m[0]! & 0x80 ? derTlv(0x02, Uint8Array.of(0), m) : derTlv(0x02, m.length ? m : Uint8Array.of(0));
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** The last few encoded times: a batch of SVIDs shares its notBefore / notAfter (same clock reading and TTL). */
const recentTimes = new Map<number, Uint8Array>();

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, `Z`. */
export function derTime(ms: number): Uint8Array {
  const seconds = Math.floor(ms / 1000);
  const cached = recentTimes.get(seconds);
  if (cached) return cached.slice();
  const encoded = encodeDerTime(ms);
  if (recentTimes.size >= 8) recentTimes.delete(recentTimes.keys().next().value!);
  recentTimes.set(seconds, encoded);
  return encoded.slice();
}

function encodeDerTime(ms: number): Uint8Array {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return derTlv(0x17, ascii(`${pad2(y % 100)}${rest}`));
  return derTlv(0x18, ascii(`${String(y).padStart(4, '0')}${rest}`));
}

/** Bytes of an ASCII string (callers check the characters). */
export function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0x7f;
  return out;
}

/** One element read from DER: its tag and where its header and contents lie in the input. */
export interface DerElement {
  tag: number;
  /** offset of the tag byte */
  start: number;
  /** offset of the first contents byte */
  contentStart: number;
  /** offset just past the contents */
  end: number;
}

/** Reads the element at `at`; throws RangeError on anything that is not strict DER or runs past `limit`. */
export function readDer(bytes: Uint8Array, at: number, limit = bytes.length): DerElement {
  if (at + 2 > limit) throw new RangeError('DER: truncated header');
  const tag = bytes[at]!;
  if ((tag & 0x1f) === 0x1f) throw new RangeError('DER: multi-byte tags are not supported');
  let len = bytes[at + 1]!;
  let contentStart = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3) throw new RangeError('DER: unsupported length');
    if (contentStart + n > limit) throw new RangeError('DER: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = (len << 8) | bytes[contentStart + i]!;
    if (len < 0x80 || (n > 1 && bytes[contentStart] === 0)) throw new RangeError('DER: non-minimal length');
    contentStart += n;
  }
  const end = contentStart + len;
  if (end > limit) throw new RangeError('DER: truncated contents');
  return { tag, start: at, contentStart, end };
}

/** The elements directly inside a constructed element, in order; throws RangeError on trailing garbage. */
export function readChildren(bytes: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = [];
  let at = parent.contentStart;
  while (at < parent.end) {
    const el = readDer(bytes, at, parent.end);
    out.push(el);
    at = el.end;
  }
  return out;
}

/** Reads a whole DER value that must be exactly one element with `tag`. */
export function readWhole(bytes: Uint8Array, tag: number): DerElement {
  const el = readDer(bytes, 0);
  if (el.tag !== tag || el.end !== bytes.length) throw new RangeError('DER: unexpected structure');
  return el;
}

/** Contents of an element. */
export const contentsOf = (bytes: Uint8Array, el: DerElement): Uint8Array => bytes.subarray(el.contentStart, el.end);

/** Whole encoding of an element (tag, length, contents). */
export const encodingOf = (bytes: Uint8Array, el: DerElement): Uint8Array => bytes.subarray(el.start, el.end);

/** Size of a DER element with `n` contents octets (tag, length octets, contents). */
export function tlvSize(n: number): number {
  return n + (n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : 5);
}

/** Writes a DER tag and length at `at`; returns where the contents start. Same length octets as derLength. */
export function putDerHeader(out: Uint8Array, at: number, tag: number, n: number): number {
  out[at++] = tag;
  if (n < 0x80) {
    out[at++] = n;
  } else if (n < 0x100) {
    out[at++] = 0x81;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = 0x82;
    out[at++] = n >> 8;
    out[at++] = n & 0xff;
  } else if (n < 0x1000000) {
    out[at++] = 0x83;
    out[at++] = n >> 16;
    out[at++] = (n >> 8) & 0xff;
    out[at++] = n & 0xff;
  } else {
    throw new RangeError('DER value too long');
  }
  return at;
}

/** An unsigned big-endian magnitude in `b[from, to)` made minimal (derUnsignedInteger's rule): where it starts and its 0x00 sign pad. */
function integerExtent(b: Uint8Array, from: number, to: number): { start: number; length: number; pad: number } {
  let start = from;
  while (start < to - 1 && b[start] === 0) start++;
  return { start, length: to - start, pad: b[start]! & 0x80 ? 1 : 0 };
}

const ecdsaHalves = (raw: Uint8Array) => [integerExtent(raw, 0, raw.length / 2), integerExtent(raw, raw.length / 2, raw.length)] as const;

/** Size of the DER ECDSA-Sig-Value of WebCrypto's r‖s. */
export function ecdsaDerSize(raw: Uint8Array): number {
  const [r, s] = ecdsaHalves(raw);
  return tlvSize(tlvSize(r.length + r.pad) + tlvSize(s.length + s.pad));
}

/**
 * Writes the DER ECDSA-Sig-Value (RFC 5480 §2.2.3 / RFC 3279) of WebCrypto's r‖s (IEEE P1363) at `at`, in
 * place (the issuance path writes it into the certificate); returns the offset after it.
 */
export function putEcdsaDer(out: Uint8Array, at: number, raw: Uint8Array): number {
  const [r, s] = ecdsaHalves(raw);
  at = putDerHeader(out, at, 0x30, tlvSize(r.length + r.pad) + tlvSize(s.length + s.pad));
  for (const e of [r, s]) {
    at = putDerHeader(out, at, 0x02, e.length + e.pad);
    if (e.pad) out[at++] = 0;
    out.set(raw.subarray(e.start, e.start + e.length), at);
    at += e.length;
  }
  return at;
}

/** ECDSA signature: WebCrypto's r‖s (IEEE P1363) to DER ECDSA-Sig-Value (RFC 5480 §2.2.3 / RFC 3279). */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  const der = new Uint8Array(ecdsaDerSize(raw));
  putEcdsaDer(der, 0, raw);
  return der;
}

/** ECDSA signature: DER ECDSA-Sig-Value to r‖s of `size` bytes each; throws RangeError when malformed. */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array {
  const seq = readWhole(der, 0x30);
  const [r, s, extra] = readChildren(der, seq);
  if (!r || !s || extra || r.tag !== 0x02 || s.tag !== 0x02) throw new RangeError('ECDSA signature: not a SEQUENCE of two INTEGERs');
  const out = new Uint8Array(size * 2);
  for (const [i, el] of [r, s].entries()) {
    let v = contentsOf(der, el);
    if (v.length === 0 || v[0]! & 0x80) throw new RangeError('ECDSA signature: negative or empty INTEGER');
    if (v.length > 1 && v[0] === 0 && !(v[1]! & 0x80)) throw new RangeError('ECDSA signature: non-minimal INTEGER');
    if (v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new RangeError('ECDSA signature: INTEGER too large');
    out.set(v, i * size + size - v.length);
  }
  return out;
}
