// Projected service account tokens made by hand (both runtimes, jose): a "cluster" signing key with its
// JWK Set, and the claims the API server puts into a pod-bound token (Kubernetes 1.30+: pod and node).
import { exportJWK, generateKeyPair, importPKCS8, SignJWT, type CryptoKey, type JSONWebKeySet, type JWTPayload } from 'jose';

export interface PsatSigner {
  kid: string;
  jwks: JSONWebKeySet;
  /** signs `claims` with iat = nbf = `iat` (default now) and exp = `exp` (default iat + 600) */
  sign(claims: JWTPayload, o?: { iat?: number; exp?: number; kid?: string }): Promise<string>;
}

function signerFor(alg: string, kid: string, privateKey: CryptoKey, jwks: JSONWebKeySet): PsatSigner {
  return {
    kid,
    jwks,
    sign(claims, o = {}) {
      const iat = o.iat ?? Math.floor(Date.now() / 1000);
      return new SignJWT(claims).setProtectedHeader({ alg, kid: o.kid ?? kid }).setIssuedAt(iat).setNotBefore(iat).setExpirationTime(o.exp ?? iat + 600).sign(privateKey);
    },
  };
}

/** A fresh cluster key (another cluster, or a unit test's cluster). */
export async function createPsatSigner(alg: 'RS256' | 'ES256' = 'RS256', kid: string = crypto.randomUUID()): Promise<PsatSigner> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return signerFor(alg, kid, privateKey, { keys: [{ ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }] });
}

/** The signer of a real cluster from its PKCS#8 key and the `kid` its JWKS names (the testbed's key). */
export async function importPsatSigner(pkcs8Pem: string, jwks: JSONWebKeySet): Promise<PsatSigner> {
  const kid = jwks.keys[0]!.kid!;
  return signerFor('RS256', kid, await importPKCS8(pkcs8Pem, 'RS256'), jwks);
}

export interface PsatClaimFields {
  iss: string;
  aud?: string[];
  namespace: string;
  serviceAccount: string;
  pod?: { name: string; uid: string };
  node?: { name: string; uid: string };
}

/** The claims of a pod-bound projected token (no `pod`/`node`: an unbound token). */
export function psatClaims(f: PsatClaimFields): JWTPayload {
  return {
    iss: f.iss,
    aud: f.aud ?? ['spire-server'],
    sub: `system:serviceaccount:${f.namespace}:${f.serviceAccount}`,
    jti: crypto.randomUUID(),
    'kubernetes.io': {
      namespace: f.namespace,
      serviceaccount: { name: f.serviceAccount, uid: crypto.randomUUID() },
      ...(f.pod ? { pod: f.pod } : {}),
      ...(f.node ? { node: f.node } : {}),
    },
  };
}
