/**
 * The one X.509 path validator (X509-SVID.md §5, RFC 5280 §6 as far as SPIFFE needs it), used by X509-SVID
 * validation (x509-svid.ts) and agent authentication (agent-proof.ts), like SPIRE's single credential
 * validator: every certificate valid at `now`; every certificate after the leaf a signing certificate;
 * each signed by the next, issuer and subject names compared by their DER; and, with roots, the last one
 * a root or signed by a root that is itself a signing certificate valid at `now`.
 * @module
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { bytesEqual } from '../encoding/bytes.js';
import { err, ok, type Result } from '../result.js';
import { validateSigningCert } from './ca-cert.js';

export interface ValidateX509PathOptions {
  /** ms since the epoch */
  now: number;
  /** trust anchors (DER or parsed); when set, the chain must end at one of them. Unparsable ones are skipped. */
  roots?: readonly (Uint8Array | X509Certificate)[];
}

/**
 * Validates `chain` (leaf first, then intermediates, optionally ending with a root). Returns the root the
 * chain is anchored in (undefined without `roots`), or the problem: which certificate broke which rule.
 */
export async function validateX509Path(chain: readonly X509Certificate[], options: ValidateX509PathOptions): Promise<Result<X509Certificate | undefined, string>> {
  if (chain.length === 0) return err('empty chain');
  const validAt = (cert: X509Certificate) => cert.notBefore.getTime() <= options.now && options.now <= cert.notAfter.getTime();
  for (const [i, cert] of chain.entries()) {
    if (!validAt(cert)) return err(`certificate ${i} is not valid at this time`);
    if (i > 0) {
      const problem = validateSigningCert(cert);
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
    if (!validAt(root) || validateSigningCert(root)) continue;
    // the chain may end with the root itself (never the leaf: a leaf is not a signing certificate)
    if ((chain.length > 1 && bytesEqual(new Uint8Array(top.rawData), new Uint8Array(root.rawData))) || (await issuedBy(top, root))) return ok(root);
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
