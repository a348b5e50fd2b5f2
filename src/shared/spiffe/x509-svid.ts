/**
 * The X509-SVID profile (X509-SVID.md): building a leaf SVID for a subject public key, signing it with the
 * CA key, and validating a chain against every rule of the spec. Issuance is build → sign → validate (STYLE
 * G9): the CA refuses to return an SVID that `validateX509Svid` rejects.
 * @module
 */
import 'reflect-metadata';
import {
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  PublicKey,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from '@peculiar/x509';
import type { WispErrorData } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { dnsNameProblem } from './dns-name.js';
import { parseSpiffeId, pathOf, type SpiffeId } from './id.js';
import { validateX509Path } from './x509-path.js';
import { X509_SVID_BACKDATE_MS } from './x509-svid-backdate.js';
import {
  authorityKeyIdentifierOf,
  classifyKeyAlgorithm,
  randomSerialNumber,
  signCertificate,
  toHex,
  type CertificateTemplate,
  type KeyAlgorithmInfo,
  type SigningCa,
} from './x509.js';

// defined apart so that revocation cutoffs need not load this module (x509-svid-backdate.ts)
export { X509_SVID_BACKDATE_MS };
/** Organization in the subject of leaf SVIDs (SPIRE uses O=SPIRE). */
export const X509_SVID_SUBJECT_ORGANIZATION = 'Wisp';

export interface X509SvidParams {
  spiffeId: SpiffeId;
  /** DER SubjectPublicKeyInfo of the workload's key (from a verified CSR) */
  publicKeySpki: Uint8Array;
  /** optional DNS SANs; the first is also the subject CN */
  dnsNames: readonly string[];
  ttlSeconds: number;
  /** ms since the epoch */
  now: number;
  /** 16 random bytes; generated when omitted */
  serialNumber?: Uint8Array;
}

/**
 * Builds the leaf template (X509-SVID.md §2, §4): exactly one URI SAN (the SPIFFE ID) plus the DNS SANs,
 * basicConstraints cA=false (critical), keyUsage digitalSignature (+keyEncipherment for RSA) (critical),
 * extKeyUsage serverAuth+clientAuth, SKID/AKID, notAfter capped at the CA's notAfter.
 * Throws TypeError on a caller bug (root SPIFFE ID, bad DNS name, non-positive TTL, expired CA).
 */
export async function buildX509SvidTemplate(p: X509SvidParams, ca: X509Certificate): Promise<CertificateTemplate> {
  // X509-SVID.md §2: leaf SPIFFE IDs have a non-root path.
  if (pathOf(parseSpiffeId(p.spiffeId)) === '') throw new TypeError('a leaf X509-SVID needs a SPIFFE ID with a path');
  if (!(p.ttlSeconds > 0)) throw new TypeError('ttlSeconds must be positive');
  for (const d of p.dnsNames) {
    const problem = dnsNameProblem(d);
    if (problem) throw new TypeError(problem);
  }
  const notAfter = Math.min(p.now + p.ttlSeconds * 1000, ca.notAfter.getTime());
  const notBefore = Math.max(p.now - X509_SVID_BACKDATE_MS, ca.notBefore.getTime());
  if (notAfter <= p.now) throw new TypeError('the signing CA has expired');
  const subjectKey = new PublicKey(p.publicKeySpki.slice());
  const rsa = classifyKeyAlgorithm(subjectKey.algorithm as KeyAlgorithmInfo) === 'RSA';
  const subject = new Name([{ O: [X509_SVID_SUBJECT_ORGANIZATION] }, ...(p.dnsNames[0] ? [{ CN: [p.dnsNames[0]] }] : [])]);
  const extensions: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.digitalSignature | (rsa ? KeyUsageFlags.keyEncipherment : 0), true),
    new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth], false),
    new SubjectAlternativeNameExtension([{ type: 'url', value: p.spiffeId }, ...p.dnsNames.map((value) => ({ type: 'dns' as const, value }))], false),
    await SubjectKeyIdentifierExtension.create(subjectKey),
    await authorityKeyIdentifierOf(ca),
  ];
  return {
    serialNumberHex: toHex(p.serialNumber ?? randomSerialNumber()),
    subject,
    issuer: ca.subjectName,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    publicKeySpki: p.publicKeySpki,
    extensions,
  };
}

/**
 * Builds and signs a leaf X509-SVID (does not validate it: the CA runs `validateX509Svid` on the result).
 * @example const der = await issueX509Svid({ spiffeId, publicKeySpki, dnsNames: [], ttlSeconds: 3600, now }, ca);
 */
