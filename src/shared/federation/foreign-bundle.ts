/**
 * Foreign (federated) bundles: the trust bundles of other trust domains, as stored and served to agents.
 * Input is SPIFFE bundle JSON (parsed with the strict shared parser) or PEM certificates (X.509 authorities
 * only); `planBundleUpdate` refuses a `spiffe_sequence` that goes backwards. Pure.
 * @module
 */
import { WispError } from '../errors.js';
import { certificateKeyReader, parseBundleJson, MAX_BUNDLE_BYTES, type ParsedBundle, type SpiffeBundleJson } from '../spiffe/bundle.js';
import type { TrustDomain } from '../spiffe/id.js';
import { toBase64 } from '../encoding/base64.js';
import { certificatesFromPem, looksLikePem } from '../encoding/pem.js';
import { publicJwkOf, readCertificateKey, type CertificateKeyReader } from '../spiffe/key-algorithm.js';

/** A foreign bundle as stored. */
export interface ForeignBundle {
  trustDomain: TrustDomain;
  /** the SPIFFE bundle document */
  bundle: SpiffeBundleJson;
  /** `spiffe_sequence`, when the document has one */
  sequence?: number;
  refreshHintSeconds?: number;
  updatedAt: number;
}

export interface ParsedForeignBundle {
  bundle: SpiffeBundleJson;
  parsed: ParsedBundle;
}

/** Most keys in one foreign bundle (two CA and JWT rotations of a large deployment fit easily). */
export const FOREIGN_BUNDLE_MAX_KEYS = 256;

function malformed(trustDomain: string, message: string): WispError {
  return new WispError('ERR_BAD_REQUEST', `bundle of "${trustDomain}": ${message}`);
}

async function fromPem(pem: string, trustDomain: TrustDomain, readKey: CertificateKeyReader | undefined): Promise<SpiffeBundleJson> {
  let ders: Uint8Array[];
  try {
    ders = certificatesFromPem(pem, 'PEM bundle');
  } catch (e) {
    throw malformed(trustDomain, e instanceof Error ? e.message : 'not PEM');
  }
  const read = await certificateKeyReader(readKey);
  const keys = await Promise.all(
    ders.map(async (der, i) => {
      const certKey = readCertificateKey(read, der, 'ERR_BAD_REQUEST', `certificate ${i + 1} of the PEM bundle`);
      let jwk: Record<string, string>;
      try {
        jwk = await publicJwkOf(certKey);
      } catch {
        throw malformed(trustDomain, `certificate ${i + 1}: unsupported public key`);
      }
      return { use: 'x509-svid', ...jwk, x5c: [toBase64(der)] };
    }),
  );
  return { keys };
}

/**
 * Parses a foreign bundle given as SPIFFE JSON (an object, or text starting with `{`) or as PEM
 * certificates (text). Throws WispError ERR_BAD_REQUEST when it is malformed or holds no authority. `readKey`:
 * as for `parseBundleJson`.
 * @example const { bundle } = await parseForeignBundle(pemText, 'partner.example');
 */
export async function parseForeignBundle(input: unknown, trustDomain: TrustDomain, readKey?: CertificateKeyReader): Promise<ParsedForeignBundle> {
  let doc: unknown = input;
  if (typeof input === 'string') {
    if (input.length > MAX_BUNDLE_BYTES) throw malformed(trustDomain, `larger than ${MAX_BUNDLE_BYTES} bytes`);
    const text = input.trim();
    if (looksLikePem(text)) doc = await fromPem(text, trustDomain, readKey);
    else if (text.startsWith('{')) doc = text;
    else throw malformed(trustDomain, 'must be SPIFFE bundle JSON or PEM certificates');
  } else if (typeof input !== 'object' || input === null) {
    throw malformed(trustDomain, 'must be SPIFFE bundle JSON or PEM certificates');
  }
  const parsed = await parseBundleJson(doc, trustDomain, readKey);
  const bundle = (typeof doc === 'string' ? JSON.parse(doc) : doc) as SpiffeBundleJson;
  if (bundle.keys.length > FOREIGN_BUNDLE_MAX_KEYS) throw malformed(trustDomain, `more than ${FOREIGN_BUNDLE_MAX_KEYS} keys`);
  if (parsed.x509Authorities.length === 0 && parsed.jwtAuthorities.length === 0) throw malformed(trustDomain, 'has no X.509 or JWT authority');
  return { bundle, parsed };
}

export type BundleUpdatePlan = 'store' | 'unchanged';

/**
 * Decides whether `incoming` replaces `stored`: a lower `spiffe_sequence` than the stored one is refused
 * (ERR_BUNDLE_SEQUENCE_BACKWARDS); the same document is 'unchanged'. A bundle without a sequence (e.g. set
 * from PEM) is compared by content only.
 */
export function planBundleUpdate(stored: Pick<ForeignBundle, 'bundle' | 'sequence'> | undefined, incoming: ParsedForeignBundle): BundleUpdatePlan {
  if (!stored) return 'store';
  const seq = incoming.parsed.sequence;
  if (stored.sequence !== undefined && seq !== undefined && seq < stored.sequence) {
    throw new WispError('ERR_BUNDLE_SEQUENCE_BACKWARDS', `bundle of "${incoming.parsed.trustDomain}": spiffe_sequence ${seq} is lower than the stored ${stored.sequence}`);
  }
  return JSON.stringify(stored.bundle) === JSON.stringify(incoming.bundle) ? 'unchanged' : 'store';
}
