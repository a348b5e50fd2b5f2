/**
 * PKCS#10 certificate signing requests from agents and workloads. A CSR proves possession of the private
 * key (its signature) and carries the public key; nothing else in it is used (SPIRE ignores the subject and
 * extensions too: the SPIFFE ID and DNS names come from registration entries).
 * @module
 */
import 'reflect-metadata';
import { Pkcs10CertificateRequest } from '@peculiar/x509';
import { bytesEqual } from '../encoding/bytes.js';
import { WispError } from '../errors.js';
import { contentsOf, ecdsaDerToRaw, encodingOf, readChildren, readDer, type DerElement } from './der.js';
import { readSubjectKey } from './x509-svid-template.js';
import { classifyKeyAlgorithm, signingParams, type KeyAlgorithmInfo, type KeyAlgorithmName } from './x509.js';

/** Largest CSR accepted, DER bytes. An RSA-4096 CSR is about 1.2 KiB. */
export const MAX_CSR_BYTES = 8 * 1024;

/** What a verified CSR yields: the subject public key, nothing else. */
export interface ParsedCsr {
  /** DER SubjectPublicKeyInfo */
  publicKeySpki: Uint8Array;
  keyAlgorithm: KeyAlgorithmName;
}

function invalid(message: string, cause?: unknown): WispError {
  return new WispError('ERR_CSR_INVALID', message, cause === undefined ? undefined : { cause });
}

/**
 * Parses a DER PKCS#10 CSR, verifies its self-signature (proof of possession) and checks the key type
 * (EC P-256 / P-384, or RSA ≥ 2048 bits). Throws WispError ERR_CSR_INVALID.
 * @example const { publicKeySpki } = await parseCsr(der);
 */
