// Real keys and certificates for Workload API tests: a CA per trust domain (@peculiar/x509, WebCrypto P-256),
// X509-SVID leaves with a SPIFFE URI SAN, and a JWT authority per trust domain (jose). No mocked crypto.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { TrustDomainBundle, WorkloadX509Svid } from '../../../../src/agent/cache/identity-source.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface TestTrustDomain {
  name: string;
  caCert: x509.X509Certificate;
  caKeys: webcrypto.CryptoKeyPair;
  jwtKey: Parameters<SignJWT['sign']>[0];
  jwtKid: string;
  bundle: TrustDomainBundle;
}

let serial = 1;

export async function createTrustDomain(name: string): Promise<TestTrustDomain> {
  const caKeys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    name: `O=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys: caKeys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${name}` }]),
    ],
  });
  const jwt = await generateKeyPair('ES256', { extractable: true });
  const jwtKid = `${name}-jwt-1`;
  const publicJwk: JWK = { ...(await exportJWK(jwt.publicKey)), kid: jwtKid, alg: 'ES256' };
  return {
    name,
    caCert,
    caKeys,
    jwtKey: jwt.privateKey,
    jwtKid,
    bundle: { trustDomain: name, x509Authorities: [new Uint8Array(caCert.rawData)], jwtAuthorities: [publicJwk] },
  };
}

export async function issueX509Svid(
  td: TestTrustDomain,
  entry: { entryId: string; spiffeId: string; hint?: string; federatesWith?: string[] },
  ttlSeconds = 3600,
): Promise<WorkloadX509Svid> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notAfter = new Date(Date.now() + ttlSeconds * 1000);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, '0'),
    subject: 'O=SPIFFE',
    issuer: td.caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: td.caKeys.privateKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: entry.spiffeId }]),
    ],
  });
  return {
    entryId: entry.entryId,
    spiffeId: entry.spiffeId,
    certChain: [new Uint8Array(leaf.rawData)],
    privateKey: new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)),
    expiresAt: Math.floor(notAfter.getTime() / 1000),
    hint: entry.hint ?? '',
    federatesWith: entry.federatesWith ?? [],
  };
}

export async function signJwtSvid(td: TestTrustDomain, spiffeId: string, audience: string[], ttlSeconds = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: td.jwtKid, typ: 'JWT' })
    .setSubject(spiffeId)
    .setAudience(audience)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(td.jwtKey);
}
