/**
 * x509pop node attestation, runtime-agnostic part (SPIRE's x509pop, external_pki mode): a machine with a
 * certificate from an existing device PKI proves it holds the certificate's key. SPIRE does this in one
 * gRPC stream (server nonce, agent signature over its own nonce and the server's); Wisp's attestation is
 * one POST, so the issuer hands out a single-use nonce first (`POST /agent/v1/attest/challenge`) and the
 * agent signs, with the certificate's key, the nonce together with the SHA-256 of its CSR's public key
 * (x509popSignedMessage). The proof is good once (the nonce is consumed), shortly (it expires), and only
 * for the agent SVID key of that CSR. The agent ID and selectors are SPIRE's, from the verified leaf.
 * @module
 */
import 'reflect-metadata';
import { KeyUsageFlags, KeyUsagesExtension, SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';
import { normalizeSerialNumber } from '../agent-proof.js';
import { decodeBase64, decodeBase64Url, toBase64 } from '../encoding/base64.js';
import { bytesEqual, concatBytes } from '../encoding/bytes.js';
import { WispError } from '../errors.js';
import type { CryptoKey } from 'jose';
import type { Selector } from '../registry/selectors.js';
import type { SpiffeId, TrustDomain } from '../spiffe/id.js';
import { toHex } from '../spiffe/x509.js';
import { validateX509Path } from '../spiffe/x509-path.js';
import { renderAgentId, type AgentPathTemplate } from './agent-path-template.js';

export const X509POP_TYPE = 'x509pop';
/** SPIRE's nonce length, bytes. */
export const X509POP_NONCE_BYTES = 32;
/** How long an issued nonce may be used, seconds (the agent signs it right away). */
export const X509POP_NONCE_TTL_SECONDS = 60;
/** SPIRE's `agent_path_template` default in external_pki mode (`/{{ .PluginName }}/{{ .Fingerprint }}`). */
export const X509POP_DEFAULT_PATH_TEMPLATE = '{{ .PluginName }}/{{ .Fingerprint }}';
/** The template fields SPIRE offers that apply here (not `.SVIDPathTrimmed`: no spiffe mode). */
export const X509POP_TEMPLATE_FIELDS = ['PluginName', 'Fingerprint', 'TrustDomain', 'SerialNumberHex', 'Subject.CommonName'];
/** SPIRE's defaults: `max_intermediates`, `max_rsa_key_size`. */
export const X509POP_DEFAULT_MAX_INTERMEDIATES = 4;
export const X509POP_DEFAULT_MAX_RSA_KEY_BITS = 8192;
/** Wisp's floor for RSA, as for CSRs. */
export const X509POP_MIN_RSA_KEY_BITS = 2048;

/** Domain separation: a signature over these bytes means nothing in any other protocol. */
const CONTEXT = new TextEncoder().encode('wisp x509pop proof v1\0');

export function x509popRefused(message: string): WispError {
  return new WispError('ERR_ATTESTATION_FAILED', `${X509POP_TYPE}: ${message}`);
}

/** What the agent signs: context ‖ issuer nonce (32 bytes) ‖ SHA-256(the CSR's SubjectPublicKeyInfo DER). */
export async function x509popSignedMessage(nonce: Uint8Array, csrPublicKeySpki: Uint8Array): Promise<Uint8Array> {
  const keyHash = new Uint8Array(await crypto.subtle.digest('SHA-256', csrPublicKeySpki.slice()));
  return concatBytes([CONTEXT, nonce, keyHash]);
}

interface ProofAlgorithm {
  importParams: { name: 'ECDSA'; namedCurve: string } | { name: 'RSA-PSS'; hash: string };
  signParams: { name: 'ECDSA'; hash: string } | { name: 'RSA-PSS'; saltLength: number };
}

/**
 * The signature scheme by the leaf's key: ECDSA P-256 with SHA-256, P-384 with SHA-384, RSA-PSS with
 * SHA-256 and a 32-byte salt (SPIRE's x509pop signs RSA with PSS/SHA-256). Anything else is refused.
 */
export function x509popAlgorithm(leaf: X509Certificate): ProofAlgorithm {
  const alg = leaf.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name === 'ECDSA' && (alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384')) {
    return { importParams: { name: 'ECDSA', namedCurve: alg.namedCurve }, signParams: { name: 'ECDSA', hash: alg.namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384' } };
  }
  if (alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS') {
    return { importParams: { name: 'RSA-PSS', hash: 'SHA-256' }, signParams: { name: 'RSA-PSS', saltLength: 32 } };
  }
  throw x509popRefused(`certificate key ${alg.name ?? 'of unknown type'}${alg.namedCurve ? ` ${alg.namedCurve}` : ''} is not supported (ECDSA P-256/P-384 or RSA)`);
}

/** Agent side: imports the certificate's private key (PKCS#8 DER) for the leaf's scheme. */
export async function importX509popKey(pkcs8: Uint8Array, leaf: X509Certificate): Promise<CryptoKey> {
  return crypto.subtle.importKey('pkcs8', pkcs8.slice(), x509popAlgorithm(leaf).importParams, false, ['sign']);
}

/** Agent side: the proof's signature (base64) over the nonce (base64url, as issued) and the CSR's key. */
export async function signX509popProof(key: CryptoKey, leaf: X509Certificate, nonce: string, csrPublicKeySpki: Uint8Array): Promise<string> {
  const n = decodeBase64Url(nonce);
  if (!n || n.length !== X509POP_NONCE_BYTES) throw new WispError('ERR_UNAVAILABLE', 'x509pop: the issuer sent no valid challenge nonce');
  const message = await x509popSignedMessage(n, csrPublicKeySpki);
  return toBase64(new Uint8Array(await crypto.subtle.sign(x509popAlgorithm(leaf).signParams, key, message)));
}

export interface X509popPayload {
  /** leaf first, then intermediates in order */
  chain: X509Certificate[];
  /** base64url, as the issuer issued it */
  nonce: string;
  signature: Uint8Array;
}

/** `{ certificates: [base64 DER, leaf first], nonce, signature }`; shape errors are ERR_BAD_REQUEST. */
export function parseX509popPayload(payload: Record<string, unknown>, maxIntermediates: number): X509popPayload {
  const bad = (m: string) => new WispError('ERR_BAD_REQUEST', `x509pop payload ${m}`);
  const { certificates, nonce, signature } = payload;
  if (!Array.isArray(certificates) || certificates.length === 0) throw bad('must have certificates, a non-empty array of base64 DER certificates (leaf first)');
  if (certificates.length - 1 > maxIntermediates) throw x509popRefused(`too many intermediate certificates (at most ${maxIntermediates})`);
  const chain = certificates.map((c, i) => {
    const der = typeof c === 'string' ? decodeBase64(c) : undefined;
    if (!der) throw bad(`certificates[${i}] must be base64 DER`);
    try {
      return new X509Certificate(der.slice());
    } catch {
      throw bad(`certificates[${i}] is not a DER certificate`);
    }
  });
  const n = typeof nonce === 'string' ? decodeBase64Url(nonce) : undefined;
  if (!n || n.length !== X509POP_NONCE_BYTES) throw bad('must have nonce, the base64url nonce from POST /agent/v1/attest/challenge');
  const sig = typeof signature === 'string' ? decodeBase64(signature) : undefined;
  if (!sig || sig.length === 0 || sig.length > 1100) throw bad('must have signature, base64');
  return { chain, nonce: nonce as string, signature: sig };
}

export interface X509popVerifyOptions {
  /** the configured CA bundles: trust anchors */
  roots: readonly X509Certificate[];
  /** ms since the epoch */
  now: number;
  csrPublicKeySpki: Uint8Array;
  maxRsaKeyBits: number;
}

function rsaBits(cert: X509Certificate): number | undefined {
  const alg = cert.publicKey.algorithm as { name?: string; modulusLength?: number };
  return alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS' ? alg.modulusLength : undefined;
}

/**
 * Verifies the proof: RSA sizes, `digitalSignature` on the leaf (SPIRE requires it), the path to a
 * configured CA (every certificate valid now; RFC 5280 CA rules), then the signature by the leaf's key.
 * Returns the certificates above the leaf up to and including the anchor (for `ca:fingerprint`).
 */
export async function verifyX509popProof(p: X509popPayload, options: X509popVerifyOptions): Promise<X509Certificate[]> {
  for (const [i, cert] of p.chain.entries()) {
    const bits = rsaBits(cert);
    if (bits !== undefined && (bits > options.maxRsaKeyBits || bits < X509POP_MIN_RSA_KEY_BITS)) {
      throw x509popRefused(`certificate ${i} has an RSA key of ${bits} bits (allowed: ${X509POP_MIN_RSA_KEY_BITS} to ${options.maxRsaKeyBits})`);
    }
  }
  const leaf = p.chain[0]!;
  const ku = leaf.getExtension(KeyUsagesExtension);
  if (!ku || !(ku.usages & KeyUsageFlags.digitalSignature)) throw x509popRefused('certificate not intended for digital signature use (keyUsage lacks digitalSignature)');
  const path = await validateX509Path(p.chain, { now: options.now, roots: options.roots, profile: 'pki' });
  if (!path.ok) throw x509popRefused(`certificate verification failed: ${path.error}`);
  const { importParams, signParams } = x509popAlgorithm(leaf);
  let valid: boolean;
  try {
    const key = await crypto.subtle.importKey('spki', new Uint8Array(leaf.publicKey.rawData), importParams, false, ['verify']);
    const message = await x509popSignedMessage(decodeBase64Url(p.nonce)!, options.csrPublicKeySpki);
    valid = await crypto.subtle.verify(signParams, key, p.signature.slice(), message);
  } catch {
    valid = false;
  }
  if (!valid) throw x509popRefused('challenge response verification failed: the signature is not by the certificate\'s key over this nonce and CSR');
  const above = p.chain.slice(1);
  const anchor = path.value!;
  const top = above[above.length - 1];
  // the chain may already end with the anchor itself
  return top && bytesEqual(new Uint8Array(top.rawData), new Uint8Array(anchor.rawData)) ? above : [...above, anchor];
}

/** SPIRE's fingerprint: lowercase hex SHA-1 of the certificate's DER. */
export async function x509popFingerprint(cert: X509Certificate): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-1', cert.rawData)));
}

/** SPIRE's SerialNumberHex: lowercase hex, even length. */
export function x509popSerialHex(cert: X509Certificate): string {
  const hex = normalizeSerialNumber(cert.serialNumber);
  return hex.length % 2 === 1 ? `0${hex}` : hex;
}

/** The leaf's `x509pop://<td>/<key>/<value>` URI SANs as key → value (SPIRE: the last of a key wins). */
export function x509popSanSelectors(td: TrustDomain, leaf: X509Certificate): Map<string, string> {
  const out = new Map<string, string>();
  const names = leaf.getExtension(SubjectAlternativeNameExtension)?.names.items ?? [];
  const prefix = `x509pop://${td}/`;
  for (const n of names) {
    if (n.type !== 'url' || !n.value.startsWith(prefix)) continue;
    let path: string;
    try {
      path = decodeURIComponent(new URL(n.value).pathname).replace(/^\/+|\/+$/g, '');
    } catch {
      continue;
    }
    const slash = path.indexOf('/');
    if (slash > 0) out.set(path.slice(0, slash), path.slice(slash + 1));
  }
  return out;
}

/** `spiffe://<td>/spire/agent/<template>`, by default `.../x509pop/<fingerprint>`. */
export async function x509popAgentId(td: TrustDomain, template: AgentPathTemplate, leaf: X509Certificate): Promise<SpiffeId> {
  return renderAgentId(td, template, {
    PluginName: X509POP_TYPE,
    Fingerprint: await x509popFingerprint(leaf),
    TrustDomain: td,
    SerialNumberHex: x509popSerialHex(leaf),
    'Subject.CommonName': leaf.subjectName.getField('CN')[0] ?? '',
  });
}

/** SPIRE's selectors: `subject:cn`, `ca:fingerprint` per certificate above the leaf, `serialnumber`, `san:<key>:<value>`. */
export async function x509popSelectors(td: TrustDomain, leaf: X509Certificate, above: readonly X509Certificate[]): Promise<Selector[]> {
  const values: string[] = [];
  const cn = leaf.subjectName.getField('CN')[0];
  if (cn) values.push(`subject:cn:${cn}`);
  const seen = new Set<string>();
  for (const cert of above) {
    const fp = await x509popFingerprint(cert);
    if (!seen.has(fp)) values.push(`ca:fingerprint:${fp}`);
    seen.add(fp);
  }
  values.push(`serialnumber:${x509popSerialHex(leaf)}`);
  for (const [k, v] of x509popSanSelectors(td, leaf)) values.push(`san:${k}:${v}`);
  return values.map((value) => ({ type: X509POP_TYPE, value }));
}
