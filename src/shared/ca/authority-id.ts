/**
 * Authority IDs of X.509 authorities, as SPIRE names them: the CA certificate's subject key ID in lowercase
 * hex. The CA shows and takes them (local-authority.ts); agents match an SVID chain's authority key IDs
 * against the tainted ones to know what to replace.
 * @module
 */
import 'reflect-metadata';
import { AuthorityKeyIdentifierExtension, SubjectKeyIdentifierExtension, X509Certificate } from '@peculiar/x509';

/** The authority ID of a CA certificate (DER): its subject key ID, lowercase hex; undefined without one. */
export function x509AuthorityIdOf(certDer: Uint8Array): string | undefined {
  const skid = new X509Certificate(certDer.slice()).getExtension(SubjectKeyIdentifierExtension);
  return skid ? skid.keyId.toLowerCase() : undefined;
}

/** The authority key IDs (lowercase hex) the certificates of a chain name as their signers. */
export function signerAuthorityIdsOf(chain: readonly Uint8Array[]): string[] {
  const ids: string[] = [];
  for (const der of chain) {
    try {
      const akid = new X509Certificate(der.slice()).getExtension(AuthorityKeyIdentifierExtension);
      if (akid?.keyId) ids.push(akid.keyId.toLowerCase());
    } catch {
      // not a certificate: it names no signer
    }
  }
  return ids;
}

/** True when any certificate of `chain` was signed by one of `authorityIds` (or is one of them). */
export function chainSignedByAny(chain: readonly Uint8Array[], authorityIds: ReadonlySet<string>): boolean {
  if (authorityIds.size === 0) return false;
  return signerAuthorityIdsOf(chain).some((id) => authorityIds.has(id));
}
