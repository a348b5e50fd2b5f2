/**
 * The one X.509 path validator (X509-SVID.md §5, RFC 5280 §6 as far as SPIFFE needs it), used by X509-SVID
 * validation (x509-svid.ts) and agent authentication (agent-proof.ts), like SPIRE's single credential
 * validator: every certificate valid at `now`; every certificate after the leaf a signing certificate;
 * each signed by the next, issuer and subject names compared by their DER; and, with roots, the last one
 * a root or signed by a root that is itself a signing certificate valid at `now`. The `pki` profile is for
 * chains from someone else's PKI (x509pop device certificates): a CA there is any certificate RFC 5280
 * §4.2.1.9/§6.1.4 allows to sign (cA true, keyCertSign if keyUsage is present, pathLenConstraint kept),
 * without the SPIFFE-only rules (critical keyUsage, no non-SPIFFE URI SAN).
 * @module
 */
import 'reflect-metadata';
import { BasicConstraintsExtension, KeyUsageFlags, KeyUsagesExtension, X509Certificate } from '@peculiar/x509';
import { bytesEqual } from '../encoding/bytes.js';
import { err, ok, type Result } from '../result.js';
import { validateSigningCert } from './ca-cert.js';

export interface ValidateX509PathOptions {
  /** ms since the epoch */
  now: number;
  /** trust anchors (DER or parsed); when set, the chain must end at one of them. Unparsable ones are skipped. */
  roots?: readonly (Uint8Array | X509Certificate)[];
  /** which certificates may sign: `spiffe` (default, ca-cert.ts validateSigningCert) or `pki` (see above) */
  profile?: 'spiffe' | 'pki';
}

/** RFC 5280 rules for a CA certificate with `below` intermediates under it in the path; undefined when it may sign. */
function pkiCaProblem(cert: X509Certificate, below: number): string | undefined {
  const bc = cert.getExtension(BasicConstraintsExtension);
  if (!bc || !bc.ca) return 'basicConstraints cA is not true';
  if (bc.pathLength !== undefined && below > bc.pathLength) return `pathLenConstraint ${bc.pathLength} allows fewer intermediates than the ${below} below it`;
  const ku = cert.getExtension(KeyUsagesExtension);
  if (ku && !(ku.usages & KeyUsageFlags.keyCertSign)) return 'keyUsage lacks keyCertSign';
  return undefined;
}

/**
 * Validates `chain` (leaf first, then intermediates, optionally ending with a root). Returns the root the
 * chain is anchored in (undefined without `roots`), or the problem: which certificate broke which rule.
 */
export async function validateX509Path(chain: readonly X509Certificate[], options: ValidateX509PathOptions): Promise<Result<X509Certificate | undefined, string>> {
  if (chain.length === 0) return err('empty chain');
  const validAt = (cert: X509Certificate) => cert.notBefore.getTime() <= options.now && options.now <= cert.notAfter.getTime();
  const caProblem = (cert: X509Certificate, position: number) => (options.profile === 'pki' ? pkiCaProblem(cert, Math.max(0, position - 1)) : validateSigningCert(cert));
  for (const [i, cert] of chain.entries()) {
    if (!validAt(cert)) return err(`certificate ${i} is not valid at this time`);
    if (i > 0) {
      const problem = caProblem(cert, i);
      if (problem) return err(`certificate ${i} is not a CA (signing certificate): ${problem}`);
    }
    const issuer = chain[i + 1];
    if (issuer && !(await issuedBy(cert, issuer))) return err(`certificate ${i} is not signed by certificate ${i + 1}`);
  }
  if (!options.roots) return ok(undefined);
  const top = chain[chain.length - 1]!;
  for (const anchor of options.roots) {
    let root: X509Certificate;
    try {
      root = anchor instanceof X509Certificate ? anchor : new X509Certificate(anchor.slice());
    } catch {
      continue;
    }
    // the chain may end with the root itself (never the leaf: a leaf is not a signing certificate)
    const isTop = chain.length > 1 && bytesEqual(new Uint8Array(top.rawData), new Uint8Array(root.rawData));
    if (!validAt(root) || caProblem(root, isTop ? chain.length - 1 : chain.length)) continue;
    if (isTop || (await issuedBy(top, root))) return ok(root);
  }
  return err('chain does not lead to a trusted X.509 authority');
}

/** `cert`'s issuer name equals `issuer`'s subject name (DER) and `issuer`'s key verifies its signature. */
async function issuedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (!bytesEqual(new Uint8Array(cert.issuerName.toArrayBuffer()), new Uint8Array(issuer.subjectName.toArrayBuffer()))) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}