export async function parseCsr(der: Uint8Array): Promise<ParsedCsr> {
  if (!(der instanceof Uint8Array)) throw new TypeError('parseCsr expects DER bytes');
  if (der.byteLength === 0) throw invalid('CSR is empty');
  if (der.byteLength > MAX_CSR_BYTES) throw invalid(`CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const lean = readCommonCsr(der, readCsrFrame(der));
  if (lean) {
    if (!(await verifyCommonCsr(lean))) throw invalid('CSR signature does not verify with its public key (no proof of possession)');
    return { publicKeySpki: lean.spki.slice(), keyAlgorithm: lean.keyAlgorithm };
  }
  return parseCsrGeneral(der);
}

/** The elements of a CertificationRequest (RFC 2986 §4), read once for both paths. */
interface CsrFrame {
  info: DerElement;
  alg: DerElement;
  sig: DerElement;
  version: DerElement;
  spki: DerElement;
}

/**
 * The strict structural read every CSR passes first: exactly one DER element, a SEQUENCE of
 * certificationRequestInfo, signatureAlgorithm and signature, the info of version, subject, subjectPKInfo and
 * [0] attributes, nothing before, between or after (the general parser alone tolerated trailing bytes).
 */
function readCsrFrame(der: Uint8Array): CsrFrame {
  let outer: DerElement;
  try {
    outer = readDer(der, 0);
  } catch (e) {
    throw invalid('CSR is not a DER PKCS#10 certification request', e);
  }
  if (outer.tag === 0x30 && outer.end !== der.length) throw invalid(`CSR has ${der.length - outer.end} bytes after its DER encoding`);
  try {
    if (outer.tag !== 0x30) throw new RangeError('DER: not a SEQUENCE');
    const [info, alg, sig, extra] = readChildren(der, outer);
    if (!info || !alg || !sig || extra || info.tag !== 0x30 || alg.tag !== 0x30 || sig.tag !== 0x03) throw new RangeError('DER: not a CertificationRequest');
    const [version, subject, spki, attributes, more] = readChildren(der, info);
    if (!version || !subject || !spki || !attributes || more || version.tag !== 0x02 || subject.tag !== 0x30 || spki.tag !== 0x30 || attributes.tag !== 0xa0) {
      throw new RangeError('DER: not a CertificationRequestInfo');
    }
    return { info, alg, sig, version, spki };
  } catch (e) {
    throw invalid('CSR is not a DER PKCS#10 certification request', e);
  }
}

/** The general path: @peculiar/x509 parses and verifies anything PKCS#10 allows, with precise errors. */
async function parseCsrGeneral(der: Uint8Array): Promise<ParsedCsr> {
  let csr: Pkcs10CertificateRequest;
  try {
    csr = new Pkcs10CertificateRequest(der.slice());
  } catch (e) {
    throw invalid('CSR is not a DER PKCS#10 certification request', e);
  }
  let algorithm: KeyAlgorithmInfo;
  let publicKeySpki: Uint8Array;
  try {
    algorithm = csr.publicKey.algorithm as KeyAlgorithmInfo;
    publicKeySpki = new Uint8Array(csr.publicKey.rawData);
  } catch (e) {
    throw invalid('CSR public key cannot be read', e);
  }
  const keyAlgorithm = classifyKeyAlgorithm(algorithm);
  if (keyAlgorithm !== 'EC P-256' && keyAlgorithm !== 'EC P-384' && keyAlgorithm !== 'RSA') throw invalid(`CSR ${keyAlgorithm}`);
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (e) {
    throw invalid('CSR signature cannot be verified', e);
  }
  if (!verified) throw invalid('CSR signature does not verify with its public key (no proof of possession)');
  return { publicKeySpki, keyAlgorithm };
}

/** ecdsa-with-SHA256 / -SHA384 (RFC 5758 §3.2), sha256WithRSAEncryption (RFC 4055 §5): the CSRs agents and SDKs make. */
const COMMON_SIGNATURE_ALGORITHMS: Record<string, { hash: 'SHA-256' | 'SHA-384'; ecdsa: boolean }> = {
  '300a06082a8648ce3d040302': { hash: 'SHA-256', ecdsa: true },
  '300a06082a8648ce3d040303': { hash: 'SHA-384', ecdsa: true },
  '300d06092a864886f70d01010b0500': { hash: 'SHA-256', ecdsa: false },
};

const COMMON_ALGORITHM_ENCODINGS = Object.entries(COMMON_SIGNATURE_ALGORITHMS).map(([hex, a]) => ({ der: Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16)), ...a }));

/** The common signature algorithm whose AlgorithmIdentifier encoding is exactly `encoding` (compared as bytes: no hex string per CSR). */
function commonAlgorithm(encoding: Uint8Array): { hash: 'SHA-256' | 'SHA-384'; ecdsa: boolean } | undefined {
  for (const a of COMMON_ALGORITHM_ENCODINGS) {
    if (bytesEqual(a.der, encoding)) return { hash: a.hash, ecdsa: a.ecdsa };
  }
  return undefined;
}

interface CommonCsr {
  info: Uint8Array;
  spki: Uint8Array;
  keyAlgorithm: KeyAlgorithmName;
  hash: 'SHA-256' | 'SHA-384';
  ecdsa: boolean;
  signature: Uint8Array;
}

/**
 * Reads the common shape of a framed CSR without general ASN.1 decoding (which is what costs on the issuance
 * path): v1, an EC P-256/P-384 or RSA ≥ 2048 key, and one of the common signature algorithms. Anything else
 * returns undefined and goes to the general path.
 */
function readCommonCsr(der: Uint8Array, frame: CsrFrame): CommonCsr | undefined {
  try {
    const { info, alg, sig, version, spki: spkiEl } = frame;
    const algorithm = commonAlgorithm(encodingOf(der, alg));
    if (!algorithm) return undefined;
    if (version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) return undefined;
    const spki = encodingOf(der, spkiEl);
    const key = readSubjectKey(spki);
    if (typeof key === 'string' || (key.kind === 'RSA') === algorithm.ecdsa) return undefined;
    const bits = contentsOf(der, sig);
    if (bits.length < 2 || bits[0] !== 0) return undefined;
    return { info: encodingOf(der, info), spki, keyAlgorithm: key.kind, ...algorithm, signature: bits.subarray(1) };
  } catch {
    return undefined;
  }
}

async function verifyCommonCsr(csr: CommonCsr): Promise<boolean> {
  const { importAlg } = signingParams(csr.keyAlgorithm);
  try {
    // views into the CSR, not copies: WebCrypto copies what it reads
    const key = await crypto.subtle.importKey('spki', csr.spki as Uint8Array<ArrayBuffer>, csr.ecdsa ? importAlg : { name: 'RSASSA-PKCS1-v1_5', hash: csr.hash }, false, ['verify']);
    const signature = csr.ecdsa ? ecdsaDerToRaw(csr.signature, csr.keyAlgorithm === 'EC P-384' ? 48 : 32) : csr.signature;
    return await crypto.subtle.verify(csr.ecdsa ? { name: 'ECDSA', hash: csr.hash } : { name: 'RSASSA-PKCS1-v1_5' }, key, signature as Uint8Array<ArrayBuffer>, csr.info as Uint8Array<ArrayBuffer>);
  } catch {
    return false;
  }
}
