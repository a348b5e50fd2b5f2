// Test helpers for the Workload API's concatenated-DER fields, using node:crypto as the independent parser.
import { X509Certificate } from 'node:crypto';

/** Splits concatenated DER certificates (each a SEQUENCE with a definite length) into single DER blobs. */
export function splitDer(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes[offset] !== 0x30) throw new Error(`expected a DER SEQUENCE at offset ${offset}`);
    let length = bytes[offset + 1]!;
    let header = 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + bytes[offset + 2 + i]!;
      header = 2 + n;
    }
    out.push(bytes.subarray(offset, offset + header + length));
    offset += header + length;
  }
  return out;
}

export function certsOf(concatenatedDer: Uint8Array): X509Certificate[] {
  return splitDer(concatenatedDer).map((der) => new X509Certificate(Buffer.from(der)));
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** The URI SANs of a certificate, as node:crypto reports them. */
export function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}
