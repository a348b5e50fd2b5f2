/**
 * The one PEM armour (RFC 7468): writing a block, reading the blocks of a document, telling PEM text from
 * other text. Web APIs only (base64.ts underneath); used by the CA's upstream config, foreign bundles, AWS
 * region certificates, the agent's data dir and the CLI's output.
 * @module
 */
import { WispError } from '../errors.js';
import { decodeBase64, toBase64 } from './base64.js';

/** One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, ...) and the DER it armours. */
export interface PemBlock {
  label: string;
  der: Uint8Array;
}

/** BEGIN line, body, END line with the same label; text outside blocks (comments) is ignored. */
const PEM_BLOCK = /-----BEGIN ([^\s-](?:[^\r\n-]*[^\s-])?)-----([\s\S]*?)-----END \1-----/g;

/** PEM block of DER bytes: 64-character lines, a newline after the END line. */
export function toPem(label: string, der: Uint8Array): string {
  const body = toBase64(der).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Whether `text` starts (after whitespace) with a PEM BEGIN line. */
export function looksLikePem(text: string): boolean {
  return /^\s*-----BEGIN /.test(text);
}

/** The blocks of a PEM document, in order. Throws WispError ERR_CONFIG_INVALID when a block body is not base64. */
export function pemBlocks(pem: string, what = 'PEM'): PemBlock[] {
  return [...pem.matchAll(PEM_BLOCK)].map((m) => {
    const label = m[1]!;
    const der = decodeBase64(m[2]!.replace(/\s+/g, ''));
    if (!der) throw new WispError('ERR_CONFIG_INVALID', `${what}: PEM block ${label} is not base64`);
    return { label, der };
  });
}

/** The DER of every block labelled `label`, in order (other blocks are skipped). */
export function pemDerOf(pem: string, label: string, what = 'PEM'): Uint8Array[] {
  return pemBlocks(pem, what)
    .filter((b) => b.label === label)
    .map((b) => b.der);
}

/** The DER blocks of a PEM document of CERTIFICATE blocks, in order. Throws WispError ERR_CONFIG_INVALID. */
export function certificatesFromPem(pem: string, what = 'certificate chain'): Uint8Array[] {
  const blocks = pemBlocks(pem, what);
  if (blocks.length === 0) throw new WispError('ERR_CONFIG_INVALID', `${what}: no PEM CERTIFICATE block`);
  return blocks.map((b) => {
    if (b.label !== 'CERTIFICATE') throw new WispError('ERR_CONFIG_INVALID', `${what}: unexpected PEM block ${b.label}`);
    return b.der;
  });
}

/** The DER of a single PEM block of the given label (e.g. `PRIVATE KEY`). Throws WispError ERR_CONFIG_INVALID. */
export function derFromPem(pem: string, label: string, what: string): Uint8Array {
  const ders = pemDerOf(pem, label, what);
  if (ders.length !== 1) throw new WispError('ERR_CONFIG_INVALID', `${what}: expected exactly one PEM ${label} block`);
  return ders[0]!;
}

/**
 * DER given either as PEM (one block labelled `label`) or as bare base64 (whitespace ignored), as AWS
 * publishes region certificates and signatures. Undefined when it is neither.
 */
export function derFromPemOrBase64(text: string, label: string): Uint8Array | undefined {
  if (!looksLikePem(text)) return decodeBase64(text.replace(/\s+/g, ''));
  try {
    const ders = pemDerOf(text, label);
    return ders.length === 1 ? ders[0] : undefined;
  } catch {
    return undefined;
  }
}
