/**
 * SVID signing certificates (X509-SVID.md §3, §4): creating the trust domain's CA certificate (self-signed
 * root, or an intermediate signed by an upstream CA) and checking that a certificate may sign SVIDs.
 * @module
 */
import 'reflect-metadata';
import {
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  AuthorityKeyIdentifierExtension,
} from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import type { WispErrorData } from '../errors.js';
import { err, ok, type Result } from '../result.js';
import { parseSpiffeId, pathOf, trustDomainId, type TrustDomain } from './id.js';
import { authorityKeyIdentifierOf, randomSerialNumber, signCertificate, toHex, type SigningCa } from './x509.js';

export interface CaCertificateParams {
  trustDomain: TrustDomain;
  /** RFC 4514 subject, e.g. `O=Wisp,CN=Wisp CA` */
  subject: string;
  /** DER SubjectPublicKeyInfo of the new CA key */
  publicKeySpki: Uint8Array;
  /** ms since the epoch */
  now: number;
  /** ms since the epoch; capped at the upstream CA's notAfter */
  notAfter: number;
}

/**
 * Creates the trust domain's CA certificate: cA=true (critical), keyUsage keyCertSign+cRLSign (critical),
 * URI SAN `spiffe://<td>` (X509-SVID.md §3: signing certificates carry a path-less SPIFFE ID), SKID/AKID.
 * Self-signed with `selfKey` when `upstream` is omitted; otherwise an intermediate signed by `upstream`.
 */
export async function createCaCertificate(p: CaCertificateParams, signer: { selfKey: CryptoKey; signAlgorithm: SigningCa['signAlgorithm'] } | { upstream: SigningCa }): Promise<Uint8Array> {
  const subject = new Name(p.subject);
  const upstream = 'upstream' in signer ? signer.upstream : undefined;
  const notAfter = upstream ? Math.min(p.notAfter, upstream.cert.notAfter.getTime()) : p.notAfter;
  const skid = await SubjectKeyIdentifierExtension.create(p.publicKeySpki.slice());
  const extensions = [
    new BasicConstraintsExtension(true, undefined, true),
    new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
    new SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(p.trustDomain) }], false),
    skid,
    upstream ? await authorityKeyIdentifierOf(upstream.cert) : new AuthorityKeyIdentifierExtension(skid.keyId, false),
  ];
  if (notAfter <= p.now) throw new TypeError('the upstream CA has expired');
  const template = {
    serialNumberHex: toHex(randomSerialNumber()),
    subject,
    issuer: upstream ? upstream.cert.subjectName : subject,
    notBefore: new Date(p.now),
    notAfter: new Date(notAfter),
    publicKeySpki: p.publicKeySpki,
    extensions,
  };
  if ('upstream' in signer) return signCertificate(template, signer.upstream.privateKey, signer.upstream.signAlgorithm);
  return signCertificate(template, signer.selfKey, signer.signAlgorithm);
}

/** Why `cert` cannot sign SVIDs (X509-SVID.md §4.1, §4.3), or undefined: cA=true, keyUsage keyCertSign, critical. */
export function validateSigningCert(cert: X509Certificate): string | undefined {
  const bc = cert.getExtension(BasicConstraintsExtension);
  if (!bc || !bc.ca) return 'basicConstraints cA is not true';
  const ku = cert.getExtension(KeyUsagesExtension);
  if (!ku) return 'no keyUsage extension';
  if (!ku.critical) return 'keyUsage is not critical';
  if (!(ku.usages & KeyUsageFlags.keyCertSign)) return 'keyUsage lacks keyCertSign';
  const san = cert.getExtension(SubjectAlternativeNameExtension);
  const uris = san ? san.names.items.filter((n) => n.type === 'url') : [];
  if (uris.length > 1) return 'more than one URI SAN';
  if (uris.length === 1) {
    try {
      if (pathOf(parseSpiffeId(uris[0]!.value)) !== '') return 'SPIFFE ID of a signing certificate has a path';
    } catch {
      return 'URI SAN is not a SPIFFE ID';
    }
  }
  return undefined;
}

/**
 * Validates one of our CA certificates: a signing certificate whose only URI SAN is `spiffe://<td>`, valid
 * at `now`. Error code ERR_INTERNAL (a bad CA certificate is our bug or a bad upstream config).
 */
export function validateCaCert(der: Uint8Array, options: { trustDomain: TrustDomain; now: number }): Result<{ notAfter: number }> {
  const fail = (message: string): Result<never, WispErrorData> => err({ code: 'ERR_INTERNAL', message: `CA certificate rejected: ${message}` });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der.slice());
  } catch {
    return fail('not a DER certificate');
  }
  const problem = validateSigningCert(cert);
  if (problem) return fail(problem);
  const uris = cert.getExtension(SubjectAlternativeNameExtension)?.names.items.filter((n) => n.type === 'url') ?? [];
  if (uris.length !== 1 || uris[0]!.value !== trustDomainId(options.trustDomain)) return fail(`URI SAN must be ${trustDomainId(options.trustDomain)}`);
  if (options.now < cert.notBefore.getTime() || options.now > cert.notAfter.getTime()) return fail('not valid at this time');
  return ok({ notAfter: cert.notAfter.getTime() });
}