export async function issueX509Svid(p: X509SvidParams, ca: SigningCa): Promise<Uint8Array> {
  return signCertificate(await buildX509SvidTemplate(p, ca.cert), ca.privateKey, ca.signAlgorithm);
}

export interface ValidateX509SvidOptions {
  /** ms since the epoch */
  now: number;
  /** when set, the SVID's SPIFFE ID must equal it */
  expectedId?: string;
  /** trust anchors (a bundle's X.509 authorities, DER or parsed); when set, the chain must end at one of them */
  roots?: readonly (Uint8Array | X509Certificate)[];
}

export interface ValidatedX509Svid {
  spiffeId: SpiffeId;
  /** ms since the epoch */
  notAfter: number;
  serialNumber: string;
}

function reject(message: string): Result<never, WispErrorData> {
  return err({ code: 'ERR_CSR_INVALID', message: `X509-SVID rejected: ${message}` });
}

/**
 * Validates a leaf X509-SVID chain (leaf first, then intermediates) per X509-SVID.md §5: exactly one URI SAN
 * holding a SPIFFE ID with a path; basicConstraints cA=false; keyUsage present, critical, digitalSignature
 * and neither keyCertSign nor cRLSign; extKeyUsage, if present, with serverAuth and clientAuth; URI SAN
 * critical when the subject is empty; every certificate within its validity at `now`; each certificate
 * signed by the next, intermediates being signing certificates; and, with `roots`, anchored in one of them.
 * Error code ERR_CSR_INVALID (the CA's refusal to issue); message says which rule failed.
 */
export async function validateX509Svid(chainDer: readonly Uint8Array[], options: ValidateX509SvidOptions): Promise<Result<ValidatedX509Svid>> {
  if (chainDer.length === 0) return reject('empty chain');
  let chain: X509Certificate[];
  try {
    chain = chainDer.map((d) => new X509Certificate(d.slice()));
  } catch {
    return reject('chain holds something that is not a DER certificate');
  }
  const leaf = chain[0]!;
  const san = leaf.getExtension(SubjectAlternativeNameExtension);
  const uris = san ? san.names.items.filter((n) => n.type === 'url') : [];
  // §2: exactly one URI SAN.
  if (uris.length !== 1) return reject(`leaf must have exactly one URI SAN, has ${uris.length}`);
  let spiffeId: SpiffeId;
  try {
    spiffeId = parseSpiffeId(uris[0]!.value);
  } catch (e) {
    return reject(`URI SAN is not a SPIFFE ID (${e instanceof Error ? e.message : ''})`);
  }
  // §2 / §5.2: leaf IDs have a non-root path.
  if (pathOf(spiffeId) === '') return reject('leaf SPIFFE ID has no path');
  if (options.expectedId !== undefined && spiffeId !== options.expectedId) return reject(`SPIFFE ID ${spiffeId} is not the expected ${options.expectedId}`);
  // §2: the SAN must be critical when the subject is empty.
  if (leaf.subjectName.toJSON().length === 0 && !san!.critical) return reject('subject is empty but the SAN extension is not critical');
  // §4.1: leaf cA=false.
  const bc = leaf.getExtension(BasicConstraintsExtension);
  if (!bc) return reject('leaf has no basicConstraints extension');
  if (bc.ca) return reject('leaf has basicConstraints cA=true');
  // §4.3: keyUsage set, critical, digitalSignature, no keyCertSign/cRLSign.
  const ku = leaf.getExtension(KeyUsagesExtension);
  if (!ku) return reject('leaf has no keyUsage extension');
  if (!ku.critical) return reject('leaf keyUsage is not critical');
  if (!(ku.usages & KeyUsageFlags.digitalSignature)) return reject('leaf keyUsage lacks digitalSignature');
  if (ku.usages & (KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)) return reject('leaf keyUsage sets keyCertSign or cRLSign');
  // §4.4: when present, extKeyUsage has serverAuth and clientAuth.
  const eku = leaf.getExtension(ExtendedKeyUsageExtension);
  if (eku && !(eku.usages.includes(ExtendedKeyUsage.serverAuth) && eku.usages.includes(ExtendedKeyUsage.clientAuth))) {
    return reject('leaf extKeyUsage lacks serverAuth or clientAuth');
  }
  // §5: RFC 5280 path validation: validity, signatures, issuer names, signing certificates, anchoring.
  const path = await validateX509Path(chain, { now: options.now, roots: options.roots });
  if (!path.ok) return reject(path.error);
  return ok({ spiffeId, notAfter: leaf.notAfter.getTime(), serialNumber: leaf.serialNumber });
}
