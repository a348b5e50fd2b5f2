// A device PKI for the x509pop tests (both runtimes): a root, intermediates and device certificates made with
// @peculiar/x509 over WebCrypto, as an enterprise CA would (no SPIFFE IDs, keyUsage as each test asks), and
// the agent's side of the proof (signX509popProof with the leaf's exported key). Times are ms since the epoch.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { importX509popKey, signX509popProof } from '../../../src/shared/attestation/x509pop.js';
import { toBase64 } from '../../../src/shared/encoding/base64.js';
import { generateKeys, signingAlgorithmOf, type KeyKind, type KeyPair } from './pki.js';

export interface DeviceCert {
  cert: x509.X509Certificate;
  der: Uint8Array;
  keys: KeyPair;
  kind: KeyKind;
}

const DAY = 86_400_000;

export interface DeviceCertOptions {
  kind?: KeyKind;
  name?: string;
  /** validity: [now + notBefore, now + notAfter], ms; default a day from a minute ago */
  notBefore?: number;
  notAfter?: number;
  keyUsage?: number | null;
  /** for CAs */
  pathLength?: number;
  /** CA: basicConstraints cA (default true for CAs) */
  ca?: boolean;
  uris?: string[];
  dnsNames?: string[];
  serialNumber?: string;
}

async function make(issuer: DeviceCert | undefined, isCa: boolean, now: number, o: DeviceCertOptions): Promise<DeviceCert> {
  const kind = o.kind ?? 'P-256';
  const keys = await generateKeys(kind);
  const san = [...(o.uris ?? []).map((value) => ({ type: 'url' as const, value })), ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const defaultUsage = isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(o.ca ?? isCa, o.pathLength, true),
    ...(o.keyUsage === null ? [] : [new x509.KeyUsagesExtension(o.keyUsage ?? defaultUsage, false)]),
    ...(san.length ? [new x509.SubjectAlternativeNameExtension(san)] : []),
  ];
  const name = o.name ?? (isCa ? 'CN=Device CA,O=Acme' : 'CN=node-1.acme.example,O=Acme');
  const common = {
    serialNumber: o.serialNumber,
    notBefore: new Date(now + (o.notBefore ?? -60_000)),
    notAfter: new Date(now + (o.notAfter ?? DAY)),
    extensions,
  };
  const cert = issuer
    ? await x509.X509CertificateGenerator.create({ ...common, subject: name, issuer: issuer.cert.subject, publicKey: keys.publicKey, signingKey: issuer.keys.privateKey, signingAlgorithm: signingAlgorithmOf(issuer.kind) })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name, keys, signingAlgorithm: signingAlgorithmOf(kind) });
  return { cert, der: new Uint8Array(cert.rawData), keys, kind };
}

export const makeDeviceCa = (now: number, o: DeviceCertOptions = {}, issuer?: DeviceCert) => make(issuer, true, now, o);
export const makeDeviceLeaf = (issuer: DeviceCert, now: number, o: DeviceCertOptions = {}) => make(issuer, false, now, o);

/** The agent's payload: `{ certificates, nonce, signature }`, signed with `signer`'s key (default the leaf's). */
export async function x509popPayload(chain: readonly DeviceCert[], nonce: string, csrPublicKeySpki: Uint8Array, signer: DeviceCert = chain[0]!) {
  const pkcs8 = new Uint8Array((await crypto.subtle.exportKey('pkcs8', signer.keys.privateKey)) as ArrayBuffer);
  const key = await importX509popKey(pkcs8, signer.cert);
  return { certificates: chain.map((c) => toBase64(c.der)), nonce, signature: await signX509popProof(key, chain[0]!.cert, nonce, csrPublicKeySpki) };
}
