/**
 * How far an X509-SVID's notBefore precedes its signing, apart from the profile (x509-svid.ts, which
 * re-exports it): revocation cutoffs (registry/revocation.ts) use it on the agent too, which never loads
 * the profile's @peculiar/x509 (docs/performance.md, start-up).
 * @module
 */

/** notBefore is set this far before `now` to absorb clock skew between issuer and relying parties (SPIRE: 10 s). */
export const X509_SVID_BACKDATE_MS = 10_000;
